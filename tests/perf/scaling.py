"""Scaling, counted on DynamoDB Local (its speed is flat in the table's size; moto's is not):

- the expiry sweep: items read per expired lot with 1,000 and 20,000 open lots of which 1% expired (flat);
- a flash claim: 5,000 claims of one rule from 16 threads, and the largest share of the writes that lands on
  one partition key, as writes per second on that key if the claims came at 5,000 per second;
- an audience's snapshot: 10,000 members (each with the items a member of some months holds), read by the
  member index's pages one after another in one worker: members read per second, and read units per
  10,000 members; then the same with 100,000 members of other tenants in the table (it must not grow);
- an hourly run of the expiry sweep over 1, 100 and 1,000 programs (20 a tenant): the schedule's own
  invocation, the messages queued, the invocations and their largest count of DynamoDB calls, the seconds
  of all of them in one worker; and the same hour run again (nothing is due).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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
    from loyalty.services.sweeps import buckets_through
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
    pages.extend(buckets_through("demo", "DEMO", datetime.now(SHANGHAI).date() - timedelta(days=1), ("LOT",)))
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


def _members(client: Any, table: str, count: int, tenant: str = "demo", full: bool = True) -> int:
    """`count` members of the tenant's DEMO as a member of some months is stored: the profile, two accounts,
    a tag for one in ten, the 注册 entry (in the member index), two lots and two records; `full=False`: the
    profile and the 注册 entry only (another tenant's members, there to be left alone). Returns how many
    hold the tag."""
    from loyalty.ids import new_ulid
    from loyalty.store import keys
    from loyalty.store.table import to_attributes

    now = datetime.now(UTC)
    items: list[dict[str, Any]] = []
    for n in range(count):
        member_id = new_ulid()
        pk = keys.member(tenant, member_id)
        at = (now - timedelta(days=n % 400)).isoformat()
        profile = {
            "PK": pk, "SK": keys.MEMBER_SK, "memberId": member_id, "programCode": "DEMO", "status": "active",
            "phone": f"139{n:08d}", "name": "会员", "registeredAt": at, "version": 1, "cardNo": f"{n:012d}",
            "channel": "POS", "storeCode": "SH001", "tier": {"code": "base", "name": "普通会员"},
            "gender": "female" if n % 2 else "male", "grossSpend": 1200, "lastPurchaseAt": at,
        }  # fmt: skip
        registered = {
            "PK": pk, "SK": keys.activity_sk(now, new_ulid()), "type": "register", "channel": "POS",
            "memberId": member_id, **keys.member_index_entry(tenant, member_id),
        }  # fmt: skip
        items += [profile, registered]
        if not full:
            continue
        items += [
            *[{"PK": pk, "SK": keys.account_sk(group), "pointGroupCode": group, "available": n % 1000,
               "cumulative": n % 1000} for group in ("points", "growth")],
            *[{"PK": pk, "SK": f"{keys.LOT_PREFIX}points#{i}", "points": 10, "remaining": 10} for i in range(2)],
            *[{"PK": pk, "SK": keys.record_sk(new_ulid()), "type": "TRANSACTION", "change": 10} for _ in range(2)],
        ]  # fmt: skip
        if n % 10 == 0:
            items.append({"PK": pk, "SK": keys.member_tag_sk("high-value"), "tagCode": "high-value"})
    requests = [{"PutRequest": {"Item": to_attributes(item)}} for item in items]

    def write(batch: list[dict[str, Any]]) -> None:
        request = {table: batch}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [requests[start : start + 25] for start in range(0, len(requests), 25)]))
    return (count + 9) // 10


def audience_scan(endpoint: str, count: int = 10_000, others: int = 0) -> tuple[int, int, float, Decimal, int]:
    """Freeze an audience of the tag over `count` members of the demo tenant, with `others` members of ten
    other tenants in the table: (members read, matched, seconds, read units, pages)."""
    import loyalty.services.campaigns.audiences as audiences_module
    from infra.local.seed import seed_demo_tenant
    from loyalty.domain.audiences import AudienceInput

    name, client = fresh_table(endpoint)
    os.environ["TABLE_NAME"] = name
    reset_process_state()
    seed_demo_tenant()
    tagged = _members(client, name, count)
    for tenant in range(10 if others else 0):
        _members(client, name, others // 10, tenant=f"other{tenant}", full=False)
    pages: list[Any] = []
    audiences_module.send_all = lambda url, bodies: pages.extend(bodies)  # type: ignore[assignment]
    service = audiences_module.audience_service()
    body = {"programCode": "DEMO", "name": "高净值", "condition": {"attribute": "tags", "values": ["high-value"]}}
    audience = service.create("demo", AudienceInput.model_validate(body), "bench")
    service.enable("demo", audience.audience_id, "bench")
    started, read = datetime.now(UTC), 0
    while pages:
        service.scan_page(audiences_module.ScanPage.from_body(json.loads(pages.pop(0))))
        read += 1
    seconds = (datetime.now(UTC) - started).total_seconds()
    frozen = service.get("demo", audience.audience_id)
    assert frozen.snapshot is not None and frozen.count == tagged, (frozen.count, tagged)
    return frozen.snapshot.members_scanned, tagged, seconds, frozen.snapshot.read_units, read


def hourly_planning(endpoint: str, programs: int) -> dict[str, Any]:
    """The hourly expiry run over `programs` programs, 20 a tenant, every message worked in one worker: the
    schedule's invocation (ms), messages queued, invocations, the largest invocation's DynamoDB calls,
    seconds in all; and the messages of the same hour's next run."""
    from loyalty.domain.config import KINDS
    from loyalty.services import program_jobs, sweeps
    from loyalty.services.config import config_service
    from loyalty.services.expiry import expiry_service
    from loyalty.store.table import dynamodb_client

    name, _ = fresh_table(endpoint)
    os.environ["TABLE_NAME"] = name
    reset_process_state()
    config = config_service()
    for n in range(programs):
        body = {"code": f"P{n % 20:02d}", "name": "计划", "timeZone": "Asia/Shanghai"}
        config.create(f"brand{n // 20}", KINDS["program"], None, KINDS["program"].model.model_validate(body))
    queued: list[str] = []
    for module in (program_jobs, sweeps):
        module.send_all = lambda url, bodies: queued.extend(bodies)  # type: ignore[assignment]
    hook = CostHook()
    hook.attach(dynamodb_client())
    service = expiry_service()
    jobs = program_jobs.program_jobs(service.table, service.clock)

    def hour() -> dict[str, Any]:
        queued.clear()
        started = time.perf_counter()
        jobs.start(service)
        schedule_ms = (time.perf_counter() - started) * 1000
        invocations, largest, messages = 0, 0, 1
        while queued:
            body = queued.pop(0)
            hook.meter = Meter()
            before = len(queued)
            if not jobs.handles(service, json.loads(body)):
                service.sweep(sweeps.Bucket.from_message(body))
            invocations += 1
            messages += len(queued) - before
            largest = max(largest, sum(hook.meter.calls.values()))
            hook.meter.pending.clear()
        seconds = time.perf_counter() - started
        return {"schedule_ms": schedule_ms, "messages": messages, "invocations": invocations, "largest": largest,
                "seconds": seconds}  # fmt: skip

    first = hour()
    return {**first, "again": hour()["messages"]}


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
        rows += [
            "",
            "| members | others' members in the table | matched | scan pages | seconds, one worker | "
            "members/s per worker | read units | per 10,000 members |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for others in (0, 100_000):
            members, matched, seconds, units, pages = audience_scan(endpoint, others=others)
            rows.append(
                f"| {members:,} | {others:,} | {matched:,} | {pages} | {seconds:.1f} | {members / seconds:.0f} | "
                f"{units} | {units * 10_000 / members:.0f} |"
            )
        rows += [
            "",
            "| programs | schedule's invocation, ms | messages queued | invocations | largest invocation, "
            "DynamoDB calls | seconds, one worker | the same hour again: messages |",
            "|---|---|---|---|---|---|---|",
        ]
        for programs in (1, 100, 1000):
            run_ = hourly_planning(endpoint, programs)
            rows.append(
                f"| {programs:,} | {run_['schedule_ms']:.0f} | {run_['messages']:,} | {run_['invocations']:,} | "
                f"{run_['largest']} | {run_['seconds']:.1f} | {run_['again']} |"
            )
        return rows
    finally:
        process.terminate()


if __name__ == "__main__":
    print("\n4. Scaling (counted on DynamoDB Local)\n")
    print("\n".join(run()))
