"""Scaling, counted on DynamoDB Local (its speed is flat in the table's size; moto's is not):

- the expiry sweep: items read per expired lot with 1,000 and 20,000 open lots of which 1% expired (flat);
- a flash claim: 5,000 claims of one rule from 16 threads, and the largest share of the writes that lands on
  one partition key, as writes per second on that key if the claims came at 5,000 per second.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.local import dynamodb_local
from tests.perf.cost import CostHook, Meter
from tests.support import SHANGHAI, fresh_table, reset_process_state

MEMBERS = 100


def _lots(client: Any, table: str, members: list[str], total: int) -> int:
    """`total` open lots of 10 points spread over the members, 1% of them expired yesterday (program zone)."""
    from loyalty.ids import new_ulid
    from loyalty.store import keys
    from loyalty.store.table import to_attributes

    now = datetime.now(SHANGHAI)
    expired = total // 100
    items = []
    for n in range(total):
        member = members[n % len(members)]
        ends = (now - timedelta(days=1)) if n < expired else (now + timedelta(days=300))
        earned, record_id = now - timedelta(days=400 if n < expired else 30), new_ulid()
        sort_key = keys.lot_sk("points", ends, earned, record_id)
        lot = {
            "PK": keys.member("demo", member),
            "SK": sort_key,
            "recordId": record_id,
            "pointGroupCode": "points",
            "points": 10,
            "remaining": 10,
            "effectiveAt": earned.isoformat(),
            "expiresAt": ends.isoformat(),
            "countsTowardUpgrade": False,
            **keys.lot_index("demo", "DEMO", member, ends, sort_key),
        }
        items.append({"PutRequest": {"Item": to_attributes(lot)}})
    for start in range(0, len(items), 25):
        request = {table: items[start : start + 25]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
    return expired


def sweep_reads(endpoint: str, total: int) -> tuple[int, Meter]:
    """Expire yesterday's lots among `total`; returns how many expired and what the sweep read and wrote."""
    import loyalty.services.expiry as expiry_module
    from infra.local.seed import seed_demo_tenant
    from loyalty.services.sweeps import due_buckets
    from loyalty.store.table import dynamodb_client
    from tests.races.test_races import register

    name, client = fresh_table(endpoint)
    os.environ["TABLE_NAME"] = name
    reset_process_state()
    seed_demo_tenant()
    members = register(MEMBERS)
    expected = _lots(client, name, members, total)
    pages: list[Any] = []
    expiry_module.enqueue = lambda url, buckets: pages.extend(buckets)  # type: ignore[assignment]
    hook = CostHook()
    hook.attach(dynamodb_client())
    service = expiry_module.expiry_service()
    pages.extend(due_buckets("demo", "DEMO", datetime.now(SHANGHAI).date()))
    expired = 0
    while pages:
        expired += service.sweep(pages.pop())
    hook.meter.pending.clear()
    assert expired == expected, (expired, expected)
    return expired, hook.meter


def flash_claim(endpoint: str, claims: int = 5000, members: int = 1000) -> tuple[int, int, Counter[str]]:
    from infra.local.seed import seed_demo_tenant
    from loyalty.domain.errors import DomainError
    from loyalty.services.coupons import coupon_service
    from loyalty.store.table import dynamodb_client
    from tests.races.test_races import listed_rule, register

    name, _ = fresh_table(endpoint)
    os.environ["TABLE_NAME"] = name
    reset_process_state()
    seed_demo_tenant()
    rule_id = listed_rule(totalStock=claims)
    people = register(members)
    hook = CostHook()
    hook.attach(dynamodb_client())
    coupons = coupon_service()

    def claim(n: int) -> bool:
        for _ in range(20):  # a client retries CONCURRENT_UPDATE
            try:
                coupons.claim("demo", people[n % members], rule_id)
                return True
            except DomainError as error:
                if error.code != "CONCURRENT_UPDATE":
                    raise
        return False

    started = datetime.now(UTC)
    with ThreadPoolExecutor(16) as pool:
        done = sum(pool.map(claim, range(claims)))
    seconds = (datetime.now(UTC) - started).total_seconds()
    hook.meter.pending.clear()
    return done, int(done / seconds), hook.meter.writes_by_key


def run() -> list[str]:
    home = dynamodb_local.home()
    os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ.update(POWERTOOLS_SERVICE_NAME="loyalty", POWERTOOLS_LOG_LEVEL="ERROR")
    process, endpoint = dynamodb_local.start(home)
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    try:
        rows = ["| open lots | expired (1%) | items read | per expired lot | items written | per expired lot |"]
        rows.append("|---|---|---|---|---|---|")
        for total in (1000, 20000):
            expired, meter = sweep_reads(endpoint, total)
            rows.append(
                f"| {total:,} | {expired} | {meter.items_read} | {meter.items_read / expired:.2f} | "
                f"{meter.items_written} | {meter.items_written / expired:.2f} |"
            )
        done, rate, writes = flash_claim(endpoint)
        key, most = writes.most_common(1)[0]
        share = most / sum(writes.values())
        rows += [
            "",
            "| claims | on this engine, claims/s | writes | busiest partition key | its writes | share | "
            "writes/s on it at 5,000 claims/s |",
            "|---|---|---|---|---|---|---|",
            f"| {done:,} | {rate} | {sum(writes.values()):,} | `{key.split('#', 2)[2]}` | {most:,} | {share:.1%} | "
            f"{most / done * 5000:.0f} |",
        ]
        return rows
    finally:
        process.terminate()


if __name__ == "__main__":
    print("\n4. Scaling (counted on DynamoDB Local)\n")
    print("\n".join(run()))
