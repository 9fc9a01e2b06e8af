"""Coupon rules and coupons, for operators: the rule's life (draft, approval, listing, 增发), issuing to
members (one, or a CSV through the queue), lookups, the dashboard and settlement data."""

from functools import lru_cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from loyalty.api.params import ULID_PATTERN, CouponCode, Cursor, IdempotencyKey, Limit
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.coupons import CouponRuleInput
from loyalty.domain.errors import InvalidInput
from loyalty.domain.validity import BusinessDay, View
from loyalty.services.coupon_batches import CouponBatchService, JobReport, JobRequest, coupon_batch_service
from loyalty.services.coupon_rules import (
    CouponRuleService,
    Dashboard,
    Decision,
    LogPage,
    Restock,
    RulePage,
    RuleView,
    Submission,
    coupon_rule_service,
)
from loyalty.services.coupon_verification import CouponVerifier, coupon_verifier
from loyalty.services.coupons import CouponPage, CouponService, CouponView, IssueRequest, TransferPage, coupon_service
from loyalty.services.idempotency import run_once

router = Router()
RuleId = Annotated[str, Path(pattern=r"^[0-9]{13}$", description="yyyyMMdd + 5 digits")]
JobId = Annotated[str, Path(pattern=ULID_PATTERN)]
Status = Literal["issued", "used", "expired", "transferring"]


class SettlementPage(View):
    """One day's redemptions of a rule (结算数据), as they were written: code, store, order, amounts."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


@lru_cache(maxsize=1)
def rules() -> CouponRuleService:
    return coupon_rule_service()


@lru_cache(maxsize=1)
def coupons() -> CouponService:
    return coupon_service()


@lru_cache(maxsize=1)
def batches() -> CouponBatchService:
    return coupon_batch_service()


@lru_cache(maxsize=1)
def verifier() -> CouponVerifier:
    return coupon_verifier()


def _post(path: str, operation_id: str, summary: str, status_code: int = 200):  # type: ignore[no-untyped-def]
    return router.post(
        path,
        operation_id=operation_id,
        tags=["coupons"],
        status_code=status_code,
        responses=responses(status_code),
        summary=summary,
    )


def _get(path: str, operation_id: str, summary: str):  # type: ignore[no-untyped-def]
    return router.get(path, operation_id=operation_id, tags=["coupons"], responses=responses(), summary=summary)


# --- rules --------------------------------------------------------------------------------------------


@_post("/v1/admin/coupon-rules", "createCouponRule", "A new coupon rule, as a draft", 201)
def create_rule(body: Annotated[CouponRuleInput, Body()]) -> RuleView:
    caller = principal(router)
    return rules().create(caller.tenant, body, caller.key_id)


@_get("/v1/admin/coupon-rules", "listCouponRules", "Every coupon rule of the tenant, oldest first, paged")
def list_rules(limit: Limit = 50, cursor: Cursor = None) -> RulePage:
    return rules().list_page(principal(router).tenant, limit, cursor)


@_get("/v1/admin/coupon-rules/<ruleId>", "getCouponRule", "A coupon rule with its status and approval")
def get_rule(ruleId: RuleId) -> RuleView:
    return rules().get(principal(router).tenant, ruleId)


@router.put(
    "/v1/admin/coupon-rules/<ruleId>",
    operation_id="replaceCouponRule",
    tags=["coupons"],
    responses=responses(),
    summary="Change a draft (409 RULE_STATUS once submitted)",
)
def replace_rule(ruleId: RuleId, body: Annotated[CouponRuleInput, Body()]) -> RuleView:
    return rules().replace(principal(router).tenant, ruleId, body)


@router.delete(
    "/v1/admin/coupon-rules/<ruleId>",
    operation_id="deleteCouponRule",
    tags=["coupons"],
    responses=responses(),
    summary="Delete a draft (409 RULE_STATUS otherwise)",
)
def delete_rule(ruleId: RuleId) -> Response[None]:
    rules().delete(principal(router).tenant, ruleId)
    return Response(status_code=204)


@_post("/v1/admin/coupon-rules/<ruleId>/copy", "copyCouponRule", "复制: a new draft with the same terms", 201)
def copy_rule(ruleId: RuleId) -> RuleView:
    caller = principal(router)
    return rules().copy(caller.tenant, ruleId, caller.key_id)


@_post("/v1/admin/coupon-rules/<ruleId>/submit", "submitCouponRule", "提交审核 to a named approver (not yourself)")
def submit_rule(ruleId: RuleId, body: Annotated[Submission, Body()]) -> RuleView:
    caller = principal(router)
    return rules().submit(caller.tenant, ruleId, body, caller.key_id)


@_post("/v1/admin/coupon-rules/<ruleId>/approve", "approveCouponRule", "审批通过, by the named approver: listed")
def approve_rule(ruleId: RuleId, body: Annotated[Decision, Body()]) -> RuleView:
    caller = principal(router)
    return rules().approve(caller.tenant, ruleId, body, caller.key_id)


@_post("/v1/admin/coupon-rules/<ruleId>/reject", "rejectCouponRule", "Reject, with the reason: back to draft")
def reject_rule(ruleId: RuleId, body: Annotated[Decision, Body()]) -> RuleView:
    caller = principal(router)
    return rules().reject(caller.tenant, ruleId, body, caller.key_id)


@_post("/v1/admin/coupon-rules/<ruleId>/delist", "delistCouponRule", "下架: no more coupons are issued")
def delist_rule(ruleId: RuleId) -> RuleView:
    caller = principal(router)
    return rules().set_listed(caller.tenant, ruleId, False, caller.key_id)


@_post("/v1/admin/coupon-rules/<ruleId>/list", "listCouponRule", "上架 again after a 下架")
def relist_rule(ruleId: RuleId) -> RuleView:
    caller = principal(router)
    return rules().set_listed(caller.tenant, ruleId, True, caller.key_id)


@_post("/v1/admin/coupon-rules/<ruleId>/restocks", "restockCouponRule", "增发: more stock for a listed rule", 201)
def restock_rule(ruleId: RuleId, body: Annotated[Restock, Body()], idempotency_key: IdempotencyKey = None) -> RuleView:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "restockCouponRule",
        idempotency_key,
        {"rule": ruleId, **body.model_dump(mode="json")},
        lambda request: rules().restock(caller.tenant, ruleId, body, caller.key_id, request).model_dump(mode="json"),
    )
    return RuleView.model_validate(result)


@_get("/v1/admin/coupon-rules/<ruleId>/log", "getCouponRuleLog", "审核记录 and 增发记录: every step, oldest first")
def rule_log(ruleId: RuleId, limit: Limit = 50, cursor: Cursor = None) -> LogPage:
    return rules().log(principal(router).tenant, ruleId, limit, cursor)


@_get("/v1/admin/coupon-rules/<ruleId>/dashboard", "getCouponDashboard", "数据分析: stock, claims, uses, ROI")
def dashboard(ruleId: RuleId) -> Dashboard:
    return rules().dashboard(principal(router).tenant, ruleId)


@_get("/v1/admin/coupon-rules/<ruleId>/settlements", "listCouponSettlements", "结算数据: one day's redemptions")
def settlements(
    ruleId: RuleId,
    date: Annotated[BusinessDay, Query(description="Day in the program's zone")],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> SettlementPage:
    page = verifier().settlements(principal(router).tenant, ruleId, date.isoformat(), limit, cursor)
    items = [{k: v for k, v in item.items() if k not in ("PK", "SK")} for item in page.items]
    return SettlementPage(items=items, next_cursor=page.next_cursor)


# --- issuing ------------------------------------------------------------------------------------------


@_post("/v1/admin/coupon-rules/<ruleId>/issuances", "issueCoupon", "活动发券 to one member, by id or phone", 201)
def issue_coupon(
    ruleId: RuleId, body: Annotated[IssueRequest, Body()], idempotency_key: IdempotencyKey = None
) -> CouponView:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "issueCoupon",
        idempotency_key,
        {"rule": ruleId, **body.model_dump(mode="json")},
        lambda request: coupons().issue_by_operator(caller.tenant, ruleId, body, request).model_dump(mode="json"),
    )
    return CouponView.model_validate(result)


@_post(
    "/v1/admin/coupon-rules/<ruleId>/issuance-jobs",
    "createCouponIssuanceJob",
    "批量发券 from a CSV of members; rows are issued through a queue, see the job's report",
    202,
)
def create_job(
    ruleId: RuleId, body: Annotated[JobRequest, Body()], idempotency_key: IdempotencyKey = None
) -> JobReport:
    caller = principal(router)
    result = run_once(
        caller.tenant,
        "createCouponIssuanceJob",
        idempotency_key,
        {"rule": ruleId, **body.model_dump(mode="json")},
        lambda request: batches().create(caller.tenant, ruleId, body, caller.key_id, request).model_dump(mode="json"),
    )
    return JobReport.model_validate(result)


@_get("/v1/admin/coupon-issuance-jobs/<jobId>", "getCouponIssuanceJob", "A batch issuance: per-row outcomes")
def get_job(jobId: JobId) -> JobReport:
    return batches().report(principal(router).tenant, jobId)


# --- lookups (whale B.4) ------------------------------------------------------------------------------


@_get("/v1/admin/coupons/<code>", "getCoupon", "A coupon by its code")
def get_coupon(code: CouponCode) -> CouponView:
    return coupons().get(principal(router).tenant, code)


@_get("/v1/admin/coupons", "findCoupons", "A member's coupons, by member id or phone, optionally by status")
def find_coupons(
    member_id: Annotated[str | None, Query(alias="memberId", pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")] = None,
    phone: Annotated[str | None, Query(min_length=1, max_length=30)] = None,
    status: Annotated[Status | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CouponPage:
    tenant = principal(router).tenant
    if (member_id is None) == (phone is None):
        raise InvalidInput("give memberId or phone", code="MEMBER_REFERENCE", field="memberId")
    owner = coupons().member_id(tenant, IssueRequest(member_id=member_id, phone=phone))
    return coupons().of_member(tenant, owner, status, limit, cursor)


@_get("/v1/admin/coupons/<code>/transfers", "listCouponTransfers", "转赠记录 of a coupon, with their status logs")
def coupon_transfers(code: CouponCode, limit: Limit = 50, cursor: Cursor = None) -> TransferPage:
    return coupons().transfers(principal(router).tenant, code, limit, cursor)
