"""Environment parsed once into a typed settings object; nothing else reads os.environ."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    table_name: str
    event_bus_name: str
    expiry_queue_url: str
    tier_queue_url: str
    coupon_issue_queue_url: str
    bulk_job_queue_url: str
    campaign_queue_url: str
    message_queue_url: str  # message requests (notifications, campaign messages) to the sender
    migration_queue_url: str  # the pages of a migration's walk over the table (D-112)
    reconcile_queue_url: str  # the pages of the nightly reconciliation's walk over a program's members (D-116)
    campaign_queue_arn: str  # the target of a batch campaign's one-time launch schedule
    launch_role_arn: str  # the role EventBridge Scheduler takes to send that launch
    idempotency_ttl_seconds: int
    business_time_past_days: int  # how old an order, return or behaviour may be when it arrives (D-059)
    mail_sender_role_arn: str = ""  # the role an email is sent under, in a session tagged with its tenant (D-125)
    cursor_secret: str = ""  # the HMAC key of list cursors (D-128), from a generated secret
    local_webhooks: bool = False  # webhooks may POST plain http to this machine: the local stack only (D-124)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(
        table_name=os.environ.get("TABLE_NAME", "loyalty"),
        event_bus_name=os.environ.get("EVENT_BUS_NAME", "loyalty"),
        expiry_queue_url=os.environ.get("EXPIRY_QUEUE_URL", ""),
        tier_queue_url=os.environ.get("TIER_QUEUE_URL", ""),
        coupon_issue_queue_url=os.environ.get("COUPON_ISSUE_QUEUE_URL", ""),
        bulk_job_queue_url=os.environ.get("BULK_JOB_QUEUE_URL", ""),
        campaign_queue_url=os.environ.get("CAMPAIGN_QUEUE_URL", ""),
        message_queue_url=os.environ.get("MESSAGE_QUEUE_URL", ""),
        migration_queue_url=os.environ.get("MIGRATION_QUEUE_URL", ""),
        reconcile_queue_url=os.environ.get("RECONCILE_QUEUE_URL", ""),
        campaign_queue_arn=os.environ.get("CAMPAIGN_QUEUE_ARN", ""),
        launch_role_arn=os.environ.get("LAUNCH_ROLE_ARN", ""),
        idempotency_ttl_seconds=int(os.environ.get("IDEMPOTENCY_TTL_SECONDS", "86400")),
        business_time_past_days=int(os.environ.get("BUSINESS_TIME_PAST_DAYS", "400")),
        mail_sender_role_arn=os.environ.get("MAIL_SENDER_ROLE_ARN", ""),
        cursor_secret=os.environ.get("CURSOR_SECRET", ""),
        local_webhooks=os.environ.get("LOYALTY_LOCAL_WEBHOOKS") == "1",
    )
