"""The loyalty platform's shared code, shipped to every function as one Lambda layer.

Data flows one way: api (HTTP glue) -> services (use cases) -> domain (pure rules) and store (DynamoDB).
"""
