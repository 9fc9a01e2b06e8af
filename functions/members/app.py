"""HTTP function: the routes of loyalty.api.routes.members and .member_sales. Built by the shared resolver
factory."""

from loyalty.api.resolver import build_app, http_handler
from loyalty.api.routes.member_sales import router as sales_router
from loyalty.api.routes.members import router

app = build_app(router, sales_router)
lambda_handler = http_handler(app)
