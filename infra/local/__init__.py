"""The local stack: template.yaml served on an embedded AWS emulator (moto), with no Docker.

`python -m infra.local` (or `make run`) starts it. Everything it runs comes from template.yaml: the
table, queues and buses it creates, the HTTP routes it serves (authorizer included), the SQS sources it
polls and the schedules it fires. Adding a function, route, queue or schedule there is enough.
"""
