"""The tier sweep (会员降级服务): members whose tier ended keep it (保级) or drop (降级).

Profiles carry a sparse GSI1 key for the day their tier ends (keys.tier_index), so a sweep reads only
the members concerned: those whose tier ended by the day it sweeps through. Each member is decided and
written in one transaction: the new tier record (a new period), the old one invalid, and every accumulator
the decision read reset to 0 under the condition that it still holds what was read, so an accrual landing
meanwhile is never wiped: the member is re-read and decided again. The base tier never ends, so its
members are never in the index.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import ORDERS, SPEND
from loyalty.domain.errors import NotFound
from loyalty.domain.program import ProgramConfig
from loyalty.domain.tiers import reached_rule, retention_outcome
from loyalty.observability import logger
from loyalty.services import events
from loyalty.services.accrual import measures_guard, tier_change, tier_measures
from loyalty.services.config import ProgramLoader
from loyalty.services.program_jobs import JobMark, Progress
from loyalty.services.sweeps import PAGE, Bucket, buckets_through, enqueue, scheduled_sweep, sweep_day
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import AccountChange, Conflict, LedgerRepository, LedgerWrite, ProfileMetrics
from loyalty.store.member_repo import MemberRepository, accounts_by_group
from loyalty.store.table import Table

ATTEMPTS = 3


def partition(bucket: Bucket) -> str:
    """The index partition of a bucket of the tier queue: members whose tier ends, one shard."""
    return keys.ends_index(bucket.tenant, bucket.program, "TIER", bucket.shard)


@dataclass
class TierSweepService:
    table: Table
    ledger: LedgerRepository
    members: MemberRepository
    config: ConfigRepository
    programs: ProgramLoader
    clock: Clock

    name = "tiers"

    def queue_url(self) -> str:
        return get_settings().tier_queue_url

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress:
        """The schedule's run for one program (services/program_jobs.py): the buckets of members whose tier
        ended by yesterday that hold someone."""
        program = self.programs.load(tenant, program_code)
        plan = (tenant, program_code, ("TIER",))
        return scheduled_sweep(self.table, self.queue_url(), plan, partition, self.clock.now(), program.zone)

    def plan(self, tenant: str, program_code: str, as_of: date | None = None) -> int:
        """An operator's run for one program: the members whose tier ended before `as_of` (default: today in
        the program's zone), as the schedule would have planned them that day."""
        program = self.programs.load(tenant, program_code)
        day = sweep_day(as_of, self.clock.now().astimezone(program.zone).date())
        buckets = buckets_through(tenant, program_code, day - timedelta(days=1), ("TIER",))
        enqueue(get_settings().tier_queue_url, buckets)
        return len(buckets)

    def sweep(self, bucket: Bucket) -> int:
        """Review one page of members whose tier ended on the bucket's day; returns how many changed."""
        program = self.programs.load(bucket.tenant, bucket.program)
        profiles, more = self.table.query_index(
            "GSI1", partition(bucket), limit=PAGE, start=bucket.start, sk_between=keys.through_day(bucket.day)
        )
        changed = sum(self._review(bucket.tenant, program, profile["memberId"]) for profile in profiles)
        if more:
            enqueue(get_settings().tier_queue_url, [bucket.next(more)])
        return changed

    def _review(self, tenant: str, program: ProgramConfig, member_id: str) -> bool:
        for _ in range(ATTEMPTS):
            try:
                items = self.members.items(tenant, member_id)
            except NotFound:
                return False
            profile, now = items[0], self.clock.now()
            until = profile["tier"].get("validUntil")
            today = now.astimezone(program.zone).date()
            if until is None or datetime.fromisoformat(until).astimezone(program.zone).date() >= today:
                return False  # the index lagged a tier change: nothing is due
            accounts = list(accounts_by_group(items).values())
            qualifying: dict[str, int | Decimal] = {a["pointGroupCode"]: a.get("qualifying", 0) for a in accounts}
            spend, orders = tier_measures(profile)
            qualifying[SPEND], qualifying[ORDERS] = spend, orders
            kind, tier = retention_outcome(program, profile["tier"]["code"], qualifying)
            guard, seen = measures_guard(profile)  # the spend and orders of the ended period start again at 0
            reset = ProfileMetrics(adds={"tierSpend": -spend, "tierOrders": -orders}, condition=guard, values=seen)
            change = tier_change(
                tenant, profile, tier, kind, program, now, reached_rule(program, tier.code, qualifying)
            )
            resets = [
                AccountChange(a["pointGroupCode"], a["name"], 0, 0, 0, -a.get("qualifying", 0), a.get("qualifying", 0))
                for a in accounts
            ]
            try:
                self.ledger.write(
                    LedgerWrite(
                        tenant,
                        member_id,
                        accounts=resets,
                        tier=change,
                        profile=reset,
                        outbox=[
                            events.outbox_entry(
                                tenant,
                                events.DomainEvent(
                                    "TierChanged",
                                    {
                                        "memberId": member_id,
                                        "from": profile["tier"]["code"],
                                        "to": tier.code,
                                        "type": kind.lower(),
                                        "recordId": change.new_record["recordId"],
                                        "programCode": program.program.code,
                                        "changedAt": now.isoformat(),
                                    },
                                ),
                                now,
                            )
                        ],
                    )
                )
                return True
            except Conflict:
                continue
        logger.warning("member kept changing during the tier sweep", extra={"member_id": member_id})
        raise RuntimeError("retry this bucket")


def tier_sweep_service(table: Table | None = None, clock: Clock | None = None) -> TierSweepService:
    table = table or Table()
    config = ConfigRepository(table)
    return TierSweepService(
        table, LedgerRepository(table), MemberRepository(table), config, ProgramLoader(config), clock or SystemClock()
    )
