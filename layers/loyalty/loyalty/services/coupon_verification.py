"""Verification (核销, verify_coupon): validate without side effects, redeem, roll back; and what returns,
the expiry sweep and lapsed transfers do to coupons.

A redemption is one transaction over every code on the order: each coupon `issued -> used` under the
condition that it is still issued and still the owner's, its settlement record (结算数据, anxin A.8.5), the
order's pointer to it (for returns), and the dashboard counters on the coupon's stock shard. So a coupon is
used at most once whatever arrives at the same time; the same order presenting the same codes again gets
the first answer back.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from loyalty.clock import Clock, SystemClock
from loyalty.domain.coupons import (
    CouponOrder,
    CouponState,
    CouponTerms,
    Reason,
    Verdict,
    as_of,
    check,
    check_time,
    lapsed,
    window_on_return,
)
from loyalty.domain.errors import Conflict, NotFound
from loyalty.domain.validity import CamelModel, View
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services import events
from loyalty.services.config import CatalogLoader, ProgramLoader, open_store
from loyalty.services.coupons import lapse_transfer
from loyalty.services.sweeps import PAGE, Bucket, enqueue
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.requests import RequestKey
from loyalty.store.table import Item, Page, Table, TransactionCancelled, put, update

ATTEMPTS = 3


class RedeemRequest(CouponOrder):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [
        {"codes": ["1086321312752127"], "orderNo": "roy202103230000000041", "storeCode": "SH001", "orderAmount": "100"}
    ]
    verifier: str | None = Field(default=None, max_length=64, description="核销员id: who verified it at the store")


class CouponCheck(View):
    code: str
    usable: bool
    discount: Decimal
    reasons: list[Reason]


class ValidationResult(View):
    usable: bool = Field(description="Every code is usable on this order")
    discount_total: Decimal
    coupons: list[CouponCheck]


class RedeemedCoupon(View):
    code: str
    rule_id: str
    discount: Decimal


class RedemptionResult(View):
    redemption_id: str
    order_no: str
    store_code: str
    order_amount: Decimal
    discount_total: Decimal
    paid_amount: Decimal = Field(description="订单实收: the order amount less every coupon's discount")
    coupons: list[RedeemedCoupon]
    redeemed_at: datetime


class RollbackRequest(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"orderNo": "roy202103230000000041"}]
    order_no: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


@dataclass
class CouponVerifier:
    table: Table
    programs: ProgramLoader
    catalogs: CatalogLoader
    clock: Clock

    def validate(self, tenant: str, order: CouponOrder) -> ValidationResult:
        now = self.clock.now()
        coupons = {code: as_of(c, now) if c else None for code, c in self._coupons(tenant, order.codes).items()}
        verdicts = self._verdicts(tenant, order, coupons, check_time(order, now))
        return _result(verdicts)

    def redeem(self, tenant: str, channel: str, request: RedeemRequest) -> tuple[RedemptionResult, bool]:
        """(result, created): False when this order had redeemed these codes before (nothing written)."""
        for _ in range(ATTEMPTS):
            coupons = self._coupons(tenant, request.codes)
            if any(c and lapsed(c, self.clock.now()) for c in coupons.values()):  # the giver's again: record it
                for coupon in coupons.values():
                    if coupon:
                        lapse_transfer(self.table, self.programs, tenant, coupon, self.clock.now())
                coupons = self._coupons(tenant, request.codes)
            earlier = _earlier_redemption(coupons, request, channel)
            if earlier:
                return earlier, False
            open_store(ConfigRepository(self.table), tenant, request.store_code)  # a closed store redeems none
            now = self.clock.now()
            verdicts = self._verdicts(tenant, request, coupons, check_time(request, now))  # as of the sale
            if not all(v.usable for v in verdicts):
                result = _result(verdicts)
                raise Conflict(
                    "a coupon is not usable on this order",
                    code="COUPON_NOT_USABLE",
                    field="codes",
                    coupons=[c.model_dump(mode="json", by_alias=True) for c in result.coupons],
                )
            try:
                return self._write(tenant, channel, request, coupons, verdicts, now), True
            except TransactionCancelled:
                continue  # a coupon changed meanwhile (used, transferred): check again from the top
        raise Conflict("the coupons kept changing; retry", code="CONCURRENT_UPDATE")

    def rollback(self, tenant: str, code: str, order_no: str, key: RequestKey | None = None) -> Item:
        """Undo a redemption (the sale was voided): the coupon is usable again, counters go back. Once: a
        retry with the rollback's own Idempotency-Key gets its answer, any other repeat 409."""
        coupon = self._coupon(tenant, code)
        if not _redeemed_on(coupon, order_no):
            return self._not_redeemed(coupon, order_no, key)
        try:
            self._unuse(tenant, coupon, self.clock.now(), "rollback", [key.marker(code=code)] if key else [])
        except TransactionCancelled:  # undone meanwhile (by this key's first attempt, or another call)
            coupon = self._coupon(tenant, code)
            if _redeemed_on(coupon, order_no):
                raise
            return self._not_redeemed(coupon, order_no, key)
        return self._coupon(tenant, code)

    def _coupon(self, tenant: str, code: str) -> Item:
        coupon = self._coupons(tenant, [code])[code]
        if coupon is None:
            raise NotFound("no coupon with this code", code="COUPON_NOT_FOUND", field="code")
        return coupon

    def _not_redeemed(self, coupon: Item, order_no: str, key: RequestKey | None) -> Item:
        if coupon.get("rolledBackOrderNo") == order_no and key and key.first_effect_or_none(self.table):
            return coupon  # this key's rollback: its answer
        if coupon.get("redemption"):
            raise Conflict("this coupon was redeemed on another order", code="NOT_REDEEMED_ON_ORDER", field="orderNo")
        raise Conflict(
            "this coupon is not redeemed (or was rolled back already)", code="COUPON_NOT_REDEEMED", field="code"
        )

    def give_back(self, tenant: str, channel: str, order_no: str) -> int:
        """退单返券: the coupons a fully returned order used come back as issued with the rule's validity
        days, when their rule says so. Repeatable: a coupon given back is no longer used on that order."""
        pointers = self.table.query_prefix(keys.order_coupons(tenant, channel, order_no), "").items
        given = 0
        for pointer in pointers:
            coupon = self.table.get(keys.coupon(tenant, pointer["code"]), keys.COUPON_SK)
            if not coupon or (coupon.get("redemption") or {}).get("orderNo") != order_no:
                continue
            if not CouponTerms.model_validate(coupon["terms"]).return_on_refund.enabled:
                continue
            try:
                self._unuse(tenant, coupon, self.clock.now(), "return")
                given += 1
            except TransactionCancelled:
                continue  # changed meanwhile: a retry of the return will look again
        return given

    # --- the sweep --------------------------------------------------------------------------------------

    def sweep(self, bucket: Bucket, kind: str) -> int:
        """One page of coupons whose validity (kind COUPON) or transfer (TRANSFER) ended by the bucket's day."""
        pk = keys.ends_index(bucket.tenant, bucket.program, kind, bucket.shard)
        found, more = self.table.query_index(
            "GSI1", pk, limit=PAGE, start=bucket.start, sk_between=keys.through_day(bucket.day)
        )
        done = sum(self._end(bucket.tenant, coupon, kind) for coupon in found)
        if more:
            enqueue(get_settings().expiry_queue_url, [bucket.next(more)])
        return done

    def _end(self, tenant: str, coupon: Item, kind: str) -> bool:
        """Close one coupon as the index shows it (ALL projected); the index may lag, so every write is
        conditioned on the coupon's current state and a stale view only loses the condition."""
        now = self.clock.now()
        if kind == "TRANSFER":
            return self._lapse(tenant, coupon, now)
        if coupon["status"] != "issued" or datetime.fromisoformat(coupon["validUntil"]) >= now:
            return False
        try:
            self.table.transact(
                [
                    update(
                        coupon["PK"],
                        keys.COUPON_SK,
                        "SET #status = :expired, expiredAt = :now, GSI2SK = :osk REMOVE GSI1PK, GSI1SK",
                        {
                            ":expired": "expired",
                            ":issued": "issued",
                            ":now": now.isoformat(),
                            ":osk": keys.coupon_owner_sk(coupon["GSI2SK"], "expired"),
                        },
                        "#status = :issued AND validUntil < :now",
                        {"#status": "status"},
                    ),
                    events.outbox_entry(
                        tenant,
                        events.DomainEvent(
                            "CouponExpired",
                            {"code": coupon["code"], "ruleId": coupon["ruleId"], "memberId": coupon["ownerId"]},
                        ),
                        now,
                    ),
                ]
            )
        except TransactionCancelled:
            return False  # used or transferred meanwhile
        return True

    def _lapse(self, tenant: str, coupon: Item, now: datetime) -> bool:
        """An unclaimed transfer returns to the giver (the sweep records what reads already show)."""
        return lapse_transfer(self.table, self.programs, tenant, coupon, now)

    # --- helpers ----------------------------------------------------------------------------------------

    def _coupons(self, tenant: str, codes: list[str]) -> dict[str, Item | None]:
        found = self.table.get_many([(keys.coupon(tenant, code), keys.COUPON_SK) for code in codes])
        return {code: found.get((keys.coupon(tenant, code), keys.COUPON_SK)) for code in codes}

    def _verdicts(
        self, tenant: str, order: CouponOrder, coupons: dict[str, Item | None], now: datetime
    ) -> list[Verdict]:
        catalog = self.catalogs.load(tenant).catalog
        states = {code: _state(coupon) for code, coupon in coupons.items() if coupon}
        terms = [state.terms for state in states.values()]
        wanted = catalog.lookups(
            order.store_code,
            [line.sku for line in order.lines],
            [t.store_group_code for t in terms if t.store_group_code],
            [t.product_group_code for t in terms if t.product_group_code],
        )
        if wanted:  # the order's store and products in the groups the coupons name: one batch read (D-084)
            catalog, _ = self.catalogs.scoped(tenant, catalog, wanted)
        verdicts = []
        for code in order.codes:
            coupon = coupons[code]
            if coupon is None:
                verdicts.append(
                    Verdict(code, Decimal(0), (Reason(code="NOT_FOUND", detail="no coupon has this code"),))
                )
                continue
            zone = self.programs.load(tenant, coupon["programCode"]).zone
            verdicts.append(check(states[code], order, now, zone, catalog))
        return verdicts

    def _write(
        self,
        tenant: str,
        channel: str,
        request: RedeemRequest,
        coupons: dict[str, Item | None],
        verdicts: list[Verdict],
        now: datetime,
    ) -> RedemptionResult:
        redemption_id = new_ulid()
        total = sum((v.discount for v in verdicts), Decimal(0))
        paid = max(request.order_amount - total, Decimal(0))
        used = [(coupons[v.code], v) for v in verdicts]
        owners = {c["ownerId"] for c, _ in used if c}
        rules = {(c["ownerId"], c["ruleId"]) for c, _ in used if c}
        seen = self.table.get_many(
            [(keys.member(tenant, owner), keys.MEMBER_SK) for owner in owners]
            + [(keys.member(tenant, owner), keys.used_sk(rule)) for owner, rule in rules]
        )
        operations: list[dict] = []
        redeemed: list[RedeemedCoupon] = []
        stats: dict[tuple[str, int], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        counted: set[tuple[str, str]] = set()
        sources: dict[str, Item] = {}
        for coupon, verdict in used:
            assert coupon is not None
            sources[coupon["code"]] = coupon
            program = self.programs.load(tenant, coupon["programCode"])
            day = now.astimezone(program.zone).date().isoformat()
            counters = stats[(coupon["ruleId"], coupon["shard"])]
            counters["used"] += 1
            counters["discountTotal"] += verdict.discount
            customer = None
            owner_rule = (coupon["ownerId"], coupon["ruleId"])
            if owner_rule not in counted:  # one order counts once per rule and member
                counted.add(owner_rule)
                profile = seen.get((keys.member(tenant, owner_rule[0]), keys.MEMBER_SK)) or {}
                customer = "returningCustomers" if profile.get("orderCount") else "newCustomers"
                counters["orderTotal"] += paid
                counters[customer] += 1
                marker = (keys.member(tenant, owner_rule[0]), keys.used_sk(owner_rule[1]))
                if marker not in seen:
                    counters["users"] += 1
                    operations.append(
                        put({"PK": marker[0], "SK": marker[1], "firstAt": now.isoformat()}, "attribute_not_exists(PK)")
                    )
            details = {
                "redemptionId": redemption_id,
                "orderNo": request.order_no,
                "channel": channel,
                "storeCode": request.store_code,
                "verifier": request.verifier,
                "orderAmount": str(request.order_amount),
                "discount": str(verdict.discount),
                "paidAmount": str(paid),
                "at": now.isoformat(),
                "settlementDay": day,
                "customer": customer,  # set on the coupon that counted the order on the dashboard
            }
            details = {k: v for k, v in details.items() if v is not None}
            operations += [
                update(
                    coupon["PK"],
                    keys.COUPON_SK,
                    "SET #status = :used, redemption = :r, GSI2SK = :osk REMOVE GSI1PK, GSI1SK, rolledBackOrderNo",
                    {
                        ":used": "used",
                        ":issued": "issued",
                        ":owner": coupon["ownerId"],
                        ":r": details,
                        ":osk": keys.coupon_owner_sk(coupon["GSI2SK"], "used"),
                    },
                    "#status = :issued AND ownerId = :owner",
                    {"#status": "status"},
                ),
                put(
                    {
                        "PK": keys.settlement(tenant, coupon["ruleId"], day),
                        "SK": f"{keys.stamp(now)}#{coupon['code']}",
                        "code": coupon["code"],
                        "ruleId": coupon["ruleId"],
                        "ruleName": coupon["ruleName"],
                        "type": coupon["terms"]["type"],
                        "memberId": coupon["ownerId"],
                        **details,
                    }
                ),
                put(
                    {
                        "PK": keys.order_coupons(tenant, channel, request.order_no),
                        "SK": coupon["code"],
                        "code": coupon["code"],
                        "redemptionId": redemption_id,
                    },
                    "attribute_not_exists(PK)",
                ),
            ]
            redeemed.append(RedeemedCoupon(code=coupon["code"], rule_id=coupon["ruleId"], discount=verdict.discount))
        for (rule_id, shard), counters in stats.items():
            operations.append(_count(tenant, rule_id, shard, counters, +1))
        operations.append(
            events.outbox_entries(
                tenant,
                [
                    events.DomainEvent(
                        "CouponRedeemed",
                        {
                            "code": r.code,
                            "ruleId": r.rule_id,
                            "orderNo": request.order_no,
                            "storeCode": request.store_code,
                            "discount": str(r.discount),
                            "redemptionId": redemption_id,
                            # what campaigns read: whose coupon, of which program, given by which campaign
                            "memberId": sources[r.code]["ownerId"],
                            "programCode": sources[r.code]["programCode"],
                            "redeemedAt": now.isoformat(),
                            **{k: v for k, v in sources[r.code].items() if k == "campaignId"},
                        },
                    )
                    for r in redeemed
                ],
                now,
            )
        )
        self.table.transact(operations)
        return RedemptionResult(
            redemption_id=redemption_id,
            order_no=request.order_no,
            store_code=request.store_code,
            order_amount=request.order_amount,
            discount_total=total,
            paid_amount=paid,
            coupons=redeemed,
            redeemed_at=now,
        )

    def _unuse(self, tenant: str, coupon: Item, now: datetime, why: str, extra: list[dict] | None = None) -> None:
        """used -> issued again (a rollback keeps the validity; a return starts the rule's return validity)."""
        redemption = coupon["redemption"]
        program = self.programs.load(tenant, coupon["programCode"])
        terms = CouponTerms.model_validate(coupon["terms"])
        valid_from, valid_until = (
            datetime.fromisoformat(coupon["validFrom"]),
            datetime.fromisoformat(coupon["validUntil"]),
        )
        if why == "return":
            valid_from, valid_until = window_on_return(terms.return_on_refund.validity_days, now, program.zone)
        status = "issued" if valid_until >= now else "expired"
        values: dict[str, Any] = {
            ":new": status,
            ":used": "used",
            ":order": redemption["orderNo"],
            ":from": valid_from.isoformat(),
            ":until": valid_until.isoformat(),
            ":osk": keys.coupon_owner_sk(coupon["GSI2SK"], status),
        }
        expression = "SET #status = :new, validFrom = :from, validUntil = :until, GSI2SK = :osk"
        expression += ", rolledBackOrderNo = :order" if why == "rollback" else ", returnedOrderNo = :order"
        if status == "issued":
            expression += ", GSI1PK = :gpk, GSI1SK = :gsk"
            index = keys.coupon_expiry_index(
                tenant, coupon["programCode"], coupon["code"], valid_until.astimezone(program.zone)
            )
            values.update({":gpk": index["GSI1PK"], ":gsk": index["GSI1SK"]})
        expression += " REMOVE redemption"
        counters: dict[str, Decimal] = {"used": Decimal(1), "discountTotal": Decimal(redemption["discount"])}
        if redemption.get("customer"):  # this coupon carried the order on the dashboard: take it back too
            counters.update({"orderTotal": Decimal(redemption["paidAmount"]), redemption["customer"]: Decimal(1)})
        self.table.transact(
            [
                update(
                    coupon["PK"],
                    keys.COUPON_SK,
                    expression,
                    values,
                    "#status = :used AND redemption.orderNo = :order",
                    {"#status": "status"},
                ),
                update(
                    keys.settlement(tenant, coupon["ruleId"], redemption.get("settlementDay", "")),
                    f"{keys.stamp(datetime.fromisoformat(redemption['at']))}#{coupon['code']}",
                    "SET undoneAt = :now, undoneBy = :why",
                    {":now": now.isoformat(), ":why": why},
                ),
                _count(tenant, coupon["ruleId"], coupon["shard"], counters, -1),
                events.outbox_entry(
                    tenant,
                    events.DomainEvent(
                        "CouponRedemptionUndone",
                        {
                            "code": coupon["code"],
                            "orderNo": redemption["orderNo"],
                            "reason": why,
                            "status": status,
                            # what campaigns read: a coupon a campaign gave is no longer counted as redeemed
                            **{k: v for k, v in coupon.items() if k == "campaignId"},
                        },
                    ),
                    now,
                ),
                *(extra or []),
            ]
        )
        logger.info("coupon redemption undone", extra={"code": coupon["code"], "reason": why})

    def settlements(self, tenant: str, rule_id: str, day: str, limit: int = 100, cursor: str | None = None) -> Page:
        """A page of one day's redemptions of a rule (结算数据)."""
        return self.table.query_prefix(keys.settlement(tenant, rule_id, day), "", limit=limit, cursor=cursor)


def _redeemed_on(coupon: Item, order_no: str) -> bool:
    return (coupon.get("redemption") or {}).get("orderNo") == order_no


def _count(tenant: str, rule_id: str, shard: int, counters: dict[str, Decimal], sign: int) -> dict:
    names = {f"#c{i}": name for i, name in enumerate(counters)}
    values = {f":c{i}": _number(name, value) * sign for i, (name, value) in enumerate(counters.items())}
    expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counters)))
    return update(keys.coupon_stock(tenant, rule_id, shard), keys.STOCK_SK, expression, values, None, names)


def _number(name: str, value: Decimal) -> int | Decimal:
    return value if name in ("orderTotal", "discountTotal") else int(value)


def _state(coupon: Item) -> CouponState:
    return CouponState(
        code=coupon["code"],
        status=coupon["status"],
        owner_id=coupon["ownerId"],
        valid_from=datetime.fromisoformat(coupon["validFrom"]),
        valid_until=datetime.fromisoformat(coupon["validUntil"]),
        terms=CouponTerms.model_validate(coupon["terms"]),
    )


def _result(verdicts: list[Verdict]) -> ValidationResult:
    checks = [CouponCheck(code=v.code, usable=v.usable, discount=v.discount, reasons=list(v.reasons)) for v in verdicts]
    return ValidationResult(
        usable=all(c.usable for c in checks),
        discount_total=sum((c.discount for c in checks), Decimal(0)),
        coupons=checks,
    )


def _earlier_redemption(
    coupons: dict[str, Item | None], request: RedeemRequest, channel: str
) -> RedemptionResult | None:
    """The redemption this order already made of exactly these codes, if it did (a retried request)."""
    found = [c.get("redemption") if c else None for c in coupons.values()]
    if not found or any(r is None or r["orderNo"] != request.order_no or r["channel"] != channel for r in found):
        return None
    first = found[0]
    assert first is not None
    return RedemptionResult(
        redemption_id=first["redemptionId"],
        order_no=first["orderNo"],
        store_code=first["storeCode"],
        order_amount=Decimal(first["orderAmount"]),
        discount_total=sum((Decimal(r["discount"]) for r in found if r), Decimal(0)),
        paid_amount=Decimal(first["paidAmount"]),
        coupons=[
            RedeemedCoupon(code=c["code"], rule_id=c["ruleId"], discount=Decimal(c["redemption"]["discount"]))
            for c in coupons.values()
            if c
        ],
        redeemed_at=datetime.fromisoformat(first["at"]),
    )


def coupon_verifier(table: Table | None = None, clock: Clock | None = None) -> CouponVerifier:
    table = table or Table()
    config = ConfigRepository(table)
    return CouponVerifier(table, ProgramLoader(config), CatalogLoader(config), clock or SystemClock())
