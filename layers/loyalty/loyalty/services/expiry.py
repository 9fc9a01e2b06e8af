"""The point expiry sweep (积分过期服务): close every lot whose expiry day has passed.

Planning (hourly, and on an operator's request) sends one message per expiry bucket: a program, a day
and a shard of its sparse index. Each message expires one page of its bucket, one lot per transaction,
and sends a continuation when there is more. So the sweep reads only what expires, its cost grows with
the number of expiring lots and nothing else, and running it twice changes nothing (a closed lot has
left the index). A lot spent meanwhile is expired for what it still has: the lot is guarded by the
remaining points read, so a point is either spent or expired, never both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from loyalty.clock import Clock, SystemClock
from loyalty.domain.ledger import RecordType, delta
from loyalty.domain.program import ProgramConfig
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services import events
from loyalty.services.config import ProgramLoader
from loyalty.services.coupon_verification import CouponVerifier, coupon_verifier
from loyalty.services.sweeps import PAGE, Bucket, due_buckets, enqueue, sweep_day
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import AccountChange, Conflict, LedgerRepository, LedgerWrite, LotDraw, spend_relation
from loyalty.store.table import Item, Table

ATTEMPTS = 3


@dataclass
class ExpiryService:
    table: Table
    ledger: LedgerRepository
    config: ConfigRepository
    programs: ProgramLoader
    clock: Clock
    coupons: CouponVerifier

    def plan_all(self) -> int:
        """Every program's buckets that may hold expired lots, as of now in its time zone."""
        return sum(self.plan(tenant, program) for tenant, program in self.config.all_programs())

    def plan(self, tenant: str, program_code: str, as_of: date | None = None) -> int:
        """Enqueue the buckets of the days before `as_of` (default: today in the program's zone)."""
        program = self.programs.load(tenant, program_code)
        day = sweep_day(as_of, self.clock.now().astimezone(program.zone).date())
        buckets = due_buckets(tenant, program_code, day, ("LOT", "COUPON", "TRANSFER"))
        enqueue(get_settings().expiry_queue_url, buckets)
        return len(buckets)

    def sweep(self, bucket: Bucket) -> int:
        """Expire one page of a bucket; returns how many lots (or coupons, or lapsed transfers) it closed."""
        if bucket.kind != "LOT":
            return self.coupons.sweep(bucket, bucket.kind)
        program = self.programs.load(bucket.tenant, bucket.program)
        pk = keys.expiry_bucket(bucket.tenant, bucket.program, bucket.day, bucket.shard)
        lots, more = self.table.query_index("GSI1", pk, limit=PAGE, start=bucket.start)
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
