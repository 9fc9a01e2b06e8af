"""Order ingest (ingest_order): validate, store once per channel and order number, announce for accrual.

Posting never computes points: the OrderReceived event (written with the order, see services/events.py)
reaches the order queue through an EventBridge rule, and accrue_points does the rest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import KINDS
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.members import inactive_member, normalize_phone
from loyalty.domain.orders import OrderAccepted, OrderSubmission, OrderView, naming_member
from loyalty.domain.validity import within_window
from loyalty.ids import new_ulid
from loyalty.services import events
from loyalty.services.config import CatalogLoader, ProgramLoader, open_store
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository
from loyalty.store.order_repo import OrderRepository
from loyalty.store.requests import key_digest
from loyalty.store.table import Item, Table

RECEIVED, ACCRUED, HELD, REJECTED, UNATTACHED = "received", "accrued", "held", "rejected", "unattached"


@dataclass
class OrderService:
    orders: OrderRepository
    members: MemberRepository
    config: ConfigRepository
    programs: ProgramLoader
    catalogs: CatalogLoader
    clock: Clock

    def ingest(
        self, tenant: str, channel: str, submission: OrderSubmission, idempotency_key: str | None = None
    ) -> tuple[OrderAccepted, bool]:
        """Accept an order; returns (answer, first). A retry under the Idempotency-Key that posted it gets the
        first answer (202 received); another repeat of the same order its state now (200); the same number
        with other content is a 409."""
        digest, key = fingerprint(submission), key_digest(idempotency_key)
        existing = self.orders.get(tenant, channel, submission.order_no)
        if existing:
            return _answer_repeat(existing, digest, key)
        now = self.clock.now()
        within_window(submission.ordered_at, now, timedelta(days=get_settings().business_time_past_days), "orderedAt")
        submission.check_money()
        program = self.programs.load(tenant, submission.program_code).program  # 404 for an unknown program
        ceiling, amount = program.max_order_amount, submission.amount()
        if ceiling is not None and amount > ceiling:
            raise InvalidInput(
                f"the order's amount {amount} is above this program's per-order ceiling {ceiling}",
                code="ORDER_AMOUNT_OVER_CEILING",
                field="lines",
            )
        member = self._member(tenant, channel, submission)
        self._check_references(tenant, submission)
        sold = submission.model_dump(mode="json", by_alias=True)
        order: dict[str, Any] = {
            "orderId": new_ulid(),
            "channel": channel,
            "orderNo": submission.order_no,
            "status": RECEIVED if member else UNATTACHED,
            "receivedAt": now.isoformat(),
            "fingerprint": digest,
            **({"requestKey": key} if key else {}),
            "submission": sold,
        }
        outbox = []
        if member:
            order |= {
                "memberId": member["memberId"],
                "tierCode": member["tier"]["code"],
                "submission": naming_member(sold, member["memberId"]),
            }
            received = events.DomainEvent(
                "OrderReceived", {"order": {k: v for k, v in order.items() if k not in ("fingerprint", "requestKey")}}
            )
            outbox.append(events.outbox_entry(tenant, received, now))
            index = keys.member_sales(tenant, member["memberId"])
        else:  # a non-member sale: no points, findable by the phone it named, if any
            index = keys.buyer_sales(tenant, buyer) if (buyer := _buyer(submission)) else ""
        if index:
            order |= keys.sale_index(index, submission.ordered_at, keys.SALE_ORDER, channel, submission.order_no)
        taken = self.orders.receive(tenant, order, outbox)
        if taken:  # the same number arrived meanwhile
            return _answer_repeat(taken, digest, key)
        return _answer(order), True

    def get(self, tenant: str, channel: str, order_no: str) -> OrderView:
        order = self.orders.get(tenant, channel, order_no)
        if order is None:
            raise NotFound(f"no order {order_no!r} from {channel}", code="ORDER_NOT_FOUND")
        return OrderView.model_validate(order)

    def _member(self, tenant: str, channel: str, submission: OrderSubmission) -> Item | None:
        """The buyer's profile; None for a non-member sale (no member named, or a phone, card or identity that
        is nobody's). An unknown member id is a mistake, not a sale: 422."""
        reference = submission.member
        if reference is None:
            return None
        try:
            if reference.id:
                member_id = reference.id
            elif reference.phone:
                member_id = self.members.id_by_phone(tenant, normalize_phone(reference.phone))
            elif reference.card_no:
                member_id = self.members.id_by_card(tenant, reference.card_no)
            else:
                assert reference.identity
                member_id = self.members.id_by_identity(
                    tenant, channel, reference.identity.type, reference.identity.value
                )
            profile = self.members.items(tenant, member_id)[0]
        except (NotFound, ValueError):
            if reference.id:
                raise InvalidInput("no such member", code="UNKNOWN_MEMBER", field="member") from None
            return None
        if profile["programCode"] != submission.program_code:
            raise InvalidInput("the member belongs to another program", code="UNKNOWN_MEMBER", field="member")
        if profile["status"] in ("frozen", "cancelled"):
            raise inactive_member(profile["status"])
        return profile

    def _check_references(self, tenant: str, submission: OrderSubmission) -> None:
        open_store(self.config, tenant, submission.store_code)
        if fractional := submission.fractional_lines():  # rare: only these lines' products are read
            by_weight = self.config.get_many(tenant, KINDS["product"], None, [line.sku for _, line in fractional])
            for index, line in fractional:
                product = by_weight.get(line.sku)
                if product is None or not getattr(product.item, "sold_by_weight", False):
                    raise InvalidInput(
                        f"line {line.line_no} sells {line.quantity} of {line.sku}, which is not sold by weight",
                        code="FRACTIONAL_QUANTITY",
                        field=f"lines/{index}/quantity",
                    )
        known = self.catalogs.load(tenant).payment_methods
        for index, payment in enumerate(submission.payments):
            if payment.method_code not in known:
                raise InvalidInput(
                    f"no payment method {payment.method_code!r}",
                    code="UNKNOWN_PAYMENT_METHOD",
                    field=f"payments/{index}/methodCode",
                )


def _buyer(submission: OrderSubmission) -> str | None:
    """The phone (normalised) a non-member sale named, if any: how it is found when its buyer registers."""
    reference = submission.member
    return normalize_phone(reference.phone) if reference and reference.phone else None


def fingerprint(submission: BaseModel) -> str:
    """What makes two posts the same request: the canonical JSON of the body, hashed."""
    canonical = json.dumps(submission.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _answer(order: Item) -> OrderAccepted:
    return OrderAccepted.model_validate(order)


def _answer_repeat(existing: Item, fingerprint: str, key: str | None) -> tuple[OrderAccepted, bool]:
    if existing.get("fingerprint") != fingerprint:
        raise Conflict(
            "this order number was used for another order",
            code="ORDER_CONFLICT",
            field="orderNo",
            existingOrderId=existing.get("orderId"),
        )
    if key and existing.get("requestKey") == key:
        return _answer({**existing, "status": RECEIVED}), True
    return _answer(existing), False


def order_service(table: Table | None = None, clock: Clock | None = None) -> OrderService:
    table = table or Table()
    config = ConfigRepository(table)
    return OrderService(
        OrderRepository(table),
        MemberRepository(table),
        config,
        ProgramLoader(config),
        CatalogLoader(config),
        clock or SystemClock(),
    )
