"""Routers, one module per HTTP function. Each function's app.py serves exactly its module's router."""
