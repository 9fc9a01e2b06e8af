"""A member's purchase history, and non-member sales attached later (spec social-hub §6.3, issue 13).

Every order and return of a member is in the member's sales index (GSI2, by business time), so the history
is one query, newest first. A sale to a buyer who is no member is stored as `unattached` (no points), in
the index of the phone it named, if any (D-081). When the buyer registers, an operator attaches it within
the program's window: one transaction gives the order its member and writes the OrderReceived event, so
the order then accrues exactly as if it had been posted for the member, once (the accrual's own guard is the
order's status).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.members import inactive_member
from loyalty.domain.orders import OrderAttachment, OrderView, SalePage, SaleView, naming_member
from loyalty.services import events
from loyalty.services.config import ProgramLoader
from loyalty.services.orders import RECEIVED, UNATTACHED
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository
from loyalty.store.order_repo import OrderRepository
from loyalty.store.requests import RequestKey, key_digest
from loyalty.store.table import Item, Table, TransactionCancelled, check, decode_cursor, encode_cursor, update

CENT = Decimal("0.01")


@dataclass
class SalesService:
    table: Table
    orders: OrderRepository
    members: MemberRepository
    programs: ProgramLoader
    clock: Clock

    def history(self, tenant: str, member_id: str, limit: int, cursor: str | None) -> SalePage:
        """The member's orders and returns, newest first, with the points each earned or took back."""
        self.members.profile(tenant, member_id)  # 404 for a member this tenant does not have
        return self._page(tenant, keys.member_sales(tenant, member_id), limit, cursor)

    def unattached(self, tenant: str, member_id: str, limit: int, cursor: str | None) -> SalePage:
        """Non-member sales that named the member's phone, not attached to anyone yet, newest first."""
        profile = self.members.profile(tenant, member_id)
        if not profile.get("phone"):
            return SalePage(items=[])
        return self._page(tenant, keys.buyer_sales(tenant, profile["phone"]), limit, cursor)

    def attach(
        self, tenant: str, member_id: str, body: OrderAttachment, key_id: str, request: RequestKey | None
    ) -> OrderView:
        """Make a non-member sale the member's: it accrues then, once. 409 when it is attached already (to
        anyone), has a return, or is older than the program's window; a retry under the same key gets the
        attached order."""
        digest = key_digest(f"{request.operation}#{request.key}") if request else None
        order = self.orders.get(tenant, body.channel, body.order_no)
        if order is None:
            raise NotFound(f"no order {body.order_no!r} from {body.channel}", code="ORDER_NOT_FOUND")
        if digest and order.get("attachKey") == digest:
            return OrderView.model_validate(order)
        _attachable(order)
        profile = self.members.profile(tenant, member_id)
        submission = order["submission"]
        if profile["programCode"] != submission["programCode"]:
            raise InvalidInput(
                "the order was made in another program than the member's", code="ORDER_OTHER_PROGRAM", field="orderNo"
            )
        if profile["status"] != "active":
            raise inactive_member(profile["status"])
        program = self.programs.load(tenant, submission["programCode"]).program
        now = self.clock.now()
        ordered_at = datetime.fromisoformat(submission["orderedAt"])
        if ordered_at < now - timedelta(days=program.attach_window_days):
            raise Conflict(
                f"the order is older than this program's {program.attach_window_days}-day window for attaching",
                code="ATTACH_WINDOW_PASSED",
                field="orderNo",
            )
        attached = {
            **{k: v for k, v in order.items() if k not in ("PK", "SK", "GSI2PK", "GSI2SK", "fingerprint")},
            "status": RECEIVED,
            "memberId": member_id,
            "submission": naming_member(submission, member_id),
            "tierCode": profile["tier"]["code"],
            "attachedAt": now.isoformat(),
            "attachedBy": key_id,
        }
        attached.pop("requestKey", None)
        index = keys.sale_index(
            keys.member_sales(tenant, member_id), ordered_at, keys.SALE_ORDER, body.channel, body.order_no
        )
        received = events.DomainEvent("OrderReceived", {"order": attached})
        try:
            self.table.transact(
                [
                    update(
                        keys.order(tenant, body.channel, body.order_no),
                        keys.ORDER_SK,
                        "SET memberId = :member, tierCode = :tier, #status = :received, attachedAt = :now, "
                        "attachedBy = :by, attachKey = :key, GSI2PK = :gpk, GSI2SK = :gsk, submission.#member = :ref",
                        {
                            ":member": member_id,
                            ":tier": attached["tierCode"],
                            ":received": RECEIVED,
                            ":unattached": UNATTACHED,
                            ":now": attached["attachedAt"],
                            ":by": key_id,
                            ":key": digest or "",
                            ":gpk": index["GSI2PK"],
                            ":gsk": index["GSI2SK"],
                            ":ref": attached["submission"]["member"],
                        },
                        "#status = :unattached AND attribute_not_exists(returnsVersion)",
                        {"#status": "status", "#member": "member"},
                    ),
                    check(
                        keys.member(tenant, member_id),
                        keys.MEMBER_SK,
                        "#mstatus = :active",
                        {":active": "active"},
                        {"#mstatus": "status"},
                    ),
                    events.outbox_entry(tenant, received, now),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):  # attached or returned meanwhile
                _attachable(cancelled.items[0] or self.orders.get(tenant, body.channel, body.order_no) or order)
            if cancelled.failed(1):
                raise inactive_member(self.members.profile(tenant, member_id)["status"]) from None
            raise
        return OrderView.model_validate(self.orders.get(tenant, body.channel, body.order_no))

    def _page(self, tenant: str, partition: str, limit: int, cursor: str | None) -> SalePage:
        start = _start_key(tenant, partition, decode_cursor(cursor, "")) if cursor else None
        items, last = self.table.query_index(
            "GSI2", partition, limit=limit, start=start, pk_attribute="GSI2PK", newest_first=True
        )
        return SalePage(
            items=[_sale(item) for item in items], next_cursor=encode_cursor(last["GSI2SK"]["S"]) if last else None
        )


def _attachable(order: Item) -> None:
    if order["status"] != UNATTACHED:
        raise Conflict(
            "the order is a member's already",
            code="ORDER_ALREADY_ATTACHED",
            field="orderNo",
            memberId=order.get("memberId"),
        )
    if "returnsVersion" in order:
        raise Conflict(
            "the order has a return: it is kept as a non-member sale", code="ORDER_RETURNED", field="orderNo"
        )


def _sale(item: Item) -> SaleView:
    """An order or a return as the purchase history shows it."""
    if "returnNo" in item:
        return SaleView(
            kind="return",
            channel=item["channel"],
            number=item["returnNo"],
            original_order_no=item["originalOrderNo"],
            at=item["submission"]["returnedAt"],
            amount=item.get("returnedAmount"),
            status=item["status"],
            points={group: -int(points) for group, points in item.get("reversedPoints", {}).items()},
        )
    submission = item["submission"]
    points: dict[str, int] = defaultdict(int)
    for earned in item.get("earned", []):
        points[earned["pointGroupCode"]] += int(earned["points"])
    return SaleView(
        kind="order",
        channel=item["channel"],
        number=item["orderNo"],
        store_code=submission["storeCode"],
        at=submission["orderedAt"],
        amount=sum((Decimal(str(line["paid"])) for line in submission["lines"]), Decimal(0)).quantize(CENT),
        status=item["status"],
        points=dict(points),
    )


def _start_key(tenant: str, partition: str, sort_key: str) -> dict[str, Any]:
    """The index position a page resumes after, rebuilt from its sort key (time#kind#channel#number)."""
    if sort_key.count("#") < 3:
        raise InvalidInput("the cursor belongs to another listing", code="INVALID_CURSOR", field="cursor")
    pk, sk = keys.sale_key(tenant, sort_key)
    return {"PK": {"S": pk}, "SK": {"S": sk}, "GSI2PK": {"S": partition}, "GSI2SK": {"S": sort_key}}


def sales_service(table: Table | None = None, clock: Clock | None = None) -> SalesService:
    table = table or Table()
    return SalesService(
        table,
        OrderRepository(table),
        MemberRepository(table),
        ProgramLoader(ConfigRepository(table)),
        clock or SystemClock(),
    )
