"""The tier sweep (会员降级服务): the hourly schedule plans every program's buckets of members whose tier
ended, the tier queue reviews them a page at a time, and operators plan one program for a day over HTTP."""

from loyalty.api.sweep_function import sweep_handler
from loyalty.services.tier_sweep import tier_sweep_service

lambda_handler = sweep_handler("loyalty.api.routes.tier_sweep", tier_sweep_service)
