"""Message templates (消息模板), for operators (services/messages/templates.py): business templates are usable
once written; marketing ones are approved by a named approver first."""

from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from loyalty.api.problems import responses
from loyalty.api.resolver import principal
from loyalty.domain.config import CODE_PATTERN
from loyalty.domain.errors import InvalidInput
from loyalty.domain.messages import TemplateInput
from loyalty.services.approval import Decision, Submission
from loyalty.services.messages.templates import TemplateLogEntry, TemplateService, TemplateView, template_service

router = Router()
Code = Annotated[str, Path(pattern=CODE_PATTERN)]
BASE = "/v1/admin/programs/<programCode>/message-templates"


@lru_cache(maxsize=1)
def service() -> TemplateService:
    return template_service()


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
def list_templates(programCode: Code) -> list[TemplateView]:
    return service().of_program(principal(router).tenant, programCode)


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
def template_log(programCode: Code, code: Code) -> list[TemplateLogEntry]:
    return service().log(principal(router).tenant, programCode, code)
