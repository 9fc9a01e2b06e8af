"""The reconciliation (对账): every member's ledger and every coupon rule's stock checked against their own
items (domain/reconciliation.py). It reads and reports; it writes nothing but its own run state, so a
difference is for a person to look at, with the items as they were. A member that differs is read again
before it is reported, so a write that landed between two pages of the first read is not taken for a fault.

The nightly run goes a program at a time and a page of its tenant's members at a time (NightlyReconciliation,
D-116). The operator's command (`python -m infra.reconcile`) runs in one process: one pass over the table (a
filtered, projected Scan) lists the members and rules and counts each rule's coupons, then each member's
partition is read whole and each rule's shards in one BatchGetItem.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import time, timedelta
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.reconciliation import Difference, member_differences, rule_differences
from loyalty.observability import logger
from loyalty.services.config import ProgramLoader
from loyalty.services.program_jobs import JobMark, Progress, next_local
from loyalty.services.queues import send_all
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository
from loyalty.store.table import Table, TransactionCancelled, put, update


@dataclass
class Report:
    started_at: str
    members: int = 0
    rules: int = 0
    differences: list[Difference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "startedAt": self.started_at,
            "members": self.members,
            "rules": self.rules,
            "differences": [difference.as_dict() for difference in self.differences],
        }


@dataclass(frozen=True)
class _Census:
    members: list[tuple[str, str]]  # (tenant, member id)
    rules: list[tuple[str, str]]  # (tenant, rule id)
    coupons: Counter[tuple[str, str]]  # (tenant, rule id) -> coupons that exist


@dataclass
class Reconciler:
    table: Table
    clock: Clock

    def run(self, tenant: str | None = None, segment: int = 0, segments: int = 1) -> Report:
        """Check one segment of the table (all of it by default), for one tenant or all."""
        report = Report(started_at=self.clock.now().isoformat())
        census = self._census(tenant, segment, segments)
        for member_tenant, member_id in census.members:
            report.differences += self.member(member_tenant, member_id)
        for rule_tenant, rule_id in census.rules:
            report.differences += self.rule(rule_tenant, rule_id, census.coupons[(rule_tenant, rule_id)])
        report.members, report.rules = len(census.members), len(census.rules)
        for difference in report.differences:
            logger.warning("reconciliation difference", extra={"difference": difference.as_dict()})
        logger.info("reconciled", extra={k: v for k, v in report.as_dict().items() if k != "differences"})
        return report

    def member(self, tenant: str, member_id: str) -> list[Difference]:
        pk = keys.member(tenant, member_id)
        found = member_differences(tenant, member_id, self.table.query_all(pk))
        if found:  # read again: only a difference that stays is reported
            found = member_differences(tenant, member_id, self.table.query_all(pk))
        return found

    def rule(self, tenant: str, rule_id: str, coupons: int) -> list[Difference]:
        rule = self.table.get(keys.coupon_rule(tenant, rule_id), keys.RULE_SK)
        if rule is None:
            return []
        shard_keys = [(keys.coupon_stock(tenant, rule_id, s), keys.STOCK_SK) for s in range(rule.get("shards", 0))]
        shards = list(self.table.get_many(shard_keys).values()) if shard_keys else []
        return rule_differences(tenant, rule, shards, coupons)

    def _census(self, tenant: str | None, segment: int, segments: int) -> _Census:
        prefix = f"T#{tenant}#" if tenant else "T#"
        census = _Census([], [], Counter())
        items = self.table.scan(
            "begins_with(PK, :prefix) AND SK IN (:member, :rule, :coupon)",
            {":prefix": prefix, ":member": keys.MEMBER_SK, ":rule": keys.RULE_SK, ":coupon": keys.COUPON_SK},
            "PK, SK, ruleId",
            segment=segment,
            segments=segments,
        )
        for item in items:
            owner, kind, name = _parts(item["PK"])
            if item["SK"] == keys.MEMBER_SK and kind == "M":
                census.members.append((owner, name))
            elif item["SK"] == keys.RULE_SK and kind == "COUPON_RULE":
                census.rules.append((owner, name))
            elif item["SK"] == keys.COUPON_SK and kind == "COUPON":
                census.coupons[(owner, item["ruleId"])] += 1
        return census


def _parts(pk: str) -> tuple[str, str, str]:
    """`T#<tenant>#<KIND>#<id>` as (tenant, kind, id); tenant ids and codes hold no '#'."""
    _, tenant, kind, rest = (pk.split("#", 3) + ["", ""])[:4]
    return tenant, kind, rest


def reconciler(table: Table | None = None, clock: Clock | None = None) -> Reconciler:
    return Reconciler(table or Table(), clock or SystemClock())


# --- the nightly run, a program at a time, a page of its tenant's members per message (D-116) -------------

MEMBERS_PAGE = 100  # members a page reconciles (each its partition read whole, and its coupons)
RULE_COUNTS = 90  # rule counters one transaction adds, beside the page's marker and the run's counts


@dataclass(frozen=True)
class ReconcilePage:
    """One page of one shard of the tenant's member index, for a program's run: a queue message."""

    tenant: str
    program: str
    run: str  # the program's day the run is for
    shard: int
    page: int = 0
    start: dict[str, Any] | None = None

    def message(self) -> str:
        return json.dumps({"reconcilePage": asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ReconcilePage:
        return cls(**body["reconcilePage"])


@dataclass
class NightlyReconciliation:
    """The schedule's reconciliation: a program's members (their ledgers) and its coupon rules (their stock
    against the coupons that exist), walked through the tenant's member index a page per message, so no
    invocation reads more than a page, whatever the table holds. A member's coupons are counted by rule (its
    coupon index); when the last shard ends, each rule of the program is checked against the counts. It
    writes its own run state (counts, and each difference found) and nothing else."""

    reconciler: Reconciler
    members: MemberRepository
    programs: ProgramLoader
    name = "reconcile"

    @property
    def table(self) -> Table:
        return self.reconciler.table

    @property
    def clock(self) -> Clock:
        return self.reconciler.clock

    def queue_url(self) -> str:
        return get_settings().reconcile_queue_url

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress:
        """Start the program's run of the day: its state, and the first page of each shard."""
        now, zone = self.clock.now(), self.programs.load(tenant, program_code).zone
        run_id = now.astimezone(zone).date().isoformat()
        shards = [s for s in range(keys.MEMBER_SHARDS) if self.members.index_page(tenant, s, 1, None)[0]]
        state = {
            "PK": keys.reconciliation(tenant, program_code),
            "SK": keys.reconcile_run_sk(run_id),
            "status": "running",
            "shards": len(shards),  # those that hold a member: an empty one is no message
            "shardsDone": 0,
            "members": 0,
            "differences": 0,
            "startedAt": now.isoformat(),
            "expiration": int((now + timedelta(days=90)).timestamp()),
        }
        try:
            self.table.transact([put(state, "attribute_not_exists(PK)")])
            send_all(self.queue_url(), [ReconcilePage(tenant, program_code, run_id, s).message() for s in shards])
            if not shards:  # no member: the rules are checked at once
                self._finish(ReconcilePage(tenant, program_code, run_id, 0))
        except TransactionCancelled:
            pass  # this day's run was started (a delivery again): its pages are on their way
        return Progress(now.astimezone(zone).date(), next_local(now, zone, RUN_AT))

    def page(self, page: ReconcilePage) -> list[Difference]:
        """Reconcile one page of members, count their coupons by rule, queue the next page; the page counts
        once (its marker is written with its counts). Returns the differences found."""
        pk = keys.reconciliation(page.tenant, page.program)
        marker = keys.reconcile_run_sk(page.run, f"PAGE#{page.shard:02d}#{page.page:06d}")
        if self.table.get(pk, f"{marker}#0") is not None:
            self._finish(page)
            return []
        member_ids, more = self.members.index_page(page.tenant, page.shard, MEMBERS_PAGE, page.start)
        differences: list[Difference] = []
        coupons: Counter[str] = Counter()
        reconciled = 0
        for member_id in member_ids:
            found, of_program = self._member(page, member_id, coupons)
            differences += found
            reconciled += of_program
        if more:
            send_all(
                self.queue_url(), [ReconcilePage(**{**asdict(page), "page": page.page + 1, "start": more}).message()]
            )
        self._report(page, differences)
        self._count(page, marker, reconciled, len(differences), coupons, last=not more)
        if not more:
            differences += self._finish(page)
        return differences

    def _report(self, page: ReconcilePage, differences: list[Difference]) -> None:
        """Each difference logged (the metric has an alarm) and kept with the run, for a person to look at."""
        pk = keys.reconciliation(page.tenant, page.program)
        expires = int((self.clock.now() + timedelta(days=90)).timestamp())
        for difference in differences:
            logger.warning("reconciliation difference", extra={"difference": difference.as_dict()})
        self.table.put_many(
            [
                {
                    "PK": pk,
                    "SK": keys.reconcile_run_sk(page.run, f"DIFF#{d.subject}#{d.check}#{d.group or ''}"),
                    **d.as_dict(),
                    "expiration": expires,
                }
                for d in differences
            ]
        )

    def _member(self, page: ReconcilePage, member_id: str, coupons: Counter[str]) -> tuple[list[Difference], int]:
        """The member's differences if it is the program's, and its coupons counted by rule (any program's
        member may hold the program's coupons: a transfer crosses programs)."""
        start = None
        while True:
            items, start = self.table.query_index(
                "GSI2", keys.member_coupons(page.tenant, member_id), limit=500, start=start, pk_attribute="GSI2PK"
            )
            coupons.update(item["ruleId"] for item in items if item["SK"] == keys.COUPON_SK)
            if not start:
                break
        profile = self.table.get(keys.member(page.tenant, member_id), keys.MEMBER_SK, consistent=False)
        if profile is None or profile.get("programCode") != page.program:
            return [], 0
        return self.reconciler.member(page.tenant, member_id), 1

    def _count(
        self, page: ReconcilePage, marker: str, members: int, differences: int, coupons: Counter[str], last: bool
    ) -> None:
        """The page's counts, in transactions of RULE_COUNTS rules, each with a marker of its own (a page
        delivered twice adds nothing: its first transaction's marker is what a delivery looks at first)."""
        pk, rules = keys.reconciliation(page.tenant, page.program), sorted(coupons.items())
        chunks = [rules[i : i + RULE_COUNTS] for i in range(0, len(rules), RULE_COUNTS)] or [[]]
        expires = int((self.clock.now() + timedelta(days=90)).timestamp())
        for n, chunk in reversed(list(enumerate(chunks))):  # the first chunk's marker last: it says "counted"
            operations = [put({"PK": pk, "SK": f"{marker}#{n}", "expiration": expires}, "attribute_not_exists(PK)")]
            operations += [
                update(pk, keys.reconcile_run_sk(page.run, f"RULE#{rule}"), "ADD coupons :n SET expiration = :e",
                       {":n": count, ":e": expires})
                for rule, count in chunk
            ]  # fmt: skip
            if n == 0:
                adds = "ADD members :m, differences :d" + (", shardsDone :one" if last else "")
                values = {":m": members, ":d": differences, **({":one": 1} if last else {})}
                operations.append(update(pk, keys.reconcile_run_sk(page.run), adds, values))
            with suppress(TransactionCancelled):  # counted by another delivery
                self.table.transact(operations)

    def _finish(self, page: ReconcilePage) -> list[Difference]:
        """Once every shard has ended: the program's coupon rules against the coupons counted, and the run done."""
        pk = keys.reconciliation(page.tenant, page.program)
        state = self.table.get(pk, keys.reconcile_run_sk(page.run))
        if state is None or state["status"] != "running" or state["shardsDone"] < state["shards"]:
            return []
        differences, rules, start = [], 0, None
        while True:
            items, start = self.table.query_index("GSI1", keys.coupon_rules_index(page.tenant), limit=100, start=start)
            for rule in items:
                if rule.get("rule", {}).get("programCode") != page.program:
                    continue
                counted = self.table.get(pk, keys.reconcile_run_sk(page.run, f"RULE#{rule['ruleId']}"))
                differences += self.reconciler.rule(page.tenant, rule["ruleId"], int((counted or {}).get("coupons", 0)))
                rules += 1
            if not start:
                break
        done = {":done": "done", ":running": "running", ":rules": rules, ":d": len(differences)}
        done[":now"] = self.clock.now().isoformat()
        try:
            self.table.transact(
                [
                    update(
                        pk,
                        keys.reconcile_run_sk(page.run),
                        "SET #status = :done, finishedAt = :now, #rules = :rules ADD differences :d",
                        done,
                        "#status = :running",
                        {"#status": "status", "#rules": "rules"},
                    )
                ]
            )
        except TransactionCancelled:
            return []  # the last pages of two shards finish it at once: one reports
        self._report(page, differences)
        logger.info("reconciled", extra={"program": page.program, "run": page.run, "rules": rules})
        return differences


RUN_AT = time(3, 30)  # the program's night: after its sweeps


def nightly_reconciliation(table: Table | None = None, clock: Clock | None = None) -> NightlyReconciliation:
    table = table or Table()
    return NightlyReconciliation(
        reconciler(table, clock), MemberRepository(table), ProgramLoader(ConfigRepository(table))
    )
