"""Sending to the project's SQS queues: the one place that batches messages, ten per call."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3


@lru_cache(maxsize=1)
def sqs() -> Any:
    return boto3.client("sqs")


def send_all(queue_url: str, bodies: list[str]) -> None:
    """Send every body, ten per call; raises if SQS refused any, so the caller's work is retried."""
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        response = sqs().send_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused {len(response['Failed'])} messages")
