"""SQS event sources: poll each queue into its function with Lambda's batch semantics.

A batch succeeds or fails as a whole, unless the function reports partial failures (ReportBatchItemFailures):
then only the failed messages stay. What stays reappears after the visibility timeout, and the queue's
redrive policy moves it to the dead-letter queue after maxReceiveCount receives, as on AWS.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime
from typing import Any

from infra.local.runtime import IDLE_SECONDS, LocalFunction, doorbell, serving_requests
from infra.local.template import REGION, QueueSource, StreamSource
from loyalty.observability import logger


class QueuePoller:
    def __init__(
        self,
        source: QueueSource,
        function: LocalFunction,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        idle_seconds: float = IDLE_SECONDS,
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
            MaxNumberOfMessages=1 if serving_requests() else min(self.source.batch_size, 10),
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
        bell = doorbell("queue:" + self.queue_url.rsplit("/", 1)[-1])
        while not self._stop.is_set():
            seen = bell.generation
            try:
                received = self.poll_once()
            except Exception:
                logger.exception("poller error", extra={"queue": self.source.queue})
                received = 0
            if not received:
                bell.wait(seen, self.idle_seconds)

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
            "md5OfBody": message.get("MD5OfBody")
            or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }


def matches(pattern: Any, value: Any) -> bool:
    """Lambda event filtering, the subset templates use: nested objects, lists of allowed values, prefix."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(key in value and matches(p, value[key]) for key, p in pattern.items())
    if isinstance(pattern, list):
        return any(
            (
                isinstance(option, dict)
                and "prefix" in option
                and isinstance(value, str)
                and value.startswith(option["prefix"])
            )
            or option == value
            for option in pattern
        )
    return bool(pattern == value)


class StreamPoller:
    """A DynamoDB stream event source: filtered records in order, a failed batch retried from its first
    failure up to MaximumRetryAttempts times, then handed to the on-failure queue, then skipped."""

    def __init__(
        self,
        source: StreamSource,
        function: LocalFunction,
        streams: Any,
        stream_arn: str,
        sqs: Any = None,
        on_failure_url: str | None = None,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self.source, self.function, self.streams = source, function, streams
        self.stream_arn, self.sqs, self.on_failure_url = stream_arn, sqs, on_failure_url
        self.filters = [json.loads(pattern) for pattern in source.filters]
        self.idle_seconds = idle_seconds
        # A fresh iterator after the last record read, each poll: moto swaps a table's stream for a copy when
        # it rolls back a cancelled transaction, so a kept iterator would read a phantom record of the
        # cancelled write and miss every later one (measured on moto 5.2.5; real streams do neither).
        self._last: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{source.table}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self) -> int:
        """Read what is new on every shard and deliver it; returns how many records were read."""
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
        read = 0
        for shard in shards:
            shard_id = shard["ShardId"]
            position: dict[str, str] = {"ShardIteratorType": "TRIM_HORIZON"}
            if shard_id in self._last:
                position = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self._last[shard_id]}
            iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard_id, **position)
            response = self.streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)
            records = [self._record(r) for r in response.get("Records", [])]
            if records:
                self._last[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            read += len(records)
            wanted = [r for r in records if not self.filters or any(matches(f, r) for f in self.filters)]
            for start in range(0, len(wanted), self.source.batch_size):
                self._deliver(wanted[start : start + self.source.batch_size])
        return read

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for _ in range(self.source.maximum_retry_attempts + 1):
            failed_from = self._invoke(batch)
            if failed_from is None:
                return
            batch = batch[failed_from:]
        if self.sqs and self.on_failure_url:
            self.sqs.send_message(
                QueueUrl=self.on_failure_url,
                MessageBody=json.dumps(
                    {
                        "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": self.function.name},
                        "DDBStreamBatchInfo": {
                            "streamArn": self.stream_arn,
                            "batchSize": len(batch),
                            "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                            "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                        },
                    }
                ),
            )

    def _invoke(self, batch: list[dict[str, Any]]) -> int | None:
        """Index of the first record to retry, or None when the whole batch succeeded."""
        try:
            result = self.function.invoke({"Records": batch})
        except Exception:
            logger.exception("stream batch failed", extra={"function": self.function.name})
            return 0
        if not (self.source.report_batch_item_failures and isinstance(result, dict)):
            return None
        failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        positions = [i for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed]
        return min(positions) if positions else None

    def _run(self) -> None:
        bell = doorbell("streams")
        while not self._stop.is_set():
            seen = bell.generation
            try:
                read = self.poll_once()
            except Exception:
                logger.exception("stream poller error", extra={"table": self.source.table})
                read = 0
            if not read:
                bell.wait(seen, self.idle_seconds)

    def _record(self, record: dict[str, Any]) -> dict[str, Any]:
        dynamodb = dict(record["dynamodb"])
        created = dynamodb.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
        return {**record, "dynamodb": dynamodb, "eventSourceARN": self.stream_arn}
