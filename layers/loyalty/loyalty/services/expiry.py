"""The point expiry sweep (积分过期服务): close every lot whose expiry day has passed.

Planning (hourly, a program at a time through services/program_jobs.py, and on an operator's request)
sends one message per expiry bucket: a program, a day and a shard of its sparse index (the schedule sends
only those that hold something). Each message expires one page of its bucket, one lot per transaction,
and sends a continuation when there is more. So the sweep reads only what expires, its cost grows with
the number of expiring lots and nothing else, and running it twice changes nothing (a closed lot has
left the index). A lot spent meanwhile is expired for what it still has: the lot is guarded by the
remaining points read, so a point is either spent or expired, never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from loyalty.clock import Clock, SystemClock
from loyalty.domain.ledger import RecordType, delta
from loyalty.domain.program import ProgramConfig
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services import events
from loyalty.services.config import ProgramLoader
from loyalty.services.coupon_verification import CouponVerifier, coupon_verifier
from loyalty.services.program_jobs import JobMark, Progress
from loyalty.services.sweeps import PAGE, Bucket, buckets_through, enqueue, scheduled_sweep, sweep_day
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import AccountChange, Conflict, LedgerRepository, LedgerWrite, LotDraw, spend_relation
from loyalty.store.table import Item, Table

ATTEMPTS = 3
KINDS = ("LOT", "COUPON", "TRANSFER")  # point lots, coupons and coupon transfers that end by the day


def partition(bucket: Bucket) -> str:
    """The index partition of a bucket of the expiry queue."""
    return keys.ends_index(bucket.tenant, bucket.program, bucket.kind, bucket.shard)


@dataclass
class ExpiryService:
    table: Table
    ledger: LedgerRepository
    config: ConfigRepository
    programs: ProgramLoader
    clock: Clock
    coupons: CouponVerifier

    name = "expiry"

    def queue_url(self) -> str:
        return get_settings().expiry_queue_url

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress:
        """The schedule's run for one program (services/program_jobs.py): the buckets of lots, coupons and
        transfers that ended by yesterday and hold something."""
        program = self.programs.load(tenant, program_code)
        plan = (tenant, program_code, KINDS)
        return scheduled_sweep(self.table, self.queue_url(), plan, partition, self.clock.now(), program.zone)

    def plan(self, tenant: str, program_code: str, as_of: date | None = None) -> int:
        """Enqueue the buckets of what ended before `as_of` (default: today in the program's zone)."""
        program = self.programs.load(tenant, program_code)
        day = sweep_day(as_of, self.clock.now().astimezone(program.zone).date())
        buckets = buckets_through(tenant, program_code, day - timedelta(days=1), KINDS)
        enqueue(get_settings().expiry_queue_url, buckets)
        return len(buckets)

    def sweep(self, bucket: Bucket) -> int:
        """Expire one page of a bucket; returns how many lots (or coupons, or lapsed transfers) it closed."""
        if bucket.kind != "LOT":
            return self.coupons.sweep(bucket, bucket.kind)
        program = self.programs.load(bucket.tenant, bucket.program)
        lots, more = self.table.query_index(
            "GSI1", partition(bucket), limit=PAGE, start=bucket.start, sk_between=keys.through_day(bucket.day)
        )
        closed = sum(self._expire(bucket.tenant, program, lot) for lot in lots)
        if more:
            enqueue(get_settings().expiry_queue_url, [bucket.next(more)])
        return closed

    def _expire(self, tenant: str, program: ProgramConfig, lot: Item) -> bool:
        member_id, group = lot["memberId"], lot["pointGroupCode"]
        for _ in range(ATTEMPTS):
            current = self.table.get(lot["PK"], lot["SK"])  # the index may lag; the lot itself decides
            if current is None or current["remaining"] <= 0:
                return False
            now, record_id, points = self.clock.now(), new_ulid(), current["remaining"]
            change = delta(RecordType.EXPIRY, -points, False)
            record = {
                "recordId": record_id,
                "type": RecordType.EXPIRY.value,
                "pointGroupCode": group,
                "change": -points,
                "effectiveAt": now.isoformat(),
                "createdAt": now.isoformat(),
                "countsTowardUpgrade": False,
                "relations": [spend_relation(current, points)],
            }
            name = program.group_name(group)
            try:
                self.ledger.write(
                    LedgerWrite(
                        tenant,
                        member_id,
                        records=[record],
                        draws=[LotDraw(current["SK"], points, points)],
                        accounts=[
                            AccountChange(
                                group,
                                name,
                                change.cumulative,
                                change.available,
                                change.expired,
                                change.qualifying,
                                None,
                            )
                        ],
                        outbox=[
                            events.outbox_entry(
                                tenant,
                                events.DomainEvent(
                                    "PointsExpired",
                                    {
                                        "memberId": member_id,
                                        "recordId": record_id,
                                        "pointGroupCode": group,
                                        "points": points,
                                        "lotRecordId": current["recordId"],
                                    },
                                ),
                                now,
                            )
                        ],
                    )
                )
                return True
            except Conflict:
                continue  # spent meanwhile: read the lot again
        logger.warning("lot kept changing during expiry", extra={"lot": lot["SK"]})
        raise RuntimeError("retry this bucket")


def expiry_service(table: Table | None = None, clock: Clock | None = None) -> ExpiryService:
    table = table or Table()
    config = ConfigRepository(table)
    clock = clock or SystemClock()
    return ExpiryService(
        table, LedgerRepository(table), config, ProgramLoader(config), clock, coupon_verifier(table, clock)
    )
