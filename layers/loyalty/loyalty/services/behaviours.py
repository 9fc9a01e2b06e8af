"""Behaviour points (行为增加积分 / 行为减少积分): a channel reports a behaviour (e.g. a check-in, 签到) and
every behaviour rule of its type adds points to the member (a record and a lot, counted toward upgrade if
the rule says so) or, for a `decrease` rule, takes them first in, first out (a record with its relations).

Exactly once per channel and behaviour id: the first entry of the transaction is the behaviour's own item,
which also keeps the answer for repeats. A rule's daily cap is a per-member, per-day counter incremented
in the same transaction under `count < cap`; a capped rule is left out and the rest are written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import AwareDatetime, Field

from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import CODE_PATTERN, BehaviourRule
from loyalty.domain.errors import Conflict
from loyalty.domain.fifo import plan_draw
from loyalty.domain.ledger import BalanceDelta, RecordType, delta
from loyalty.domain.members import inactive_member
from loyalty.domain.validity import CamelModel, View, end_of_validity, within_window
from loyalty.ids import new_ulid
from loyalty.services import events, timeline
from loyalty.services.accrual import settle
from loyalty.services.config import ProgramLoader
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import Conflict as WriteConflict
from loyalty.store.ledger_repo import LedgerRepository, LedgerWrite, LotDraw, open_lot, spend_relation
from loyalty.store.member_repo import MemberRepository, accounts_by_group
from loyalty.store.table import Item, Table, put, update

ATTEMPTS = 3


class BehaviourReport(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"behaviourType": "checkIn", "behaviourId": "checkin-20261122-0001", "occurredAt": "2026-11-22T08:30:00+08:00"}
    ]
    behaviour_type: str = Field(pattern=CODE_PATTERN, examples=["checkIn"])
    behaviour_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$", description="Unique per channel")
    occurred_at: AwareDatetime


class BehaviourPoints(View):
    record_id: str
    rule_code: str
    point_group_code: str
    points: int


class BehaviourResult(View):
    behaviour_id: str
    behaviour_type: str
    member_id: str
    earned: list[BehaviourPoints]
    capped_rules: list[str] = Field(default_factory=list, description="Rules that reached their daily cap")


@dataclass
class BehaviourService:
    table: Table
    ledger: LedgerRepository
    members: MemberRepository
    programs: ProgramLoader
    clock: Clock

    def report(
        self, tenant: str, channel: str, member_id: str, report: BehaviourReport
    ) -> tuple[BehaviourResult, bool]:
        pk = keys.behaviour(tenant, channel, report.behaviour_id)
        existing = self.table.get(pk, keys.GUARD_SK)
        if existing:
            return _repeat(existing, member_id, report), False
        past = timedelta(days=get_settings().business_time_past_days)
        within_window(report.occurred_at, self.clock.now(), past, "occurredAt")
        items = self.members.items(tenant, member_id)
        profile = items[0]
        accounts = accounts_by_group(items)
        program = self.programs.load(tenant, profile["programCode"])
        rules = sorted(
            (r for r in program.behaviour_rules.values() if r.behaviour_type == report.behaviour_type),
            key=lambda r: r.code,
        )
        capped: list[str] = []
        day = report.occurred_at.astimezone(program.zone).date().isoformat()
        for _ in range(ATTEMPTS + len(rules)):
            now, write = self.clock.now(), LedgerWrite(tenant, member_id, member_active=True)
            totals: dict[str, BalanceDelta] = defaultdict(BalanceDelta)
            payoffs: dict[str, int] = defaultdict(int)
            earned, limited = [], []
            taken: dict[str, int] = defaultdict(int)  # per lot: points the decreases of this report draw
            lots: dict[str, list[Item]] = {}
            for rule in (r for r in rules if r.code not in capped):
                record_id = new_ulid()
                if rule.direction == "decrease":
                    group = rule.point_group_code
                    if group not in lots:
                        lots[group] = self.ledger.open_lots(tenant, member_id, group)
                    write.records.append(_decrease(rule, report, channel, record_id, lots[group], taken, now))
                    totals[group] += delta(RecordType.BEHAVIOUR_DECREASE, -rule.points, False)
                    earned.append(
                        {"recordId": record_id, "ruleCode": rule.code, "pointGroupCode": group, "points": -rule.points}
                    )
                    limited += _daily_cap(write, tenant, member_id, rule, day)
                    continue
                expires = end_of_validity(rule.validity, report.occurred_at, program.zone)
                assert expires is not None
                sk = keys.lot_sk(rule.point_group_code, expires, report.occurred_at, record_id)
                common = {
                    "recordId": record_id,
                    "pointGroupCode": rule.point_group_code,
                    "costCenterCode": rule.cost_center_code,
                    "countsTowardUpgrade": rule.counts_toward_upgrade,
                    "effectiveAt": report.occurred_at.isoformat(),
                    "expiresAt": expires.isoformat(),
                }
                owed = accounts.get(rule.point_group_code, {}).get("debt", 0) - payoffs[rule.point_group_code]
                payoff = min(max(owed, 0), rule.points)
                payoffs[rule.point_group_code] += payoff
                write.records.append(
                    {
                        **common,
                        "type": RecordType.BEHAVIOUR_INCREASE.value,
                        "change": rule.points,
                        "ruleCode": rule.code,
                        "behaviourId": report.behaviour_id,
                        "behaviourType": report.behaviour_type,
                        "channel": channel,
                        "lotSk": sk,
                        "createdAt": now.isoformat(),
                    }
                )
                if payoff < rule.points:
                    write.lots.append(
                        {
                            **common,
                            "SK": sk,
                            "points": rule.points,
                            "remaining": rule.points - payoff,
                            **keys.lot_index(tenant, program.program.code, member_id, expires, sk),
                        }
                    )
                totals[rule.point_group_code] += delta(
                    RecordType.BEHAVIOUR_INCREASE, rule.points, rule.counts_toward_upgrade
                )
                earned.append(
                    {
                        "recordId": record_id,
                        "ruleCode": rule.code,
                        "pointGroupCode": rule.point_group_code,
                        "points": rule.points,
                    }
                )
                limited += _daily_cap(write, tenant, member_id, rule, day)
            settle(write, tenant, program, profile, accounts, totals, payoffs, now)
            _take(write, lots, taken)
            result = {
                "behaviourId": report.behaviour_id,
                "behaviourType": report.behaviour_type,
                "memberId": member_id,
                "earned": earned,
                "cappedRules": capped,
            }
            write.guard = put(
                {"PK": pk, "SK": keys.GUARD_SK, **result, "createdAt": now.isoformat()}, "attribute_not_exists(PK)"
            )
            write.outbox.append(
                events.outbox_entry(
                    tenant,
                    events.DomainEvent(
                        "BehaviourRecorded",
                        {
                            **result,
                            "channel": channel,
                            "programCode": program.program.code,  # what behaviour campaigns read
                            "occurredAt": report.occurred_at.isoformat(),
                        },
                    ),
                    now,
                )
            )
            write.extra.append(
                timeline.activity(
                    tenant,
                    member_id,
                    report.behaviour_type,
                    channel,
                    report.occurred_at,
                    source="channel",
                    behaviourId=report.behaviour_id,
                    points=_points_by_group(earned) or None,
                )
            )
            try:
                self.ledger.write(write)
                return BehaviourResult.model_validate(result), True
            except WriteConflict as conflict:
                if conflict.inactive:
                    raise inactive_member(conflict.inactive) from None
                if conflict.already_applied:
                    stored = self.table.get(pk, keys.GUARD_SK)
                    assert stored is not None
                    return _repeat(stored, member_id, report), False
                if conflict.short:  # a lot or the balance changed since it was read: read again
                    items = self.members.items(tenant, member_id)
                    profile, accounts = items[0], accounts_by_group(items)
                    continue
                capped += [limited[i] for i in conflict.failed_extras]
                if not conflict.failed_extras:  # the member changed meanwhile: read again
                    items = self.members.items(tenant, member_id)
                    profile = items[0]
                    accounts = accounts_by_group(items)
        raise Conflict("the member kept changing; retry", code="CONCURRENT_UPDATE")


def _daily_cap(write: LedgerWrite, tenant: str, member_id: str, rule: BehaviourRule, day: str) -> list[str]:
    """The rule's per-member daily counter, incremented under `count < cap` in the same transaction."""
    if not rule.max_per_day:
        return []
    write.extra.append(
        update(
            keys.member(tenant, member_id),
            keys.behaviour_count_sk(rule.code, day),
            "ADD #count :one",
            {":one": 1, ":cap": rule.max_per_day},
            "attribute_not_exists(#count) OR #count < :cap",
            {"#count": "count"},
        )
    )
    return [rule.code]


def _decrease(
    rule: BehaviourRule,
    report: BehaviourReport,
    channel: str,
    record_id: str,
    lots: list[Item],
    taken: dict[str, int],
    now: datetime,
) -> Item:
    """A 行为减少积分 record drawing `rule.points` first in, first out from what this report has not drawn
    yet; 409 INSUFFICIENT_POINTS (nothing written) when the spendable lots do not cover it."""
    by_key = {lot["SK"]: lot for lot in lots}
    left = [open_lot({**lot, "remaining": lot["remaining"] - taken[lot["SK"]]}) for lot in lots]
    draws = plan_draw(left, rule.points, now)
    for draw in draws:
        taken[draw.lot.sort_key] += draw.points
    return {
        "recordId": record_id,
        "type": RecordType.BEHAVIOUR_DECREASE.value,
        "pointGroupCode": rule.point_group_code,
        "change": -rule.points,
        "ruleCode": rule.code,
        "costCenterCode": rule.cost_center_code,
        "behaviourId": report.behaviour_id,
        "behaviourType": report.behaviour_type,
        "channel": channel,
        "countsTowardUpgrade": False,
        "relations": [spend_relation(by_key[d.lot.sort_key], d.points) for d in draws],
        "effectiveAt": now.isoformat(),
        "createdAt": now.isoformat(),
    }


def _take(write: LedgerWrite, lots: dict[str, list[Item]], taken: dict[str, int]) -> None:
    """One guarded draw per lot the decreases touched, and each such account refused if it would go short."""
    for group_lots in lots.values():
        for lot in group_lots:
            if taken[lot["SK"]]:
                write.draws.append(LotDraw(lot["SK"], lot["remaining"], taken[lot["SK"]]))
    drawn = {group: sum(taken[lot["SK"]] for lot in group_lots) for group, group_lots in lots.items()}
    write.accounts = [
        replace(a, require_available=drawn[a.point_group]) if drawn.get(a.point_group) else a for a in write.accounts
    ]


def _repeat(existing: Item, member_id: str, report: BehaviourReport) -> BehaviourResult:
    if existing.get("memberId") != member_id or existing.get("behaviourType") != report.behaviour_type:
        raise Conflict(
            "this behaviour id was reported for another behaviour", code="BEHAVIOUR_CONFLICT", field="behaviourId"
        )
    return BehaviourResult.model_validate(existing)


def behaviour_service(table: Table | None = None, clock: Clock | None = None) -> BehaviourService:
    table = table or Table()
    return BehaviourService(
        table,
        LedgerRepository(table),
        MemberRepository(table),
        ProgramLoader(ConfigRepository(table)),
        clock or SystemClock(),
    )


def _points_by_group(earned: list[dict]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for entry in earned:
        totals[entry["pointGroupCode"]] += entry["points"]
    return dict(totals)
