"""HTTP function: the routes of loyalty.api.routes.admin_config, .group_members, .bulk_jobs and .api_keys. Built by the
shared resolver factory."""

from loyalty.api.resolver import build_app, http_handler
from loyalty.api.routes.admin_config import router
from loyalty.api.routes.api_keys import router as api_keys_router
from loyalty.api.routes.bulk_jobs import router as bulk_jobs_router
from loyalty.api.routes.group_members import router as group_members_router

app = build_app(router, group_members_router, bulk_jobs_router, api_keys_router)
lambda_handler = http_handler(app)
