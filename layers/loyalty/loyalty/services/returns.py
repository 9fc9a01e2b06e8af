"""Returns (process_return): reverse what the returned lines earned and give back what the order spent.

Ingest stores the return once per channel and number, with a ReturnReceived event (the outbox), which a
rule sends to the return queue. Processing traces back through the original order (§8.5):

- each returned line reverses its points (domain/returns.py), as 退货积分冲销 per point group, drawn from
  the order's own lot first, then from the member's other lots first in, first out; what is still short
  becomes debt (available goes negative) that later earnings pay off first;
- points that paid the order come back (积分兑换取消积分返回) to their source lots with their expiry, or
  to a new lot ending the day after the return where the source has expired;
- the tier accumulator drops by the reversed qualifying points, with no tier evaluation.

A return that arrives before its order has accrued waits on the order, and the accrual announces it again
in its own transaction, so it is applied seconds after the accrual (D-115). All of one
return commits in one transaction whose first entry marks the return processed, so a redelivered message
changes nothing; the order's running totals are guarded by a version, so two returns of one order queue up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import Conflict, InvalidInput
from loyalty.domain.ledger import BalanceDelta, RecordType, delta
from loyalty.domain.returns import ReturnAccepted, ReturnSubmission, points_to_reverse, share_to_give_back
from loyalty.domain.validity import within_window
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services import events
from loyalty.services.accrual import RetryLater
from loyalty.services.config import ProgramLoader
from loyalty.services.coupon_verification import CouponVerifier, coupon_verifier
from loyalty.services.orders import ACCRUED, HELD, REJECTED, UNATTACHED
from loyalty.services.orders import RECEIVED as RECEIVED_ORDER
from loyalty.services.orders import fingerprint as request_fingerprint
from loyalty.services.redemption import end_of_validity_day_after
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.ledger_repo import AccountChange, LedgerRepository, LedgerWrite, LotDraw, ProfileMetrics
from loyalty.store.ledger_repo import Conflict as WriteConflict
from loyalty.store.order_repo import OrderRepository
from loyalty.store.requests import key_digest
from loyalty.store.table import Item, Table, TransactionCancelled, put, update

RECEIVED, PROCESSED = "received", "processed"
ATTEMPTS = 3


@dataclass
class ReturnService:
    table: Table
    orders: OrderRepository
    ledger: LedgerRepository
    programs: ProgramLoader
    clock: Clock
    coupons: CouponVerifier | None = None  # gives back coupons a returned order used

    # --- ingest -----------------------------------------------------------------------------------------

    def ingest(
        self, tenant: str, channel: str, submission: ReturnSubmission, idempotency_key: str | None = None
    ) -> tuple[ReturnAccepted, bool]:
        """Accept a return; returns (answer, first), as orders do: a retry under the Idempotency-Key that
        posted it gets the first answer (202 received), another repeat its state now (200)."""
        fingerprint, key = request_fingerprint(submission), key_digest(idempotency_key)
        pk = keys.return_(tenant, channel, submission.return_no)
        existing = self.table.get(pk, keys.RETURN_SK)
        if existing:
            return _repeat(existing, fingerprint, key)
        past = timedelta(days=get_settings().business_time_past_days)
        within_window(submission.returned_at, self.clock.now(), past, "returnedAt")
        order = self.orders.get(tenant, channel, submission.original_order_no)
        if order is None:
            raise InvalidInput(
                f"no order {submission.original_order_no!r} from {channel}",
                code="UNKNOWN_ORDER",
                field="originalOrderNo",
            )
        if order["status"] == REJECTED:
            raise Conflict(
                "the order was rejected on review and earned nothing", code="ORDER_REJECTED", field="originalOrderNo"
            )
        quantities, returned = _line_quantities(order)
        if submission.whole_order and all(q <= returned.get(no, Decimal(0)) for no, q in quantities.items()):
            raise InvalidInput(
                "every line of this order was returned already", code="NOTHING_TO_RETURN", field="wholeOrder"
            )
        for index, line in enumerate(submission.lines):
            if line.line_no not in quantities:
                raise InvalidInput(
                    f"the order has no line {line.line_no}", code="UNKNOWN_LINE", field=f"lines/{index}/lineNo"
                )
            if line.quantity > quantities[line.line_no] - returned.get(line.line_no, Decimal(0)):
                raise InvalidInput(
                    "more than is left to return on this line",
                    code="RETURN_EXCEEDS_ORDER",
                    field=f"lines/{index}/quantity",
                )
        now = self.clock.now()
        member_id = order.get("memberId")
        item = {
            "returnId": new_ulid(),
            "channel": channel,
            "returnNo": submission.return_no,
            "originalOrderNo": submission.original_order_no,
            "status": RECEIVED if member_id else UNATTACHED,
            "receivedAt": now.isoformat(),
            "submission": submission.model_dump(mode="json", by_alias=True),
        }
        stored = {
            "PK": pk,
            "SK": keys.RETURN_SK,
            **item,
            "fingerprint": fingerprint,
            **({"requestKey": key} if key else {}),
        }
        if member_id:
            item["memberId"] = member_id
            sales = keys.member_sales(tenant, member_id)
            stored |= {
                "memberId": member_id,
                **keys.sale_index(sales, submission.returned_at, keys.SALE_RETURN, channel, submission.return_no),
            }
            follow = events.outbox_entry(tenant, events.DomainEvent("ReturnReceived", {"return": item}), now)
        else:  # a non-member sale's return earns nothing back: the order only counts what is left to return
            follow = _returned_quantities(tenant, order, submission, UNATTACHED)
        try:
            self.table.transact([put(stored, "attribute_not_exists(PK)"), follow])
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return _repeat(cancelled.items[0] or self.table.get(pk, keys.RETURN_SK) or {}, fingerprint, key)
            if cancelled.failed(1):  # the order was attached or returned meanwhile: decide again from its state
                return self.ingest(tenant, channel, submission, idempotency_key)
            raise
        return _accepted(item), True

    # --- processing ---------------------------------------------------------------------------------------

    def process(self, tenant: str, ret: Item) -> bool:
        """Apply a ReturnReceived return; False when it had been applied before."""
        for _ in range(ATTEMPTS):
            order = self.orders.get(tenant, ret["channel"], ret["originalOrderNo"])
            if order is not None and order["status"] in (RECEIVED_ORDER, HELD):
                if self._wait(tenant, ret, order):
                    return False  # its order's accrual announces it again
                continue  # accrued meanwhile: read it again
            if order is None or order["status"] != ACCRUED:
                raise RetryLater(f"order {ret['originalOrderNo']} has not accrued yet")
            try:
                self.ledger.write(self._plan(tenant, ret, order))
                self._coupons_back(tenant, ret, order, applied_before=False)
                return True
            except WriteConflict as conflict:
                if conflict.already_applied:
                    self._coupons_back(tenant, ret, order, applied_before=True)
                    return False
        raise RetryLater(f"member {ret['memberId']} kept changing while processing return {ret['returnNo']}")

    def _wait(self, tenant: str, ret: Item, order: Item) -> bool:
        """A return that arrived before its order accrued waits on the order: the accrual (or the release of
        a held order) announces it again in its own transaction (services/accrual.py), seconds later. False
        when the order accrued meanwhile (then it is applied now)."""
        try:
            self.table.transact(
                [
                    update(
                        keys.order(tenant, order["channel"], order["orderNo"]),
                        keys.ORDER_SK,
                        "SET waitingReturns = list_append(if_not_exists(waitingReturns, :none), :ret)",
                        {":none": [], ":ret": [ret], ":received": RECEIVED_ORDER, ":held": HELD},
                        "#status IN (:received, :held)",
                        {"#status": "status"},
                    )
                ]
            )
        except TransactionCancelled:
            return False
        logger.info("return waits for its order's accrual", extra={"return_no": ret["returnNo"]})
        return True

    def _coupons_back(self, tenant: str, ret: Item, order: Item, applied_before: bool) -> None:
        """退单返券 once the whole order has come back (also on a redelivery, in case the first stopped here)."""
        if self.coupons is None:
            return
        quantity, returned = _line_quantities(order)
        if not applied_before:
            returned = _returned_after(order, ReturnSubmission.stored(ret["submission"]))
        if all(returned.get(no, Decimal(0)) >= q for no, q in quantity.items()):
            self.coupons.give_back(tenant, ret["channel"], ret["originalOrderNo"])

    def _plan(self, tenant: str, ret: Item, order: Item) -> LedgerWrite:
        submission = ReturnSubmission.stored(ret["submission"])
        member_id, now = order["memberId"], self.clock.now()
        program = self.programs.load(tenant, order["submission"]["programCode"])
        lines = {line["lineNo"]: line for line in order["submission"]["lines"]}
        quantity, returned_before = _line_quantities(order)
        now_returning = (
            {no: quantity[no] - returned_before.get(no, Decimal(0)) for no in quantity}
            if submission.whole_order
            else {line.line_no: line.quantity for line in submission.lines}
        )
        now_returning = {no: q for no, q in now_returning.items() if q > 0}
        reversed_before: dict[str, dict[str, int]] = order.get("reversed", {})

        lots = {lot["SK"]: lot for lot in self.ledger.open_lots(tenant, member_id)}
        net: dict[str, int] = defaultdict(int)  # per lot: points added (+) or taken (-) by this return
        write = LedgerWrite(tenant, member_id)
        totals: dict[str, BalanceDelta] = defaultdict(BalanceDelta)
        debts: dict[str, int] = defaultdict(int)
        reversed_now: dict[str, dict[str, int]] = {}

        by_group: dict[str, list[tuple[Item, int]]] = defaultdict(list)
        for record in order.get("earnedRecords", []):
            before = reversed_before.get(record["recordId"], {})
            per_line = {
                str(lp["lineNo"]): points_to_reverse(
                    lp["points"],
                    quantity[lp["lineNo"]],
                    returned_before.get(lp["lineNo"], Decimal(0)),
                    now_returning[lp["lineNo"]],
                    before.get(str(lp["lineNo"]), 0),
                )
                for lp in record["lines"]
                if lp["lineNo"] in now_returning
            }
            reversed_now[record["recordId"]] = {
                k: before.get(k, 0) + per_line.get(k, 0) for k in set(before) | set(per_line)
            }
            if sum(per_line.values()):
                by_group[record["pointGroupCode"]].append((record, sum(per_line.values())))

        for group, parts in sorted(by_group.items()):
            relations, short = [], 0
            for record, points in parts:  # the order's own lot first
                lot = lots.get(record["lotSk"])
                take = min(points, lot["remaining"] + net[lot["SK"]]) if lot else 0
                if take:
                    net[lot["SK"]] -= take  # type: ignore[index]
                    relations.append(
                        {
                            "recordId": record["recordId"],
                            "points": take,
                            "lotSk": record["lotSk"],
                            "expiresAt": record["expiresAt"],
                        }
                    )
                short += points - take
                totals[group] += delta(RecordType.RETURN_REVERSAL, -points, record["countsTowardUpgrade"])
            for sk in sorted(lots):  # then first in, first out from the member's other lots
                lot = lots[sk]
                left = lot["remaining"] + net[sk]
                if (
                    short == 0
                    or lot["pointGroupCode"] != group
                    or left <= 0
                    or datetime.fromisoformat(lot["expiresAt"]) < now
                ):
                    continue
                take = min(short, left)
                net[sk] -= take
                short -= take
                relations.append(
                    {"recordId": lot["recordId"], "points": take, "lotSk": sk, "expiresAt": lot["expiresAt"]}
                )
            debts[group] += short
            record_id = new_ulid()
            write.records.append(
                {
                    "recordId": record_id,
                    "type": RecordType.RETURN_REVERSAL.value,
                    "pointGroupCode": group,
                    "change": -sum(points for _, points in parts),
                    "relations": relations,
                    "debt": short,
                    "countsTowardUpgrade": any(r["countsTowardUpgrade"] for r, _ in parts),
                    "orderId": order["orderId"],
                    "orderNo": order["orderNo"],
                    "returnNo": ret["returnNo"],
                    "channel": ret["channel"],
                    "effectiveAt": now.isoformat(),
                    "createdAt": now.isoformat(),
                }
            )

        given_back = self._give_back(
            tenant,
            ret,
            order,
            submission,
            quantity,
            lines,
            returned_before,
            now_returning,
            lots,
            net,
            write,
            totals,
            program,
            now,
        )
        for sk, change in net.items():
            lot = lots.get(sk)
            if change < 0 and lot:
                write.draws.append(LotDraw(sk, lot["remaining"], -change))
            elif change > 0 and lot:
                write.returns.append(
                    {**{k: v for k, v in lot.items() if k not in ("PK", "remaining")}, "SK": sk, "remaining": change}
                )
        for group, total in totals.items():
            name = program.group_name(group)
            write.accounts.append(
                AccountChange(
                    group,
                    name,
                    total.cumulative,
                    total.available,
                    total.expired,
                    total.qualifying,
                    None,
                    debt=debts[group],
                )
            )
        returned_amount = sum(
            (
                (Decimal(str(lines[no]["paid"])) * q / quantity[no]).quantize(Decimal("0.01"))
                for no, q in now_returning.items()
            ),
            Decimal(0),
        )
        # the spend metrics and the tier's spend measure go down (no downgrade until the sweep, as for points)
        write.profile = ProfileMetrics(adds={"returnedAmount": returned_amount, "tierSpend": -returned_amount})
        version = order.get("returnsVersion", 0)
        returned_after = {
            str(no): returned_before.get(no, Decimal(0)) + now_returning.get(no, Decimal(0)) for no in quantity
        }
        write.guard = update(
            keys.return_(tenant, ret["channel"], ret["returnNo"]),
            keys.RETURN_SK,
            "SET #status = :processed, processedAt = :now, returnedAmount = :amount, reversedPoints = :points",
            {
                ":processed": PROCESSED,
                ":received": RECEIVED,
                ":now": now.isoformat(),
                ":amount": returned_amount,
                ":points": {g: -t.cumulative for g, t in totals.items() if t.cumulative},
            },
            "#status = :received",
            {"#status": "status"},
        )
        write.extra.append(
            update(
                keys.order(tenant, ret["channel"], ret["originalOrderNo"]),
                keys.ORDER_SK,
                "SET returnedQuantities = :returned, reversed = :reversed, usedGivenBack = :given,"
                " returnsVersion = :next",
                {
                    ":returned": returned_after,
                    ":reversed": reversed_now,
                    ":given": order.get("usedGivenBack", 0) + given_back,
                    ":next": version + 1,
                    ":v": version,
                },
                "attribute_not_exists(returnsVersion) OR returnsVersion = :v"
                if version == 0
                else "returnsVersion = :v",
            )
        )
        write.outbox.append(
            events.outbox_entry(
                tenant,
                events.DomainEvent(
                    "ReturnProcessed",
                    {
                        "memberId": member_id,
                        "returnNo": ret["returnNo"],
                        "orderNo": ret["originalOrderNo"],
                        "reversed": {g: -t.cumulative for g, t in totals.items() if t.cumulative},
                        "pointsGivenBack": given_back,
                        # what campaigns read: the order, and whether nothing of it is left (coupons taken back)
                        "orderId": order["orderId"],
                        "fullyReturned": all(Decimal(returned_after[str(no)]) >= q for no, q in quantity.items()),
                    },
                ),
                now,
            )
        )
        return write

    def _give_back(
        self,
        tenant: str,
        ret: Item,
        order: Item,
        submission: ReturnSubmission,
        quantity: dict[int, Decimal],
        lines: dict[int, Item],
        returned_before: dict[int, Decimal],
        now_returning: dict[int, Decimal],
        lots: dict[str, Item],
        net: dict[str, int],
        write: LedgerWrite,
        totals: dict[str, BalanceDelta],
        program: Any,
        now: datetime,
    ) -> int:
        """Points that paid the order come back, in proportion to the paid amount returned so far."""
        pointer = self.table.get(keys.order_spend(tenant, ret["channel"], ret["originalOrderNo"]), keys.ORDER_SK)
        spend = self.ledger.record(tenant, pointer["memberId"], pointer["recordId"]) if pointer else None
        if spend is None or spend.get("cancelledAt"):
            return 0
        paid = {no: Decimal(str(line["paid"])) for no, line in lines.items()}
        returned_paid = sum(
            (
                paid[no]
                * min(returned_before.get(no, Decimal(0)) + now_returning.get(no, Decimal(0)), quantity[no])
                / quantity[no]
                for no in quantity
            ),
            Decimal(0),
        )
        whole = all(
            returned_before.get(no, Decimal(0)) + now_returning.get(no, Decimal(0)) >= quantity[no] for no in quantity
        )
        given_before = order.get("usedGivenBack", 0)
        points = share_to_give_back(
            -spend["change"], sum(paid.values(), Decimal(0)), returned_paid, given_before, whole
        )
        if points <= 0:
            return 0
        group, skip, left, relations, late = spend["pointGroupCode"], given_before, points, [], 0
        for relation in spend["relations"]:  # in the order they were spent, past what earlier returns gave back
            share = relation["points"] - min(skip, relation["points"])
            skip = max(0, skip - relation["points"])
            back = min(share, left)
            if back <= 0:
                continue
            left -= back
            if datetime.fromisoformat(relation["expiresAt"]) >= now:
                sk = relation["lot"]["SK"]
                lots.setdefault(sk, {**relation["lot"], "remaining": 0})
                net[sk] += back
                relations.append(
                    {"recordId": relation["recordId"], "points": back, "lotSk": sk, "expiresAt": relation["expiresAt"]}
                )
            else:
                late += back
        record_id = new_ulid()
        if late:  # their source lot has expired: a new lot to the end of the day after the return (§8.5)
            expires = end_of_validity_day_after(now, program)
            sk = keys.lot_sk(group, expires, now, record_id)
            write.lots.append(
                {
                    "SK": sk,
                    "recordId": record_id,
                    "pointGroupCode": group,
                    "points": late,
                    "remaining": late,
                    "effectiveAt": now.isoformat(),
                    "expiresAt": expires.isoformat(),
                    "countsTowardUpgrade": False,
                    **keys.lot_index(tenant, program.program.code, order["memberId"], expires, sk),
                }
            )
            relations.append({"recordId": record_id, "points": late, "lotSk": sk, "expiresAt": expires.isoformat()})
        write.records.append(
            {
                "recordId": record_id,
                "type": RecordType.REDEEM_CANCEL_RETURN.value,
                "pointGroupCode": group,
                "change": points,
                "relations": relations,
                "returnNo": ret["returnNo"],
                "orderNo": ret["originalOrderNo"],
                "channel": ret["channel"],
                "countsTowardUpgrade": False,
                "effectiveAt": now.isoformat(),
                "createdAt": now.isoformat(),
                **({"lotSk": write.lots[-1]["SK"]} if late else {}),
            }
        )
        totals[group] += delta(RecordType.REDEEM_CANCEL_RETURN, points, False)
        return points


def _line_quantities(order: Item) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
    """Each line's quantity on the order, and how much of each has come back so far."""
    quantity = {line["lineNo"]: Decimal(str(line["quantity"])) for line in order["submission"]["lines"]}
    returned = {int(k): Decimal(str(v)) for k, v in order.get("returnedQuantities", {}).items()}
    return quantity, returned


def _returned_after(order: Item, submission: ReturnSubmission) -> dict[int, Decimal]:
    """How much of each line will have come back once this return is counted."""
    quantity, returned = _line_quantities(order)
    if submission.whole_order:
        returned = dict(quantity)
    for line in submission.lines:
        returned[line.line_no] = returned.get(line.line_no, Decimal(0)) + line.quantity
    return returned


def _returned_quantities(tenant: str, order: Item, submission: ReturnSubmission, status: str) -> dict:
    """The update of a non-member order's returned quantities by this return, guarded by the order's status and
    its returns' version (two returns of one order queue up; an order attached meanwhile is decided again)."""
    returned = _returned_after(order, submission)
    version = order.get("returnsVersion", 0)
    return update(
        keys.order(tenant, order["channel"], order["orderNo"]),
        keys.ORDER_SK,
        "SET returnedQuantities = :returned, returnsVersion = :next",
        {
            ":returned": {str(no): q for no, q in returned.items()},
            ":next": version + 1,
            ":v": version,
            ":status": status,
        },
        "#status = :status AND (attribute_not_exists(returnsVersion) OR returnsVersion = :v)",
        {"#status": "status"},
    )


def _accepted(item: Item) -> ReturnAccepted:
    return ReturnAccepted(
        return_id=item["returnId"],
        return_no=item["returnNo"],
        original_order_no=item["originalOrderNo"],
        status=item["status"],
    )


def _repeat(existing: Item, fingerprint: str, key: str | None) -> tuple[ReturnAccepted, bool]:
    if existing.get("fingerprint") != fingerprint:
        raise Conflict("this return number was used for another return", code="RETURN_CONFLICT", field="returnNo")
    if key and existing.get("requestKey") == key:
        return _accepted({**existing, "status": RECEIVED}), True
    return _accepted(existing), False


def return_service(table: Table | None = None, clock: Clock | None = None) -> ReturnService:
    table = table or Table()
    return ReturnService(
        table,
        OrderRepository(table),
        LedgerRepository(table),
        ProgramLoader(ConfigRepository(table)),
        clock or SystemClock(),
        coupon_verifier(table, clock),
    )
