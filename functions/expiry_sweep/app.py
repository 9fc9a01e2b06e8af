"""The expiry sweep: the hourly schedule plans every program's due buckets (lots, coupons, transfers), the
expiry queue expires them a page at a time, and operators plan one program for a day over HTTP."""

from loyalty.api.routes.expiry_sweep import router, service
from loyalty.api.sweep_function import sweep_handler

lambda_handler = sweep_handler(router, service)
