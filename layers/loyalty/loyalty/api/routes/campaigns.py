"""Campaigns (营销活动), for operators: drafts, approval by a named approver, pause, resume, end, the log,
what a campaign gave, and which campaigns touched a member (services/campaigns/)."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from loyalty.api.params import Cursor, Limit, MemberId
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.campaigns import CampaignInput
from loyalty.domain.config import CODE_PATTERN
from loyalty.services.approval import Decision, Submission
from loyalty.services.campaigns.admin import (
    CampaignLogPage,
    CampaignPage,
    CampaignService,
    CampaignView,
    CostCenterTotals,
    ParticipationPage,
    campaign_service,
)
from loyalty.services.campaigns.batch import BatchResultPage, BatchRuns, batch_runs
from loyalty.services.campaigns.daily import DayRunAccepted, DayRunRequest

router = Router()
CampaignId = Annotated[str, Path(pattern=r"^HD[0-9]{10,}$", description="HD + yyyyMM + 4 digits")]


@lru_cache(maxsize=1)
def service() -> CampaignService:
    return campaign_service()


@lru_cache(maxsize=1)
def batch() -> BatchRuns:
    return batch_runs()


def _post(path: str, operation_id: str, summary: str, status_code: int = 200):  # type: ignore[no-untyped-def]
    return router.post(
        path,
        operation_id=operation_id,
        tags=["campaigns"],
        status_code=status_code,
        responses=responses(status_code),
        summary=summary,
    )


def _get(path: str, operation_id: str, summary: str):  # type: ignore[no-untyped-def]
    return router.get(path, operation_id=operation_id, tags=["campaigns"], responses=responses(), summary=summary)


@_post("/v1/admin/campaigns", "createCampaign", "A new campaign, as a draft", 201)
def create_campaign(body: Annotated[CampaignInput, Body()]) -> CampaignView:
    caller = principal(router)
    return service().create(caller.tenant, body, caller.key_id)


@_get("/v1/admin/campaigns", "listCampaigns", "The tenant's campaigns, oldest first")
def list_campaigns(limit: Limit = 50, cursor: Cursor = None) -> CampaignPage:
    return service().list_page(principal(router).tenant, limit, cursor)


@_get(
    "/v1/admin/campaign-costs",
    "getCampaignCosts",
    "What approved campaigns gave, summed by cost center (成本中心): points, coupons, orders and sales",
)
def campaign_costs(
    programCode: Annotated[str | None, Query(pattern=CODE_PATTERN, description="one program's campaigns")] = None,
) -> list[CostCenterTotals]:
    return service().costs(principal(router).tenant, programCode)


@_get("/v1/admin/campaigns/<campaignId>", "getCampaign", "A campaign, its status and what it gave")
def get_campaign(campaignId: CampaignId) -> CampaignView:
    return service().get(principal(router).tenant, campaignId)


@router.put(
    "/v1/admin/campaigns/<campaignId>",
    operation_id="replaceCampaign",
    tags=["campaigns"],
    responses=responses(),
    summary="Change a draft (409 CAMPAIGN_STATUS once submitted)",
)
def replace_campaign(campaignId: CampaignId, body: Annotated[CampaignInput, Body()]) -> CampaignView:
    return service().replace(principal(router).tenant, campaignId, body)


@router.delete(
    "/v1/admin/campaigns/<campaignId>",
    operation_id="deleteCampaign",
    tags=["campaigns"],
    responses=responses(),
    summary="Delete a draft (409 CAMPAIGN_STATUS otherwise)",
)
def delete_campaign(campaignId: CampaignId) -> Response[None]:
    service().delete(principal(router).tenant, campaignId)
    return Response(status_code=204)


@_post("/v1/admin/campaigns/<campaignId>/copy", "copyCampaign", "复制: a new draft with the same terms", 201)
def copy_campaign(campaignId: CampaignId) -> CampaignView:
    caller = principal(router)
    return service().copy(caller.tenant, campaignId, caller.key_id)


@_post("/v1/admin/campaigns/<campaignId>/submit", "submitCampaign", "提交审批 to a named approver (not yourself)")
def submit_campaign(campaignId: CampaignId, body: Annotated[Submission, Body()]) -> CampaignView:
    caller = principal(router)
    return service().submit(caller.tenant, campaignId, body, caller.key_id)


@_post("/v1/admin/campaigns/<campaignId>/approve", "approveCampaign", "审批通过, by the named approver: scheduled")
def approve_campaign(campaignId: CampaignId, body: Annotated[Decision, Body()]) -> CampaignView:
    caller = principal(router)
    view = service().approve(caller.tenant, campaignId, body, caller.key_id)
    if view.campaign.kind != "batch":
        return view
    batch().on_approved(caller.tenant, view)  # 实时: run now; 定时: a one-time schedule launches it
    return service().get(caller.tenant, campaignId)


@_post("/v1/admin/campaigns/<campaignId>/reject", "rejectCampaign", "Reject, with the reason: back to draft")
def reject_campaign(campaignId: CampaignId, body: Annotated[Decision, Body()]) -> CampaignView:
    caller = principal(router)
    return service().reject(caller.tenant, campaignId, body, caller.key_id)


@_post("/v1/admin/campaigns/<campaignId>/pause", "pauseCampaign", "紧急暂停: nobody takes part until resumed")
def pause_campaign(campaignId: CampaignId) -> CampaignView:
    caller = principal(router)
    return service().pause(caller.tenant, campaignId, caller.key_id)


@_post("/v1/admin/campaigns/<campaignId>/resume", "resumeCampaign", "Resume a paused campaign")
def resume_campaign(campaignId: CampaignId) -> CampaignView:
    caller = principal(router)
    return batch().resume(caller.tenant, campaignId, caller.key_id)  # a batch run's parked pages go on


@_post("/v1/admin/campaigns/<campaignId>/end", "endCampaign", "结束, for good: what it gave stays the members'")
def end_campaign(campaignId: CampaignId) -> CampaignView:
    caller = principal(router)
    return service().end(caller.tenant, campaignId, caller.key_id)


@_post(
    "/v1/admin/campaigns/<campaignId>/day-runs",
    "runDailyCampaign",
    "Run a campaign run by the day (birthday, days after registration) for a day: each member still once",
    202,
)
def run_daily_campaign(campaignId: CampaignId, body: Annotated[DayRunRequest, Body()]) -> DayRunAccepted:
    from loyalty.services.campaigns.daily import daily_runs

    return daily_runs().run_for(principal(router).tenant, campaignId, body)


@_post(
    "/v1/admin/campaigns/<campaignId>/launch",
    "launchCampaign",
    "Run an approved batch campaign now (before its launch time, or again after a failure): each member once",
    202,
)
def launch_campaign(campaignId: CampaignId) -> CampaignView:
    return batch().launch(principal(router).tenant, campaignId, strict=True)


@_get(
    "/v1/admin/campaigns/<campaignId>/results",
    "listCampaignResults",
    "A batch campaign's run, member by member: granted, skipped (and why) or failed",
)
def campaign_results(campaignId: CampaignId, limit: Limit = 50, cursor: Cursor = None) -> BatchResultPage:
    return batch().results(principal(router).tenant, campaignId, limit, cursor)


CSV_RESPONSE = {
    **responses(),
    200: {
        "description": "memberId,outcome,reason,at; the next page's cursor in the Next-Cursor header",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    },
}


@router.get(
    "/v1/admin/campaigns/<campaignId>/report",
    operation_id="getCampaignReport",
    tags=["campaigns"],
    responses=CSV_RESPONSE,  # type: ignore[arg-type]
    summary="A batch campaign's run report as CSV, up to 10,000 rows a call (Next-Cursor for more)",
)
def campaign_report(
    campaignId: CampaignId,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
    cursor: Cursor = None,
) -> Response[str]:
    text, next_cursor = batch().report_csv(principal(router).tenant, campaignId, limit, cursor)
    headers = {"Next-Cursor": next_cursor} if next_cursor else {}
    return Response(status_code=200, content_type="text/csv; charset=utf-8", body=text, headers=headers)


@_get("/v1/admin/campaigns/<campaignId>/log", "getCampaignLog", "Every step of the campaign, oldest first")
def campaign_log(campaignId: CampaignId, limit: Limit = 50, cursor: Cursor = None) -> CampaignLogPage:
    return service().log(principal(router).tenant, campaignId, limit, cursor)


@_get(
    "/v1/admin/members/<memberId>/campaigns",
    "listMemberCampaigns",
    "The campaigns that touched a member, with what each gave",
)
def member_campaigns(memberId: MemberId, limit: Limit = 50, cursor: Cursor = None) -> ParticipationPage:
    return service().participations(principal(router).tenant, memberId, limit, cursor)
