"""The expiry sweep: the hourly schedule plans every program's due buckets (lots, coupons, transfers), the
expiry queue expires them a page at a time, and operators plan one program for a day over HTTP."""

from loyalty.api.sweep_function import sweep_handler
from loyalty.services.expiry import expiry_service

lambda_handler = sweep_handler("loyalty.api.routes.expiry_sweep", expiry_service)
