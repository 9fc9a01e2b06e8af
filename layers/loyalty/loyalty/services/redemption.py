"""Spending points FIFO (redeem_points), cancelling a spend, and operators' manual adjustments.

A spend reads the member and their open lots, plans the draw (domain/fifo.py) and writes one transaction:
the consuming record with its relations, each lot drawn (guarded by the remaining points read), and the
account (guarded by `available >= points`). So the balance never goes below zero whatever runs at the
same time; a lot changed by a concurrent spend makes this one read again and retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.fifo import MAX_LOTS_PER_SPEND, plan_draw
from loyalty.domain.ledger import RecordType, delta
from loyalty.domain.members import inactive_member
from loyalty.domain.program import ProgramConfig
from loyalty.domain.redemption import AdjustmentRequest, RedemptionRequest, SpendView
from loyalty.domain.validity import FixedDate, FixedPeriod, end_of_validity
from loyalty.ids import new_ulid
from loyalty.services import events
from loyalty.services.accrual import settle
from loyalty.services.config import ProgramLoader
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import AccountChange, LedgerRepository, LedgerWrite, LotDraw, open_lot, spend_relation
from loyalty.store.ledger_repo import Conflict as WriteConflict
from loyalty.store.member_repo import MemberRepository, accounts_by_group
from loyalty.store.requests import RequestKey
from loyalty.store.table import Item, Table, put, update

ATTEMPTS = 3
SPEND_TYPES = {
    RecordType.REDEEM_GIFT,
    RecordType.REDEEM_COUPON,
    RecordType.MANUAL_DECREASE,
    RecordType.BEHAVIOUR_DECREASE,
}
CANCELLABLE = {RecordType.REDEEM_GIFT, RecordType.REDEEM_COUPON}


class ExtrasRefused(Exception):
    """A spend written with other entries (`extra`) was refused by one of those: `failed(i)` and `items[i]`
    say which and what it found, in the order the entries were given."""

    def __init__(self, failed: tuple[int, ...], items: tuple[Item | None, ...]) -> None:
        super().__init__(f"refused by entries {failed}")
        self._failed = set(failed)
        self.items = items

    def failed(self, index: int) -> bool:
        return index in self._failed


@dataclass(frozen=True)
class Grant:
    """Points given into a lot of their own: an operator's increase (人工积分调整增加), a campaign's gift."""

    point_group_code: str
    points: int
    validity: FixedPeriod | FixedDate
    counts_toward_upgrade: bool
    record_type: RecordType
    details: dict[str, Any]  # kept on the record: reason, operator, cost center, campaign ...
    event: str  # the domain event announcing it (PointsAdjusted, PointsEarned)
    cost_center_code: str | None = None
    announced: dict[str, Any] = field(default_factory=dict)  # more of the event's detail


@dataclass
class RedemptionService:
    ledger: LedgerRepository
    members: MemberRepository
    programs: ProgramLoader
    clock: Clock

    def redeem(
        self, tenant: str, channel: str, member_id: str, request: RedemptionRequest, key: RequestKey | None = None
    ) -> SpendView:
        details = {
            "purpose": request.purpose,
            "reference": request.reference,
            "orderNo": request.order_no,
            "channel": channel,
        }
        pointer = None
        if request.order_no:  # a return of that order gives these points back (services/returns.py)
            pointer = keys.order_spend(tenant, channel, request.order_no)
        record = self._spend(
            tenant, member_id, request.point_group_code, request.points, request.record_type, details, pointer, key=key
        )
        return _view(record)

    def spend_with(
        self,
        tenant: str,
        member_id: str,
        group: str,
        points: int,
        details: dict[str, Any],
        extra: list[dict],
        outbox: list[dict],
        record_id: str,
    ) -> Item:
        """Spend points for something written in the same transaction (积分兑换优惠券: the coupon), so that
        both happen or neither; ExtrasRefused when one of `extra` was refused. The caller names the record
        (`record_id`), so what it writes beside it can point at it."""
        return self._spend(
            tenant,
            member_id,
            group,
            points,
            RecordType.REDEEM_COUPON,
            details,
            extra=extra,
            outbox=outbox,
            record_id=record_id,
        )

    def adjust(
        self, tenant: str, member_id: str, request: AdjustmentRequest, operator: str, key: RequestKey | None = None
    ) -> SpendView:
        details = {"reason": request.reason, "operator": operator, "costCenterCode": request.cost_center_code}
        group = request.point_group_code
        if request.points < 0:
            return _view(
                self._spend(
                    tenant,
                    member_id,
                    group,
                    -request.points,
                    RecordType.MANUAL_DECREASE,
                    details,
                    key=key,
                    by_member=False,
                    counts_toward_upgrade=request.counts_toward_upgrade,
                )
            )
        grant = Grant(
            group,
            request.points,
            request.validity,
            request.counts_toward_upgrade,
            RecordType.MANUAL_INCREASE,
            details,
            "PointsAdjusted",
            request.cost_center_code,
        )
        record = self.grant(tenant, member_id, grant, key=key)
        return _view(record)

    def grant(
        self,
        tenant: str,
        member_id: str,
        grant: Grant,
        key: RequestKey | None = None,
        extra: list[dict] | None = None,
        record_id: str | None = None,
        linked: Callable[[Item], list[dict]] | None = None,
        program_code: str | None = None,
    ) -> Item:
        """Points into a new lot of their own (an operator's increase, a campaign's gift), with its record,
        in one transaction with `extra` (a campaign's once-only marker, limit and budget) and what `linked`
        makes of the record (an order naming it, so a return reverses it): ExtrasRefused names the entry
        that refused, counting `extra` first. A retry under `key` gets the first record. A caller that
        knows the member's program (`program_code`) saves reading the member for it."""
        group = grant.point_group_code
        program = self._program(tenant, member_id, group, program_code)
        now, record_id = self.clock.now(), record_id or new_ulid()
        expires = end_of_validity(grant.validity, now, program.zone)
        assert expires is not None
        lot_sk = keys.lot_sk(group, expires, now, record_id)
        common = {
            "recordId": record_id,
            "pointGroupCode": group,
            "effectiveAt": now.isoformat(),
            "expiresAt": expires.isoformat(),
            "countsTowardUpgrade": grant.counts_toward_upgrade,
        }
        record = {
            **common,
            "type": grant.record_type.value,
            "change": grant.points,
            "lotSk": lot_sk,
            "relations": [],
            "createdAt": now.isoformat(),
            **_present(grant.details),
        }
        change = delta(grant.record_type, grant.points, grant.counts_toward_upgrade)
        announced = {"memberId": member_id, "recordId": record_id, "pointGroupCode": group, "points": grant.points}
        for _ in range(ATTEMPTS):
            write = LedgerWrite(
                tenant,
                member_id,
                records=[record],
                guard=key.marker(recordId=record_id) if key else None,
                extra=[*(extra or []), *(linked(record) if linked else [])],
                lots=[
                    {
                        **common,
                        "SK": lot_sk,
                        "points": grant.points,
                        "remaining": grant.points,
                        **_present({"costCenterCode": grant.cost_center_code}),
                        **keys.lot_index(tenant, program.program.code, member_id, expires, lot_sk),
                    }
                ],
                outbox=[
                    events.outbox_entry(tenant, events.DomainEvent(grant.event, {**announced, **grant.announced}), now)
                ],
            )
            if grant.counts_toward_upgrade:  # evaluated for an upgrade like an accrual (§5.1)
                items = self.members.items(tenant, member_id)
                settle(write, tenant, program, items[0], accounts_by_group(items), {group: change}, {}, now)
            else:
                write.accounts = [_account(program, group, change)]
            try:
                self.ledger.write(write)
                return record
            except WriteConflict as conflict:
                if key and conflict.already_applied:
                    return self._spend_record(tenant, member_id, key.first_effect(self.ledger.table)["recordId"])
                if conflict.failed_extras:
                    raise ExtrasRefused(conflict.failed_extras, conflict.extra_items) from None
                if conflict.already_applied:
                    raise
        raise Conflict("the member's points changed while adjusting; retry", code="CONCURRENT_UPDATE")

    def get(self, tenant: str, member_id: str, spend_id: str) -> SpendView:
        return _view(self._spend_record(tenant, member_id, spend_id))

    def cancel(self, tenant: str, member_id: str, spend_id: str, key: RequestKey | None = None) -> SpendView:
        """Give a redemption's points back (积分兑换取消积分返回) to the lots they came from, with their
        expiry; points whose lot has expired meanwhile get a new lot ending the day after (§8.5). Once: a
        retry with the cancel's own Idempotency-Key gets its answer, any other repeat 409."""
        record = self._spend_record(tenant, member_id, spend_id)
        if RecordType(record["type"]) not in CANCELLABLE:
            raise Conflict("only redemptions can be cancelled", code="NOT_CANCELLABLE")
        if record.get("cancelledAt"):
            return self._cancelled_before(record, key)
        program = self._program(tenant, member_id, record["pointGroupCode"])
        now, cancel_id = self.clock.now(), new_ulid()
        returns, relations, late = [], [], 0
        for relation in record["relations"]:
            if datetime.fromisoformat(relation["expiresAt"]) >= now:
                returns.append({**relation["lot"], "remaining": relation["points"]})
                relations.append(
                    {
                        "recordId": relation["recordId"],
                        "points": relation["points"],
                        "expiresAt": relation["expiresAt"],
                        "lotSk": relation["lot"]["SK"],
                    }
                )
            else:
                late += relation["points"]
        lots = []
        if late:  # their lot expired meanwhile: a new lot to the end of the day after today
            expires = end_of_validity_day_after(now, program)
            lot_sk = keys.lot_sk(record["pointGroupCode"], expires, now, cancel_id)
            lots.append(
                {
                    "SK": lot_sk,
                    "recordId": cancel_id,
                    "pointGroupCode": record["pointGroupCode"],
                    "points": late,
                    "remaining": late,
                    "effectiveAt": now.isoformat(),
                    "expiresAt": expires.isoformat(),
                    "countsTowardUpgrade": False,
                    **keys.lot_index(tenant, program.program.code, member_id, expires, lot_sk),
                }
            )
            relations.append({"recordId": cancel_id, "points": late, "expiresAt": expires.isoformat(), "lotSk": lot_sk})
        points = -record["change"]
        cancel_record = {
            "recordId": cancel_id,
            "type": RecordType.REDEEM_CANCEL_RETURN.value,
            "pointGroupCode": record["pointGroupCode"],
            "change": points,
            "cancels": spend_id,
            "relations": relations,
            "effectiveAt": now.isoformat(),
            "createdAt": now.isoformat(),
            "countsTowardUpgrade": False,
        }
        if lots:
            cancel_record["lotSk"] = lots[0]["SK"]
        pk = keys.member(tenant, member_id)
        try:
            self.ledger.write(
                LedgerWrite(
                    tenant,
                    member_id,
                    records=[cancel_record],
                    lots=lots,
                    returns=returns,
                    guard=update(
                        pk,
                        keys.record_sk(spend_id),
                        "SET cancelledAt = :now, cancelRecordId = :id",
                        {":now": now.isoformat(), ":id": cancel_id},
                        "attribute_not_exists(cancelledAt)",
                    ),
                    extra=[key.marker(recordId=cancel_id)] if key else [],
                    accounts=[
                        _account(
                            program, record["pointGroupCode"], delta(RecordType.REDEEM_CANCEL_RETURN, points, False)
                        )
                    ],
                    outbox=[
                        events.outbox_entry(
                            tenant,
                            events.DomainEvent(
                                "RedemptionCancelled",
                                {
                                    "memberId": member_id,
                                    "redemptionId": spend_id,
                                    "recordId": cancel_id,
                                    "pointGroupCode": record["pointGroupCode"],
                                    "points": points,
                                },
                            ),
                            now,
                        )
                    ],
                )
            )
        except WriteConflict as conflict:  # cancelled meanwhile, by this key's first attempt or another call
            if not (conflict.already_applied or conflict.failed_extras):
                raise
            return self._cancelled_before(self._spend_record(tenant, member_id, spend_id), key)
        return _view(self._spend_record(tenant, member_id, spend_id))

    def _cancelled_before(self, record: Item, key: RequestKey | None) -> SpendView:
        """The first answer for the key that cancelled it; for anyone else, the state: already cancelled."""
        if key is not None and key.first_effect_or_none(self.ledger.table) is not None:
            return _view(record)
        raise Conflict(
            "this redemption was cancelled before", code="REDEMPTION_ALREADY_CANCELLED", field="redemptionId"
        )

    # --- the spend itself ------------------------------------------------------------------------------

    def _spend(
        self,
        tenant: str,
        member_id: str,
        group: str,
        points: int,
        record_type: RecordType,
        details: dict[str, Any],
        order_pointer: str | None = None,
        extra: list[dict] | None = None,
        outbox: list[dict] | None = None,
        key: RequestKey | None = None,
        record_id: str | None = None,
        by_member: bool = True,
        counts_toward_upgrade: bool = False,
    ) -> Item:
        """Spend FIFO; `by_member` (not an operator's adjustment) is refused while the member is frozen."""
        program = self._program(tenant, member_id, group)
        extra = extra or []
        first = 1 if key else 0  # the request's marker goes first among the extra entries
        record_id = record_id or new_ulid()  # an attempt that fails writes nothing: the next may reuse it
        for _ in range(ATTEMPTS):
            now = self.clock.now()
            lots = self.ledger.open_lots(tenant, member_id, group)
            draws = plan_draw([open_lot(lot) for lot in lots], points, now, MAX_LOTS_PER_SPEND - len(extra) - first)
            by_key = {lot["SK"]: lot for lot in lots}
            record = {
                "recordId": record_id,
                "type": record_type.value,
                "pointGroupCode": group,
                "change": -points,
                "effectiveAt": now.isoformat(),
                "createdAt": now.isoformat(),
                "countsTowardUpgrade": counts_toward_upgrade,
                "relations": [spend_relation(by_key[d.lot.sort_key], d.points) for d in draws],
                **_present(details),
            }
            change = delta(record_type, -points, counts_toward_upgrade)  # a counted decrease lowers 保级累计
            try:
                self.ledger.write(
                    LedgerWrite(
                        tenant,
                        member_id,
                        records=[record],
                        guard=put(
                            {"PK": order_pointer, "SK": keys.ORDER_SK, "memberId": member_id, "recordId": record_id},
                            "attribute_not_exists(PK)",
                        )
                        if order_pointer
                        else None,
                        draws=[LotDraw(d.lot.sort_key, d.lot.remaining, d.points) for d in draws],
                        accounts=[_account(program, group, change, require_available=points)],
                        extra=[key.marker(recordId=record_id)] + extra if key else extra,
                        member_active=by_member,
                        outbox=[
                            *(outbox or []),
                            events.outbox_entry(
                                tenant,
                                events.DomainEvent(
                                    "PointsRedeemed",
                                    {
                                        "memberId": member_id,
                                        "recordId": record_id,
                                        "type": record_type.value,
                                        "pointGroupCode": group,
                                        "points": points,
                                    },
                                ),
                                now,
                            ),
                        ],
                    )
                )
                return record
            except WriteConflict as conflict:
                if conflict.inactive:
                    raise inactive_member(conflict.inactive) from None
                if key and 0 in conflict.failed_extras:  # a retry of a spend made before: its record
                    return self._spend_record(tenant, member_id, key.first_effect(self.ledger.table)["recordId"])
                if conflict.failed_extras:
                    failed = tuple(i - first for i in conflict.failed_extras)
                    raise ExtrasRefused(failed, conflict.extra_items[first:]) from None
                if conflict.already_applied:
                    raise Conflict(
                        "points already paid this order", code="ORDER_ALREADY_PAID", field="orderNo"
                    ) from None
                if conflict.short:
                    raise Conflict(
                        "the account does not have these points", code="INSUFFICIENT_POINTS", field="points"
                    ) from None
        raise Conflict("the member's points changed while spending; retry", code="CONCURRENT_UPDATE")

    def _program(self, tenant: str, member_id: str, group: str, program_code: str | None = None) -> ProgramConfig:
        """The member's program (read from the profile unless the caller knows it), which has `group`."""
        program = self.programs.load(tenant, program_code or self.members.items(tenant, member_id)[0]["programCode"])
        if group not in program.point_groups:
            raise InvalidInput(
                f"no point group {group!r} in program {program.program.code}",
                code="UNKNOWN_POINT_GROUP",
                field="pointGroupCode",
            )
        return program

    def _spend_record(self, tenant: str, member_id: str, spend_id: str) -> Item:
        record = self.ledger.record(tenant, member_id, spend_id)
        if record is None or RecordType(record["type"]) not in SPEND_TYPES | {RecordType.MANUAL_INCREASE}:
            raise NotFound(f"no redemption {spend_id!r}", code="REDEMPTION_NOT_FOUND")
        return record


def end_of_validity_day_after(now: datetime, program: ProgramConfig) -> datetime:
    """The end of tomorrow in the program's time zone (§8.5: returned points whose lot expired)."""
    until = end_of_validity(FixedPeriod(days=1), now, program.zone)
    assert until is not None
    return until


def _account(program: ProgramConfig, group: str, change: Any, require_available: int | None = None) -> AccountChange:
    return AccountChange(
        group,
        program.group_name(group),
        change.cumulative,
        change.available,
        change.expired,
        change.qualifying,
        None,
        require_available,
    )


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _view(record: Item) -> SpendView:
    return SpendView.model_validate(
        {
            **record,
            "id": record["recordId"],
            "points": abs(record["change"]),
            "status": "cancelled" if record.get("cancelledAt") else "active",
            "relations": [
                {"recordId": r["recordId"], "points": r["points"], "expiresAt": r["expiresAt"]}
                for r in record.get("relations", [])
            ],
        }
    )


def redemption_service(table: Table | None = None, clock: Clock | None = None) -> RedemptionService:
    table = table or Table()
    return RedemptionService(
        LedgerRepository(table), MemberRepository(table), ProgramLoader(ConfigRepository(table)), clock or SystemClock()
    )
