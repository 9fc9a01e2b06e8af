"""SQS event sources: poll each queue into its function with Lambda's batch semantics.

A batch succeeds or fails as a whole, unless the function reports partial failures (ReportBatchItemFailures):
then only the failed messages stay. What stays reappears after the visibility timeout, and the queue's
redrive policy moves it to the dead-letter queue after maxReceiveCount receives, as on AWS.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from infra.local.runtime import LocalFunction
from infra.local.template import REGION, QueueSource
from loyalty.observability import logger


class QueuePoller:
    def __init__(
        self,
        source: QueueSource,
        function: LocalFunction,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        idle_seconds: float = 0.2,
    ) -> None:
        self.source, self.function, self.sqs = source, function, sqs
        self.queue_url, self.queue_arn = queue_url, queue_arn
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poll-{source.queue}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self) -> int:
        """Receive one batch and hand it to the function; returns how many messages it received."""
        # No long polling: the emulator serves one request at a time and a waiting receive would block it.
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.source.batch_size, 10),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        failed: set[str] = {m["MessageId"] for m in messages}
        try:
            result = self.function.invoke({"Records": [self._record(m) for m in messages]})
            failed = set()
            if self.source.report_batch_item_failures and isinstance(result, dict):
                failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        except Exception:  # the whole batch returns to the queue, as when a Lambda invocation fails
            logger.exception("batch failed", extra={"function": self.function.name, "queue": self.source.queue})
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                received = self.poll_once()
            except Exception:
                logger.exception("poller error", extra={"queue": self.source.queue})
                received = 0
            if not received:
                self._stop.wait(self.idle_seconds)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": v.get("StringValue"),
                    "binaryValue": v.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": v["DataType"],
                }
                for name, v in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }
