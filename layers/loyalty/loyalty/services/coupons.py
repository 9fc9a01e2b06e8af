"""Issuing coupons (发券) and what their owners do with them: claim, exchange points, list, transfer.

One issue is one transaction: a unit of stock off one shard (guarded by `remaining >= 1`, the rule being
listed and the shard's share of the daily cap), the coupon (a new random code), the member's claim counters
for each limited period (guarded by the limit), the member's first-claim marker, and the CouponIssued event.
Nothing is read and then trusted: stock, caps and limits are the conditions of the write itself. The shard
is picked at random; a shard found empty is skipped for the rest of the attempt, so a claim fails with
OUT_OF_STOCK only once every shard has said so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from loyalty.clock import Clock, SystemClock
from loyalty.domain.coupons import (
    CouponRuleInput,
    CouponTerms,
    as_of,
    lapsed,
    new_code,
    period_labels,
    split,
    window_at_issue,
)
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.members import inactive_member
from loyalty.domain.personal_data import mask_phone
from loyalty.domain.validity import CamelModel, View
from loyalty.ids import new_ulid
from loyalty.services import events
from loyalty.services.config import ProgramLoader
from loyalty.services.coupon_rules import RuleLoader
from loyalty.services.redemption import ExtrasRefused, RedemptionService, redemption_service
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository
from loyalty.store.requests import RequestKey
from loyalty.store.table import Item, Table, TransactionCancelled, check, put, update

Source = Literal["claim", "operator", "batch", "points", "campaign"]
ATTEMPTS = 2 * keys.STOCK_SHARDS + 2  # each shard may need a second try when its daily count is of yesterday


class ClaimRequest(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"ruleId": "2026112200001"}]
    rule_id: str = Field(pattern=r"^[0-9]{13}$")


class IssueRequest(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"phone": "13800138000"}]
    member_id: str | None = Field(default=None, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    phone: str | None = Field(default=None, max_length=30)


class TransferStarted(View):
    transfer_id: str
    code: str
    ends_at: datetime


class AcceptRequest(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"memberId": "01JDQ5W8C4M7Q3V2X9Z6K1B0TA"}]
    member_id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$", description="The friend who accepts")


class RedemptionDetails(View):
    order_no: str
    channel: str
    store_code: str
    verifier: str | None = None
    order_amount: str
    discount: str
    at: datetime


class CouponView(View):
    code: str
    rule_id: str
    rule_name: str
    program_code: str
    owner_id: str
    status: Literal["issued", "used", "expired", "transferring", "revoked"] = Field(
        description="revoked: taken back by the campaign that gave it, when its order was returned in full"
    )
    source: str
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime
    terms: CouponTerms
    redemption: RedemptionDetails | None = None
    transfer_ends_at: datetime | None = None
    points_record_id: str | None = Field(default=None, description="The 积分兑换优惠券 record that paid for it")


class CouponPage(View):
    items: list[CouponView]
    next_cursor: str | None = None


class TransferParty(View):
    """Who gave or received, as the record shows them (the spec's 转赠记录): card number, name, masked phone."""

    card_no: str | None = Field(default=None, description="会员卡号")
    name: str | None = None
    phone: str | None = Field(default=None, description="Masked: 138****8000")


class TransferView(View):
    transfer_id: str
    code: str
    rule_id: str
    giver_id: str
    giver: TransferParty | None = None
    receiver_id: str | None = None
    receiver: TransferParty | None = None
    status: Literal["pending", "accepted", "returned"]
    started_at: datetime
    ends_at: datetime
    accepted_at: datetime | None = None
    log: list[dict[str, str]]


class TransferPage(View):
    items: list[TransferView]
    next_cursor: str | None = None


@dataclass
class Attempt:
    """What one issue has learned so far: shards found empty or at their daily cap."""

    shards: int
    empty: set[int] = field(default_factory=set)
    new_day: set[int] = field(default_factory=set)  # shards whose daily count is of an earlier day
    capped: bool = False  # a shard refused for the daily cap, not for stock

    def pick(self) -> int | None:
        left = [s for s in range(self.shards) if s not in self.empty]
        # B311: spreading load, not a secret
        return random.choice(left) if left else None  # noqa: S311  # nosec B311


@dataclass
class CouponService:
    table: Table
    rules: RuleLoader
    programs: ProgramLoader
    members: MemberRepository
    redemption: RedemptionService
    clock: Clock

    # --- issuing --------------------------------------------------------------------------------------

    def claim(self, tenant: str, member_id: str, rule_id: str, request: RequestKey | None = None) -> CouponView:
        """公开领取: a member takes a coupon of a rule offered for public claim."""
        rule = self.rules.load(tenant, rule_id)
        if not rule["rule"].get("publicClaim"):
            raise Conflict("this coupon is not offered for members to claim", code="NOT_CLAIMABLE", field="ruleId")
        return self.issue(tenant, member_id, rule, "claim", request=request)

    def issue_by_operator(
        self, tenant: str, rule_id: str, request: IssueRequest, key: RequestKey | None = None
    ) -> CouponView:
        """活动发券 to one member, named by id or phone."""
        rule = self.rules.load(tenant, rule_id)
        if not rule["rule"].get("campaignIssue"):
            raise Conflict("this coupon is not issued by operators or campaigns", code="NOT_ISSUABLE")
        return self.issue(tenant, self.member_id(tenant, request), rule, "operator", request=key)

    def issue_for_campaign(
        self, tenant: str, member_id: str, rule_id: str, request: RequestKey, campaign_id: str | None = None
    ) -> CouponView:
        """活动发券 by a campaign's effect, once per `request` (campaign, member, triggering event); the coupon
        names the campaign, so that its redemption counts in the campaign's results."""
        rule = self.rules.load(tenant, rule_id)
        if not rule["rule"].get("campaignIssue"):
            raise Conflict("this coupon is not issued by operators or campaigns", code="NOT_ISSUABLE")
        return self.issue(tenant, member_id, rule, "campaign", request=request, campaign_id=campaign_id)

    def revoke(self, tenant: str, code: str, reason: str) -> bool:
        """收回: an unused coupon taken back (a campaign's, when the order that earned it was returned in
        full). False when it is no longer the member's to use (used, expired, being given away)."""
        coupon = self.table.get(keys.coupon(tenant, code), keys.COUPON_SK)
        if coupon is None or coupon["status"] != "issued":
            return False
        now = self.clock.now()
        try:
            self.table.transact(
                [
                    update(
                        coupon["PK"],
                        keys.COUPON_SK,
                        "SET #status = :revoked, revokedAt = :now, revokedReason = :reason, GSI2SK = :osk"
                        " REMOVE GSI1PK, GSI1SK",
                        {
                            ":revoked": "revoked",
                            ":issued": "issued",
                            ":now": now.isoformat(),
                            ":reason": reason,
                            ":osk": keys.coupon_owner_sk(coupon["GSI2SK"], "revoked"),
                        },
                        "#status = :issued",
                        {"#status": "status"},
                    ),
                    events.outbox_entry(
                        tenant,
                        events.DomainEvent(
                            "CouponRevoked",
                            {"code": code, "ruleId": coupon["ruleId"], "memberId": coupon["ownerId"], "reason": reason},
                        ),
                        now,
                    ),
                ]
            )
        except TransactionCancelled:
            return False  # used or given away meanwhile: it stays
        return True

    def exchange(self, tenant: str, member_id: str, rule_id: str, request: RequestKey | None = None) -> CouponView:
        """积分兑换优惠券: the points and the coupon in one transaction, both or neither."""
        rule = self.rules.load(tenant, rule_id)
        terms = rule["rule"]
        if not terms.get("pointsPrice"):
            raise Conflict("this coupon cannot be bought with points", code="NOT_EXCHANGEABLE", field="ruleId")
        return self.issue(tenant, member_id, rule, "points", request=request)

    def member_id(self, tenant: str, request: IssueRequest) -> str:
        if (request.member_id is None) == (request.phone is None):
            raise InvalidInput("name the member by id or by phone", code="MEMBER_REFERENCE", field="memberId")
        return request.member_id or self.members.id_by_phone(tenant, request.phone or "")

    def issue(
        self,
        tenant: str,
        member_id: str,
        rule: Item,
        source: Source,
        row: tuple[str, int] | None = None,
        request: RequestKey | None = None,
        campaign_id: str | None = None,
    ) -> CouponView:
        """Issue one coupon of `rule` to a member; `row` (job id, row number) or `request` (an Idempotency-Key)
        makes it happen once. Refusals are domain errors with stable codes (OUT_OF_STOCK, CLAIM_LIMIT_REACHED, ...)."""
        if rule["status"] not in ("listed", "delisted"):  # approved once; listed or not, its shards say
            raise Conflict("only listed rules issue coupons", code="RULE_NOT_LISTED", field="ruleId")
        definition = CouponRuleInput.stored(rule["rule"])
        program = self.programs.load(tenant, definition.program_code)
        now = self.clock.now()
        valid_from, valid_until = window_at_issue(definition.validity, now, program.zone)
        if valid_until < now:
            raise Conflict("this rule's coupons are no longer valid", code="RULE_VALIDITY_ENDED", field="ruleId")
        member_pk, rule_id = keys.member(tenant, member_id), rule["ruleId"]
        marker = self.table.get(member_pk, keys.claims_sk(rule_id))
        attempt = Attempt(rule["shards"])
        if definition.daily_issue_cap != -1:  # shards whose share of the daily cap is 0 never issue
            attempt.empty |= {i for i, cap in enumerate(split(definition.daily_issue_cap, rule["shards"])) if cap == 0}
        for _ in range(ATTEMPTS):
            shard = attempt.pick()
            if shard is None:
                raise Conflict(
                    "no stock left today" if attempt.capped else "no stock left",
                    code="DAILY_CAP_REACHED" if attempt.capped else "OUT_OF_STOCK",
                    field="ruleId",
                )
            code, points_record = new_code(), new_ulid() if source == "points" else None
            coupon = _coupon_item(
                tenant, rule_id, definition, member_id, code, shard, source, now, (valid_from, valid_until)
            )
            if points_record:  # the coupon and the 积分兑换优惠券 record name each other
                coupon["pointsRecordId"] = points_record
            if campaign_id:
                coupon["campaignId"] = campaign_id
            today = now.astimezone(program.zone).date().isoformat()
            roles: list[str] = ["stock", "coupon", "marker"]
            operations = [
                _take_stock(tenant, rule_id, shard, definition, attempt, marker is None, today),
                put(coupon, "attribute_not_exists(PK)"),
                _claims(member_pk, rule_id, marker, now),
            ]
            for period, operation in _limits(member_pk, rule_id, definition, now, program.zone):
                roles.append(period)
                operations.append(operation)
            if request:
                roles.append("request")
                operations.append(request.marker(code=code))
            if row:
                roles.append("row")
                operations.append(
                    put(
                        {
                            "PK": keys.coupon_job(tenant, row[0]),
                            "SK": keys.job_row_sk(row[1]),
                            "outcome": "ISSUED",
                            "memberId": member_id,
                            "code": code,
                        },
                        "attribute_not_exists(PK)",
                    )
                )
            event = events.outbox_entry(
                tenant,
                events.DomainEvent(
                    "CouponIssued",
                    {
                        "code": code,
                        "ruleId": rule_id,
                        "memberId": member_id,
                        "source": source,
                        "validUntil": valid_until.isoformat(),
                        **({"campaignId": campaign_id} if campaign_id else {}),
                    },
                ),
                now,
            )
            try:
                if source == "points":
                    self.redemption.spend_with(
                        tenant,
                        member_id,
                        definition.points_group_code or "",
                        definition.points_price or 0,
                        {"purpose": "coupon", "reference": code, "couponCode": code, "couponRuleId": rule_id},
                        extra=operations,
                        outbox=[event],
                        record_id=points_record or new_ulid(),
                    )
                else:
                    roles.append("member")
                    active = check(
                        member_pk,
                        keys.MEMBER_SK,
                        "attribute_exists(PK) AND NOT #status IN (:frozen, :cancelled)",
                        {":frozen": "frozen", ":cancelled": "cancelled"},
                        {"#status": "status"},
                    )
                    self.table.transact([*operations, active, event])
                return coupon_view(coupon)
            except (TransactionCancelled, ExtrasRefused) as refused:
                failed = {roles[i]: refused.items[i] for i in range(len(roles)) if refused.failed(i)}
                if request and "request" in failed:  # a retry of a request that issued its coupon before
                    first = request.first_effect(self.table)
                    return coupon_view(self.table.get(keys.coupon(tenant, first["code"]), keys.COUPON_SK) or {})
                if "marker" in failed:  # another claim by this member went first: read it again
                    marker = self.table.get(member_pk, keys.claims_sk(rule_id))
                self._learn(failed, attempt, shard, today)
        raise Conflict("the coupon could not be issued for contention; retry", code="CONCURRENT_UPDATE")

    @staticmethod
    def _learn(failed: dict[str, Item | None], attempt: Attempt, shard: int, today: str) -> None:
        """Turn a refused issue into what to do next: another shard, or the error to answer."""
        if "member" in failed:
            if failed["member"] is None:
                raise NotFound("no such member", code="MEMBER_NOT_FOUND", field="memberId")
            raise inactive_member(failed["member"]["status"])
        if "row" in failed:
            raise Conflict("this row was issued before", code="ALREADY_ISSUED")
        for period in PERIOD_NAMES:
            if period in failed:
                raise Conflict(
                    f"the member's claim limit per {PERIOD_NAMES[period]} is reached",
                    code="CLAIM_LIMIT_REACHED",
                    field="ruleId",
                    period=PERIOD_NAMES[period],
                )
        if "stock" in failed:
            found = failed["stock"] or {}
            if not found.get("listed", False):
                raise Conflict("the rule has been delisted", code="RULE_NOT_LISTED", field="ruleId")
            if found.get("remaining", 0) < 1:
                attempt.empty.add(shard)
            elif found.get("day") != today and shard not in attempt.new_day:
                attempt.new_day.add(shard)  # its daily count is of an earlier day: start today's
            else:
                attempt.empty.add(shard)  # its share of today's cap is used up
                attempt.capped = True

    # --- reading --------------------------------------------------------------------------------------

    def get(self, tenant: str, code: str) -> CouponView:
        return coupon_view(self.item(tenant, code), self.clock.now())

    def current(self, tenant: str, code: str) -> Item:
        """The stored coupon, a lapsed transfer recorded first (a write acts on what the coupon is now)."""
        coupon = self.item(tenant, code)
        if lapsed(coupon, now := self.clock.now()):
            lapse_transfer(self.table, self.programs, tenant, coupon, now)
            coupon = self.item(tenant, code)
        return coupon

    def item(self, tenant: str, code: str) -> Item:
        found = self.table.get(keys.coupon(tenant, code), keys.COUPON_SK)
        if found is None:
            raise NotFound("no coupon with this code", code="COUPON_NOT_FOUND", field="code")
        return found

    def of_member(
        self, tenant: str, member_id: str, status: str | None, limit: int = 100, cursor: str | None = None
    ) -> CouponPage:
        """A member's coupons (by status, newest last), from the owner index, a page at a time; 404 for a
        member this tenant does not have, as every member route answers (not an empty list)."""
        self.members.profile(tenant, member_id)
        index, now = keys.member_coupons(tenant, member_id), self.clock.now()
        if status == "issued":  # and those a lapsed transfer gave back, which the index still files as transferring
            return self._issued(index, limit, cursor, now)
        page = self.table.index_page("GSI2", index, limit, cursor, sk_prefix=f"{status}#" if status else "")
        views = [coupon_view(item, now) for item in page.items]
        if status == "transferring":
            views = [view for view in views if view.status == "transferring"]
        return CouponPage(items=views, next_cursor=page.next_cursor)

    def _issued(self, index: str, limit: int, cursor: str | None, now: datetime) -> CouponPage:
        """The issued coupons, then the lapsed transfers: two ranges of the index, one cursor over both
        (`lapsed:` names the second)."""
        inner = cursor.removeprefix("lapsed:") if cursor else None
        if not (cursor or "").startswith("lapsed:"):
            page = self.table.index_page("GSI2", index, limit, inner, sk_prefix="issued#")
            if page.next_cursor:
                return CouponPage(items=[coupon_view(i, now) for i in page.items], next_cursor=page.next_cursor)
            found, inner = [coupon_view(i, now) for i in page.items], None
        else:
            found = []
        rest = self.table.index_page("GSI2", index, max(limit - len(found), 1), inner, sk_prefix="transferring#")
        found += [view for view in (coupon_view(i, now) for i in rest.items) if view.status == "issued"]
        return CouponPage(items=found, next_cursor=f"lapsed:{rest.next_cursor}" if rest.next_cursor else None)

    # --- transfer (转赠) -------------------------------------------------------------------------------

    def start_transfer(self, tenant: str, member_id: str, code: str) -> TransferStarted:
        """已下发 -> 转赠中: the coupon waits for a friend until the rule's friend-claim period lapses."""
        coupon = self.current(tenant, code)
        terms = CouponTerms.model_validate(coupon["terms"])
        if not terms.transfer.allowed:
            raise Conflict("this coupon cannot be given away", code="NOT_TRANSFERABLE", field="code")
        now, transfer_id = self.clock.now(), new_ulid()
        program = self.programs.load(tenant, coupon["programCode"])
        giver = _party(self.members.profile(tenant, member_id))
        ends = min(now + timedelta(hours=terms.transfer.claim_hours), datetime.fromisoformat(coupon["validUntil"]))
        log = [_log_line(now, "发起转赠", "issued", "transferring")]
        try:
            self.table.transact(
                [
                    update(
                        coupon["PK"],
                        keys.COUPON_SK,
                        "SET #status = :transferring, transfer = :transfer,"
                        " GSI1PK = :gpk, GSI1SK = :gsk, GSI2SK = :osk",
                        {
                            ":transferring": "transferring",
                            ":issued": "issued",
                            ":owner": member_id,
                            ":now": now.isoformat(),
                            ":transfer": {"transferId": transfer_id, "giverId": member_id, "endsAt": ends.isoformat()},
                            **_ends_values(
                                keys.coupon_expiry_index(
                                    tenant, coupon["programCode"], code, ends.astimezone(program.zone), "TRANSFER"
                                )
                            ),
                            ":osk": keys.coupon_owner_sk(coupon["GSI2SK"], "transferring"),
                        },
                        "#status = :issued AND ownerId = :owner AND validUntil >= :now",
                        {"#status": "status"},
                    ),
                    put(
                        {
                            "PK": coupon["PK"],
                            "SK": keys.transfer_sk(transfer_id),
                            "transferId": transfer_id,
                            "code": code,
                            "ruleId": coupon["ruleId"],
                            "giverId": member_id,
                            "giver": giver,
                            "status": "pending",
                            "startedAt": now.isoformat(),
                            "endsAt": ends.isoformat(),
                            "log": log,
                        }
                    ),
                    events.outbox_entry(
                        tenant,
                        events.DomainEvent(
                            "CouponTransferStarted", {"code": code, "transferId": transfer_id, "giverId": member_id}
                        ),
                        now,
                    ),
                ]
            )
        except TransactionCancelled as cancelled:
            raise _unusable(cancelled.items[0], member_id, now) from None
        return TransferStarted(transfer_id=transfer_id, code=code, ends_at=ends)

    def accept_transfer(self, tenant: str, code: str, transfer_id: str, receiver_id: str) -> CouponView:
        """转赠中 -> 已下发, now the friend's; refused once the friend-claim period has lapsed."""
        coupon = self.item(tenant, code)
        transfer = coupon.get("transfer") or {}
        if (
            coupon["status"] == "issued"
            and coupon["ownerId"] == receiver_id
            and coupon.get("lastTransferId") == transfer_id
        ):
            return coupon_view(coupon)  # accepted before: a retry
        if transfer.get("giverId") == receiver_id:
            raise Conflict("the giver cannot accept their own transfer", code="OWN_TRANSFER", field="memberId")
        now = self.clock.now()
        program = self.programs.load(tenant, coupon["programCode"])
        receiver = _party(self.members.profile(tenant, receiver_id))  # 404 for an unknown member
        until = datetime.fromisoformat(coupon["validUntil"]).astimezone(program.zone)
        try:
            self.table.transact(
                [
                    update(
                        coupon["PK"],
                        keys.COUPON_SK,
                        "SET #status = :issued, ownerId = :receiver, lastTransferId = :id,"
                        " GSI1PK = :gpk, GSI1SK = :gsk, GSI2PK = :opk, GSI2SK = :osk"
                        " REMOVE transfer",
                        {
                            ":issued": "issued",
                            ":transferring": "transferring",
                            ":receiver": receiver_id,
                            ":id": transfer_id,
                            ":now": now.isoformat(),
                            **_ends_values(keys.coupon_expiry_index(tenant, coupon["programCode"], code, until)),
                            **_owner_index_values(tenant, receiver_id, coupon, "issued"),
                        },
                        "#status = :transferring AND transfer.transferId = :id AND transfer.endsAt >= :now",
                        {"#status": "status"},
                    ),
                    update(
                        coupon["PK"],
                        keys.transfer_sk(transfer_id),
                        "SET #status = :accepted, receiverId = :receiver, receiver = :party, acceptedAt = :now,"
                        " #log = list_append(#log, :line)",
                        {
                            ":accepted": "accepted",
                            ":receiver": receiver_id,
                            ":party": receiver,
                            ":now": now.isoformat(),
                            ":line": [_log_line(now, "接受转赠", "transferring", "issued")],
                        },
                        None,
                        {"#status": "status", "#log": "log"},
                    ),
                    check(keys.member(tenant, receiver_id), keys.MEMBER_SK, "attribute_exists(PK)"),
                    events.outbox_entry(
                        tenant,
                        events.DomainEvent(
                            "CouponTransferred",
                            {
                                "code": code,
                                "transferId": transfer_id,
                                "giverId": transfer.get("giverId"),
                                "receiverId": receiver_id,
                            },
                        ),
                        now,
                    ),
                ]
            )
        except TransactionCancelled as cancelled:
            if cancelled.failed(2):
                raise NotFound("no such member", code="MEMBER_NOT_FOUND", field="memberId") from None
            raise Conflict(
                "this transfer is not open (accepted, returned or lapsed)", code="TRANSFER_NOT_OPEN"
            ) from None
        return self.get(tenant, code)

    def transfers(self, tenant: str, code: str, limit: int = 100, cursor: str | None = None) -> TransferPage:
        self.item(tenant, code)
        page = self.table.query_prefix(keys.coupon(tenant, code), keys.transfer_sk(""), limit=limit, cursor=cursor)
        ids = {i[role] for i in page.items for role in ("giverId", "receiverId") if i.get(role)}
        found = self.table.get_many([(keys.member(tenant, i), keys.MEMBER_SK) for i in sorted(ids)], consistent=False)
        profiles = {item["memberId"]: item for item in found.values()}
        items = [
            TransferView.model_validate(
                {
                    **item,
                    "giver": _shown(item.get("giver"), profiles.get(item["giverId"])),
                    "receiver": _shown(item.get("receiver"), profiles.get(item.get("receiverId", ""))),
                }
            )
            for item in page.items
        ]
        return TransferPage(items=items, next_cursor=page.next_cursor)


def _take_stock(
    tenant: str, rule_id: str, shard: int, rule: CouponRuleInput, attempt: Attempt, first: bool, today: str
) -> dict:
    """One unit off one shard, refused when the rule is delisted, the shard is empty or its share of today's
    cap is used; a member's first claim also counts one more claimer (领取人数)."""
    expression = "SET remaining = remaining - :one, issued = issued + :one"
    if first:
        expression += ", claimers = claimers + :one"
    condition = "listed = :true AND remaining >= :one"
    values: dict[str, Any] = {":one": 1, ":true": True}
    names = None
    if rule.daily_issue_cap != -1:
        values.update({":today": today, ":cap": split(rule.daily_issue_cap, attempt.shards)[shard]})
        names = {"#day": "day"}
        if shard in attempt.new_day:
            expression += ", #day = :today, dayIssued = :one"
            condition += " AND (attribute_not_exists(#day) OR #day <> :today) AND :one <= :cap"
        else:
            expression += ", dayIssued = dayIssued + :one"
            condition += " AND #day = :today AND dayIssued < :cap"
    return update(keys.coupon_stock(tenant, rule_id, shard), keys.STOCK_SK, expression, values, condition, names)


def _claims(member_pk: str, rule_id: str, marker: Item | None, now: datetime) -> dict:
    """The member's all-time claims of the rule; created only by their first claim (counts 领取人数)."""
    if marker is None:
        return put(
            {"PK": member_pk, "SK": keys.claims_sk(rule_id), "claims": 1, "firstAt": now.isoformat()},
            "attribute_not_exists(PK)",
        )
    return update(member_pk, keys.claims_sk(rule_id), "ADD claims :one", {":one": 1}, "attribute_exists(PK)")


def _limits(member_pk: str, rule_id: str, rule: CouponRuleInput, now: datetime, zone: Any) -> list[tuple[str, dict]]:
    """One counter per limited calendar period, refused at the limit; it disappears after its period."""
    labels = period_labels(now, zone)
    operations = []
    for period, limit in rule.claim_limits.by_period().items():
        label, ends = labels[period]
        operations.append(
            (
                period,
                update(
                    member_pk,
                    keys.claims_sk(rule_id, period, label),
                    "ADD n :one SET expiration = :ttl",
                    {":one": 1, ":limit": limit, ":ttl": int((ends + timedelta(days=1)).timestamp())},
                    "attribute_not_exists(n) OR n < :limit",
                ),
            )
        )
    return operations


def _coupon_item(
    tenant: str,
    rule_id: str,
    definition: CouponRuleInput,
    member_id: str,
    code: str,
    shard: int,
    source: str,
    now: datetime,
    window: tuple[datetime, datetime],
) -> Item:
    valid_from, valid_until = window
    return {
        "PK": keys.coupon(tenant, code),
        "SK": keys.COUPON_SK,
        "code": code,
        "ruleId": rule_id,
        "ruleName": definition.name,
        "programCode": definition.program_code,
        "costCenterCode": definition.cost_center_code,
        "ownerId": member_id,
        "status": "issued",
        "source": source,
        "shard": shard,
        "issuedAt": now.isoformat(),
        "validFrom": valid_from.isoformat(),
        "validUntil": valid_until.isoformat(),
        "terms": definition.terms().model_dump(mode="json", by_alias=True, exclude_none=True),
        **keys.coupon_expiry_index(tenant, definition.program_code, code, valid_until),
        **keys.member_coupon_index(tenant, member_id, "issued", now, code),
    }


PERIOD_NAMES = {"D": "day", "W": "week", "M": "month", "H": "half-year", "Y": "year"}


def _log_line(now: datetime, scene: str, before: str, after: str) -> dict[str, str]:
    """One line of a transfer's 状态描述: time, scene (场景类型), status before => after."""
    return {"at": now.isoformat(), "scene": scene, "status": f"{before}=>{after}"}


def _owner_index_values(tenant: str, owner: str, coupon: Item, status: str) -> dict[str, str]:
    return {":opk": keys.member_coupons(tenant, owner), ":osk": keys.coupon_owner_sk(coupon["GSI2SK"], status)}


def _unusable(found: Item | None, member_id: str, now: datetime) -> Conflict | NotFound:
    if found is None:
        return NotFound("no coupon with this code", code="COUPON_NOT_FOUND", field="code")
    if found["ownerId"] != member_id:
        return Conflict("the coupon belongs to another member", code="NOT_OWNER", field="code")
    if found["status"] != "issued":
        return Conflict(f"the coupon is {found['status']}", code=f"COUPON_{found['status'].upper()}", field="code")
    return Conflict("the coupon's validity has ended", code="COUPON_EXPIRED", field="code")


def _party(profile: Item) -> dict[str, str]:
    """A party as the transfer record keeps it: the card number only; the name and masked phone are the
    member's as they are when the record is read, so an erasure reaches them (D-123)."""
    return {"cardNo": profile["cardNo"]} if profile.get("cardNo") else {}


def _shown(party: dict[str, Any] | None, profile: Item | None) -> dict[str, Any] | None:
    """A party as a transfer record shows it: its card number, and the member's name and masked phone now."""
    if party is None:
        return None
    now = {"name": profile.get("name"), "phone": mask_phone(profile.get("phone"))} if profile else {}
    return {**party, **{k: v for k, v in now.items() if v}}


def coupon_view(item: Item, now: datetime | None = None) -> CouponView:
    """What the coupon is (at `now`: a lapsed transfer shows as over, D-114)."""
    item = as_of(item, now) if now else item
    return CouponView.model_validate({**item, "transferEndsAt": (item.get("transfer") or {}).get("endsAt")})


def coupon_service(table: Table | None = None, clock: Clock | None = None) -> CouponService:
    table = table or Table()
    clock = clock or SystemClock()
    return CouponService(
        table,
        RuleLoader(table),
        ProgramLoader(ConfigRepository(table)),
        MemberRepository(table),
        redemption_service(table, clock),
        clock,
    )


def _ends_values(index: dict[str, str]) -> dict[str, str]:
    """A coupon's place in an index of what ends (keys.coupon_expiry_index) as expression values."""
    return {":gpk": index["GSI1PK"], ":gsk": index["GSI1SK"]}


def lapse_transfer(table: Table, programs: ProgramLoader, tenant: str, coupon: Item, now: datetime) -> bool:
    """Record a lapsed transfer (转赠中 -> 已下发, or expired if the coupon's validity has ended too), on condition
    that it is still that transfer, pending and past its period: what reads already show (D-114). False when
    there was nothing to record (not lapsed, or recorded meanwhile)."""
    if not lapsed(coupon, now):
        return False
    transfer = coupon["transfer"]
    program = programs.load(tenant, coupon["programCode"])
    until = datetime.fromisoformat(coupon["validUntil"])
    status = "issued" if until >= now else "expired"
    values: dict[str, Any] = {
        ":new": status,
        ":transferring": "transferring",
        ":id": transfer["transferId"],
        ":now": now.isoformat(),
        ":osk": keys.coupon_owner_sk(coupon["GSI2SK"], status),
    }
    if status == "issued":
        expression = "SET #status = :new, GSI2SK = :osk, GSI1PK = :gpk, GSI1SK = :gsk REMOVE transfer"
        index = keys.coupon_expiry_index(tenant, coupon["programCode"], coupon["code"], until.astimezone(program.zone))
        values.update({":gpk": index["GSI1PK"], ":gsk": index["GSI1SK"]})
    else:
        expression = "SET #status = :new, GSI2SK = :osk, expiredAt = :now REMOVE transfer, GSI1PK, GSI1SK"
    line = {"at": now.isoformat(), "scene": "转赠超时退回", "status": f"transferring=>{status}"}
    try:
        table.transact(
            [
                update(
                    coupon["PK"],
                    keys.COUPON_SK,
                    expression,
                    values,
                    "#status = :transferring AND transfer.transferId = :id AND transfer.endsAt < :now",
                    {"#status": "status"},
                ),
                update(
                    coupon["PK"],
                    keys.transfer_sk(transfer["transferId"]),
                    "SET #status = :returned, #log = list_append(#log, :line)",
                    {":returned": "returned", ":line": [line]},
                    None,
                    {"#status": "status", "#log": "log"},
                ),
            ]
        )
    except TransactionCancelled:
        return False  # accepted at the last moment
    return True
