"""HTTP function: the routes of loyalty.api.routes.verify_coupon. Built by the shared resolver factory."""

from loyalty.api.resolver import build_app, http_handler
from loyalty.api.routes.verify_coupon import router

app = build_app(router)
lambda_handler = http_handler(app)
