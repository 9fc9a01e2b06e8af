"""Orders held for review (the daily points ceiling): operators list them, release them (they accrue as
they are, past the ceiling) or reject them (they never earn). Each decision is conditional on the order
still being held, so two operators deciding at once give one decision and one 409. The decision keeps
the digest of its Idempotency-Key, so a retry of it gets the decided order again, not the 409.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.orders import HeldOrderPage, OrderRejection, OrderRelease, OrderView
from loyalty.services.accrual import AccrualService, Release, RetryLater, accrual_service
from loyalty.services.orders import HELD, REJECTED
from loyalty.store import keys
from loyalty.store.order_repo import OrderRepository
from loyalty.store.requests import RequestKey, key_digest
from loyalty.store.table import Item, Table, TransactionCancelled, decode_cursor, encode_cursor, update

ATTEMPTS = 3  # a release re-reads the member this often when a concurrent change moved it


@dataclass
class OrderReviewService:
    table: Table
    orders: OrderRepository
    accrual: AccrualService
    clock: Clock

    def held(self, tenant: str, limit: int, cursor: str | None) -> HeldOrderPage:
        """The tenant's held orders, longest waiting first."""
        start = _start_key(tenant, decode_cursor(cursor, "")) if cursor else None
        items, last = self.table.query_index("GSI1", keys.held_orders(tenant), limit=limit, start=start)
        next_cursor = encode_cursor(last["GSI1SK"]["S"]) if last else None
        return HeldOrderPage(items=[OrderView.model_validate(i) for i in items], next_cursor=next_cursor)

    def release(
        self, tenant: str, channel: str, order_no: str, body: OrderRelease, key_id: str, request: RequestKey | None
    ) -> OrderView:
        digest = key_digest(f"{request.operation}#{request.key}") if request else None
        for _ in range(ATTEMPTS):
            order = self._held(tenant, channel, order_no, digest)
            if order["status"] != HELD:
                return OrderView.model_validate(order)  # this key's own decision, retried
            try:
                if self.accrual.accrue(tenant, order, Release(key_id, body.note, digest)):
                    return self._view(tenant, channel, order_no)
            except RetryLater:
                continue
            break  # decided meanwhile: answer from the state
        self._held(tenant, channel, order_no, digest)
        raise Conflict("the member kept changing; try again", code="ORDER_REVIEW_CONFLICT")

    def reject(
        self, tenant: str, channel: str, order_no: str, body: OrderRejection, key_id: str, request: RequestKey | None
    ) -> OrderView:
        digest = key_digest(f"{request.operation}#{request.key}") if request else None
        order = self._held(tenant, channel, order_no, digest)
        if order["status"] != HELD:
            return OrderView.model_validate(order)
        try:
            self.table.transact(
                [
                    update(
                        keys.order(tenant, channel, order_no),
                        keys.ORDER_SK,
                        "SET #status = :rejected, reviewedAt = :now, reviewedBy = :by, reviewNote = :note, "
                        "reviewKey = :key REMOVE GSI1PK, GSI1SK",
                        {
                            ":rejected": REJECTED,
                            ":held": HELD,
                            ":now": self.clock.now().isoformat(),
                            ":by": key_id,
                            ":note": body.note,
                            ":key": digest or "",
                        },
                        "#status = :held",
                        {"#status": "status"},
                    )
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                self._held(tenant, channel, order_no)  # decided meanwhile by another: 409
            raise
        return self._view(tenant, channel, order_no)

    def _held(self, tenant: str, channel: str, order_no: str, digest: str | None = None) -> Item:
        """The order while held, or already decided under this Idempotency-Key; else 404 or 409."""
        order = self.orders.get(tenant, channel, order_no)
        if order is None:
            raise NotFound(f"no order {order_no!r} from {channel}", code="ORDER_NOT_FOUND")
        if digest and order.get("reviewKey") == digest:
            return order
        if order["status"] != HELD:
            raise Conflict(f"the order is {order['status']}, not held for review", code="ORDER_NOT_HELD")
        return order

    def _view(self, tenant: str, channel: str, order_no: str) -> OrderView:
        return OrderView.model_validate(self.orders.get(tenant, channel, order_no))


def _start_key(tenant: str, sort_key: str) -> dict[str, Any]:
    """The index position a page resumes after, rebuilt from its sort key (held-at#channel#order-no)."""
    parts = sort_key.split("#")
    if len(parts) != 3:
        raise InvalidInput("the cursor belongs to another listing", code="INVALID_CURSOR", field="cursor")
    _, channel, order_no = parts
    return {
        "PK": {"S": keys.order(tenant, channel, order_no)},
        "SK": {"S": keys.ORDER_SK},
        "GSI1PK": {"S": keys.held_orders(tenant)},
        "GSI1SK": {"S": sort_key},
    }


def order_review_service(table: Table | None = None, clock: Clock | None = None) -> OrderReviewService:
    table = table or Table()
    clock = clock or SystemClock()
    return OrderReviewService(table, OrderRepository(table), accrual_service(table, clock), clock)
