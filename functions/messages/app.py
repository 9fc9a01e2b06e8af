"""HTTP function: the routes of loyalty.api.routes.messages (message templates, issue 15). Built by the shared
resolver factory."""

from loyalty.api.resolver import build_app, http_handler
from loyalty.api.routes.messages import router

app = build_app(router)
lambda_handler = http_handler(app)
