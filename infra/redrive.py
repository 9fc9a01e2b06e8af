"""Move the messages of a dead-letter queue back to the queue they came from, after the cause is fixed:

    python -m infra.redrive OrderDeadLetterQueue            # by queue name (AWS credentials, or the local stack:
    AWS_ENDPOINT_URL=http://127.0.0.1:<port> python -m infra.redrive OrderDeadLetterQueue   # see .local/stack.json)

The source queue is the one whose redrive policy names this dead-letter queue. Each message is sent to it
and then deleted here, so a crash in between leaves a copy in both, never in neither; the consumers are
idempotent, so a copy does no harm. (On AWS, `aws sqs start-message-move-task` does the same; the local
emulator does not implement it, so this command works on both.)
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3


def redrive(sqs: Any, dead_letter_url: str) -> int:
    """Move every message now in the dead-letter queue back to its source queue; returns how many moved."""
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dead_letter_url).get("queueUrls", [])
    if len(sources) != 1:
        raise SystemExit(f"expected one source queue for {dead_letter_url}, found {len(sources)}")
    moved = 0
    while batch := sqs.receive_message(
        QueueUrl=dead_letter_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=30
    ).get("Messages", []):
        entries = [
            {"Id": str(i), "MessageBody": m["Body"], "MessageAttributes": m.get("MessageAttributes", {})}
            for i, m in enumerate(batch)
        ]
        sent = sqs.send_message_batch(QueueUrl=sources[0], Entries=entries)
        if sent.get("Failed"):
            raise SystemExit(f"the source queue refused {len(sent['Failed'])} messages; nothing was deleted")
        sqs.delete_message_batch(
            QueueUrl=dead_letter_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
        moved += len(batch)
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("queue", help="the dead-letter queue's name or URL")
    args = parser.parse_args(argv)
    sqs = boto3.client("sqs")
    url = args.queue if args.queue.startswith("http") else sqs.get_queue_url(QueueName=args.queue)["QueueUrl"]
    moved = redrive(sqs, url)
    print(f"moved {moved} messages back from {args.queue}")
    return moved


if __name__ == "__main__":
    main()
