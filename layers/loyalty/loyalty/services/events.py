"""Domain events to the `loyalty` EventBridge bus. Detail always carries the tenant."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit

from loyalty.observability import logger, metrics
from loyalty.settings import get_settings

SOURCE = "loyalty"


@lru_cache(maxsize=1)
def _events_client() -> Any:
    return boto3.client("events")


def publish(tenant: str, detail_type: str, detail: dict[str, Any]) -> None:
    entry = {
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps({"tenant": tenant, **detail}, default=str),
        "EventBusName": get_settings().event_bus_name,
    }
    response = _events_client().put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        # The state change has committed; failing the request now would only invite a retry that conflicts.
        logger.error("event not published", extra={"detail_type": detail_type, "entries": response["Entries"]})
        metrics.add_metric(name="EventsNotPublished", unit=MetricUnit.Count, value=1)
