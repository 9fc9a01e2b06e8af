"""CloudFormation's custom resource that runs the pending migrations on each deploy (template.yaml,
MigrationsOnDeploy): its properties name every migration, so a deploy that adds one updates the resource and
the function is asked again. It answers at once: the migrations run on, a page per queue message, and a
deploy never waits for a walk over the table (nor fails because of one: a page that fails waits in the
dead-letter queue, with its alarm)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

from loyalty.observability import logger


def answer_cloudformation(event: dict[str, Any], context: Any, start: Callable[[], str | None]) -> dict[str, Any]:
    """Start the pending migrations on Create and Update (nothing on Delete) and tell CloudFormation."""
    status, reason, running = "SUCCESS", "", None
    if event["RequestType"] in ("Create", "Update"):
        try:
            running = start()
        except Exception as error:  # a deploy must hear back, whatever went wrong
            logger.exception("the migrations did not start")
            status, reason = "FAILED", f"the migrations did not start: {error}"[:200]
    body = {
        "Status": status,
        "Reason": reason or f"see the log stream {getattr(context, 'log_stream_name', '')}",
        "PhysicalResourceId": event.get("PhysicalResourceId", "migrations"),
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Running": running or ""},
    }
    _put(event["ResponseURL"], json.dumps(body).encode())
    return body


def _put(url: str, data: bytes) -> None:
    """The answer goes to the pre-signed S3 URL CloudFormation gave (https only)."""
    if not url.startswith("https://"):
        raise ValueError("CloudFormation's response URL is https")
    request = urllib.request.Request(url, data=data, method="PUT", headers={"content-type": ""})  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310  # noqa: S310 (https, checked)
        response.read()
