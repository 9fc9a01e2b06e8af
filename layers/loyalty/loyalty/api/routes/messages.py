"""Messages for operators: templates (消息模板; business ones are usable once written, marketing ones are
approved by a named approver first), a program's message settings and notifications, and the send records
(短信消息, 微信消息) with their counts per template and day."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from loyalty.api.params import Cursor, Limit, MemberId
from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.errors import InvalidInput
from loyalty.domain.members import PHONE_PATTERN
from loyalty.domain.messages import NOTIFICATIONS, MessageSettingsInput, TemplateInput
from loyalty.domain.validity import BusinessDay, BusinessTime
from loyalty.services.approval import Decision, Submission
from loyalty.services.messages.records import (
    MessageFilters,
    MessageRecordPage,
    MessageRecords,
    Status,
    TemplateDayCount,
    message_records,
)
from loyalty.services.messages.settings import MessageSettingsService, MessageSettingsView, message_settings_service
from loyalty.services.messages.templates import (
    TemplateLogPage,
    TemplatePage,
    TemplateService,
    TemplateView,
    template_service,
)

router = Router()
Code = Annotated[str, Path(pattern=CODE_PATTERN)]
BASE = "/v1/admin/programs/<programCode>/message-templates"


@lru_cache(maxsize=1)
def service() -> TemplateService:
    return template_service()


@lru_cache(maxsize=1)
def settings() -> MessageSettingsService:
    return message_settings_service()


@lru_cache(maxsize=1)
def records() -> MessageRecords:
    return message_records()


def _route(method: str, path: str, operation_id: str, summary: str, status_code: int = 200):  # type: ignore[no-untyped-def]
    return router.route(
        path,
        method.upper(),
        operation_id=operation_id,
        tags=["messages"],
        status_code=status_code,
        responses=responses(status_code),
        summary=summary,
    )


@_route("post", BASE, "createMessageTemplate", "A template: usable at once (business) or a draft (marketing)", 201)
def create_template(programCode: Code, body: Annotated[TemplateInput, Body()]) -> TemplateView:
    caller = principal(router)
    if body.program_code != programCode:
        raise InvalidInput("the program in the body differs from the one in the path", field="programCode")
    return service().create(caller.tenant, body, caller.key_id)


@_route("get", BASE, "listMessageTemplates", "A program's templates, by code")
def list_templates(programCode: Code, limit: Limit = 50, cursor: Cursor = None) -> TemplatePage:
    return service().of_program(principal(router).tenant, programCode, limit, cursor)


@_route("get", f"{BASE}/<code>", "getMessageTemplate", "A template, its status and the variables it names")
def get_template(programCode: Code, code: Code) -> TemplateView:
    return service().get(principal(router).tenant, programCode, code)


@_route("put", f"{BASE}/<code>", "replaceMessageTemplate", "A new version (a marketing one is approved again)")
def replace_template(programCode: Code, code: Code, body: Annotated[TemplateInput, Body()]) -> TemplateView:
    return service().replace(principal(router).tenant, programCode, code, body)


@_route("delete", f"{BASE}/<code>", "deleteMessageTemplate", "Delete a template", 204)
def delete_template(programCode: Code, code: Code) -> Response[None]:
    service().delete(principal(router).tenant, programCode, code)
    return Response(status_code=204)


@_route("post", f"{BASE}/<code>/submit", "submitMessageTemplate", "提交审批: a marketing template to a named approver")
def submit_template(programCode: Code, code: Code, body: Annotated[Submission, Body()]) -> TemplateView:
    caller = principal(router)
    return service().submit(caller.tenant, programCode, code, body, caller.key_id)


@_route("post", f"{BASE}/<code>/approve", "approveMessageTemplate", "审批通过, by the named approver")
def approve_template(programCode: Code, code: Code, body: Annotated[Decision, Body()]) -> TemplateView:
    caller = principal(router)
    return service().approve(caller.tenant, programCode, code, body, caller.key_id)


@_route("post", f"{BASE}/<code>/reject", "rejectMessageTemplate", "Reject, with the reason: back to draft")
def reject_template(programCode: Code, code: Code, body: Annotated[Decision, Body()]) -> TemplateView:
    caller = principal(router)
    return service().reject(caller.tenant, programCode, code, body, caller.key_id)


@_route("get", f"{BASE}/<code>/log", "getMessageTemplateLog", "Every approval step, oldest first")
def template_log(programCode: Code, code: Code, limit: Limit = 50, cursor: Cursor = None) -> TemplateLogPage:
    return service().log(principal(router).tenant, programCode, code, limit, cursor)


@_route(
    "get", "/v1/admin/programs/<programCode>/message-settings", "getMessageSettings", "消息设置 (version 0: defaults)"
)
def get_settings(programCode: Code) -> MessageSettingsView:
    return settings().get(principal(router).tenant, programCode)


@_route(
    "put",
    "/v1/admin/programs/<programCode>/message-settings",
    "replaceMessageSettings",
    "Quiet hours, the marketing cap, senders and the notifications switched on, each with its template",
)
def replace_settings(programCode: Code, body: Annotated[MessageSettingsInput, Body()]) -> MessageSettingsView:
    caller = principal(router)
    return settings().replace(caller.tenant, programCode, body, caller.key_id)


def _filters(
    status: Status | None,
    template_code: str | None,
    campaign_id: str | None,
    program_code: str | None,
    notification: str | None,
) -> MessageFilters:
    return MessageFilters(
        status=status,
        template_code=template_code,
        campaign_id=campaign_id,
        program_code=program_code,
        notification=notification,
    )


From = Annotated[BusinessTime | None, Query(alias="from", description="ISO 8601 with offset (default: 7 days ago)")]
To = Annotated[BusinessTime | None, Query(alias="to", description="ISO 8601 with offset (default: now)")]
Notification = Annotated[str | None, Query(enum=list(NOTIFICATIONS), description="one notification's messages")]
CampaignFilter = Annotated[str | None, Query(alias="campaignId", pattern=r"^HD[0-9]{10,}$")]


@_route("get", "/v1/admin/messages", "listMessages", "Send records (消息记录), newest first, filtered, cursor paged")
def list_messages(
    status: Annotated[Status | None, Query()] = None,
    template_code: Annotated[str | None, Query(alias="templateCode", pattern=CODE_PATTERN)] = None,
    campaign_id: CampaignFilter = None,
    program_code: Annotated[str | None, Query(alias="programCode", pattern=CODE_PATTERN)] = None,
    notification: Notification = None,
    phone: Annotated[
        str | None, Query(max_length=30, pattern=PHONE_PATTERN, description="按手机号: the member's records, any time")
    ] = None,
    since: From = None,
    until: To = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> MessageRecordPage:
    filters = _filters(status, template_code, campaign_id, program_code, notification)
    if phone is not None:
        return records().of_phone(principal(router).tenant, phone, filters, limit, cursor)
    return records().listing(principal(router).tenant, filters, since, until, limit, cursor)


@_route("get", "/v1/admin/members/<memberId>/messages", "listMemberMessages", "A member's send records, newest first")
def member_messages(
    memberId: MemberId,
    status: Annotated[Status | None, Query()] = None,
    template_code: Annotated[str | None, Query(alias="templateCode", pattern=CODE_PATTERN)] = None,
    campaign_id: CampaignFilter = None,
    notification: Notification = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> MessageRecordPage:
    filters = _filters(status, template_code, campaign_id, None, notification)
    return records().of_member(principal(router).tenant, memberId, filters, limit, cursor)


@_route("get", "/v1/admin/message-counts", "getMessageCounts", "Sent, failed and refused per template and program day")
def message_counts(
    program_code: Annotated[str, Query(alias="programCode", pattern=CODE_PATTERN)],
    since: Annotated[BusinessDay, Query(alias="from", description="the program's calendar day")],
    until: Annotated[BusinessDay, Query(alias="to", description="the program's calendar day, included")],
) -> list[TemplateDayCount]:
    return records().counts(principal(router).tenant, program_code, since, until)
