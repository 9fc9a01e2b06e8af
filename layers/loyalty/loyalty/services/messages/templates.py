"""Message templates (短信模板 and the others, social-hub §11.1-11.2), as operators write them: one per code in
a program. A business template (业务) can be used once written; a marketing one (营销) goes through a named
approver as a coupon rule does, and a change sends it back to draft (D-101)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.messages import TemplateInput, variables_in
from loyalty.domain.validity import View
from loyalty.services import approval
from loyalty.services.approval import Approvable, Decision, LogEntryDraft, Submission
from loyalty.services.config import ProgramLoader
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.table import Item, Table, TransactionCancelled, delete, put

TemplateStatus = Literal["active", "draft", "pending", "approved"]
USABLE = ("active", "approved")  # what a message may be sent with


class TemplateView(Approvable):
    status: TemplateStatus = Field(description="active (business), or draft, pending, approved (marketing)")
    version: int
    created_at: datetime
    created_by: str
    variables: list[str] = Field(description="the variables its subject and body name")
    template: TemplateInput


class TemplatePage(View):
    items: list[TemplateView]
    next_cursor: str | None = None


class TemplateLogEntry(View):
    at: datetime
    by: str
    action: Literal["submitted", "approved", "rejected"]
    comment: str | None = None


class TemplateLogPage(View):
    items: list[TemplateLogEntry]
    next_cursor: str | None = None


@dataclass
class TemplateService:
    table: Table
    programs: ProgramLoader
    clock: Clock

    def create(self, tenant: str, template: TemplateInput, by: str) -> TemplateView:
        self.programs.load(tenant, template.program_code)  # 404 PROGRAM_NOT_FOUND
        marketing = template.purpose == "marketing"
        item = {
            "PK": keys.message_template(tenant, template.program_code, template.code),
            "SK": keys.TEMPLATE_SK,
            "status": "draft" if marketing else "active",
            "approvalStatus": "none",
            "version": 1,
            "createdAt": self.clock.now().isoformat(),
            "createdBy": by,
            "template": _data(template),
            "GSI1PK": keys.message_templates(tenant, template.program_code),
            "GSI1SK": template.code,
        }
        try:
            self.table.transact([put(item, "attribute_not_exists(PK)")])
        except TransactionCancelled:
            raise Conflict(f"a template {template.code!r} exists", code="ALREADY_EXISTS", field="code") from None
        return _view(item)

    def replace(self, tenant: str, program_code: str, code: str, template: TemplateInput) -> TemplateView:
        """A new version; a marketing template goes back to draft (approved again before it is used), and
        one awaiting its approver cannot change (409 TEMPLATE_STATUS)."""
        if template.program_code != program_code:
            raise InvalidInput("the program in the body differs from the one in the path", field="programCode")
        if template.code != code:
            raise InvalidInput("the code in the body differs from the one in the path", field="code")
        current = self._item(tenant, program_code, code)
        marketing = template.purpose == "marketing"
        item = {
            **current,
            "template": _data(template),
            "version": current["version"] + 1,
            "status": "draft" if marketing else "active",
            "approvalStatus": "none",
        }
        for stale in ("approver", "submittedBy", "rejectionComment"):
            item.pop(stale, None)
        condition = "#status <> :pending AND version = :v"
        values = {":pending": "pending", ":v": current["version"]}
        try:
            self.table.transact([put(item, condition, values, {"#status": "status"})])
        except TransactionCancelled as cancelled:
            found = cancelled.items[0]
            if found is not None and found["status"] != "pending":
                raise Conflict("the template changed meanwhile; retry", code="CONCURRENT_UPDATE") from None
            raise _refused(found) from None
        return _view(item)

    def delete(self, tenant: str, program_code: str, code: str) -> None:
        """Gone for good, unless a notification of the program's settings names it (409 STILL_REFERENCED)."""
        current = self._item(tenant, program_code, code)
        settings = self.table.get(keys.message_settings(tenant, program_code), keys.MESSAGE_SETTINGS_SK)
        named = [
            name
            for name, notification in ((settings or {}).get("settings", {}).get("notifications") or {}).items()
            if notification and notification.get("templateCode") == code
        ]
        if named:
            raise Conflict(
                f"the {named[0]} notification sends it; switch it to another template first",
                code="STILL_REFERENCED",
                field="code",
            )
        try:
            self.table.transact([delete(current["PK"], keys.TEMPLATE_SK, "version = :v", {":v": current["version"]})])
        except TransactionCancelled:
            raise Conflict("the template changed meanwhile; retry", code="CONCURRENT_UPDATE") from None

    def submit(self, tenant: str, program_code: str, code: str, submission: Submission, by: str) -> TemplateView:
        return self._step(
            tenant, program_code, code, **approval.submitting(self.table, tenant, submission, by).as_step()
        )

    def approve(self, tenant: str, program_code: str, code: str, decision: Decision, by: str) -> TemplateView:
        move = approval.approving(self._item(tenant, program_code, code), decision, by, "approved")
        return self._step(tenant, program_code, code, **move.as_step())

    def reject(self, tenant: str, program_code: str, code: str, decision: Decision, by: str) -> TemplateView:
        move = approval.rejecting(self._item(tenant, program_code, code), decision, by, "template")
        return self._step(tenant, program_code, code, **move.as_step())

    def get(self, tenant: str, program_code: str, code: str) -> TemplateView:
        return _view(self._item(tenant, program_code, code))

    def of_program(self, tenant: str, program_code: str, limit: int = 100, cursor: str | None = None) -> TemplatePage:
        """A program's templates by code, a page at a time."""
        self.programs.load(tenant, program_code)
        page = self.table.index_page("GSI1", keys.message_templates(tenant, program_code), limit, cursor)
        return TemplatePage(items=[_view(item) for item in page.items], next_cursor=page.next_cursor)

    def log(
        self, tenant: str, program_code: str, code: str, limit: int = 100, cursor: str | None = None
    ) -> TemplateLogPage:
        self._item(tenant, program_code, code)
        page = approval.log_page(self.table, keys.message_template(tenant, program_code, code), limit, cursor)
        items = [TemplateLogEntry.model_validate(item) for item in page.items]
        return TemplateLogPage(items=items, next_cursor=page.next_cursor)

    def _item(self, tenant: str, program_code: str, code: str) -> Item:
        item = self.table.get(keys.message_template(tenant, program_code, code), keys.TEMPLATE_SK)
        if item is None:
            raise NotFound(f"no template {code!r} in program {program_code}", code="TEMPLATE_NOT_FOUND")
        return item

    def _step(
        self,
        tenant: str,
        program_code: str,
        code: str,
        expected: str,
        expression: str,
        values: dict[str, Any],
        entry: LogEntryDraft,
        approver: str | None = None,
    ) -> TemplateView:
        approval.step(
            self.table,
            self.clock.now(),
            (keys.message_template(tenant, program_code, code), keys.TEMPLATE_SK),
            expected,
            expression,
            values,
            entry,
            _refused,
            lambda: NotFound(f"no template {code!r} in program {program_code}", code="TEMPLATE_NOT_FOUND"),
            approver=approver,
        )
        return self.get(tenant, program_code, code)


def _refused(found: Item | None) -> Exception:
    if found is None:
        return NotFound("no such template", code="TEMPLATE_NOT_FOUND")
    return Conflict(f"the template is {found['status']}", code="TEMPLATE_STATUS", templateStatus=found["status"])


def _view(item: Item) -> TemplateView:
    template = TemplateInput.stored(item["template"])
    named = variables_in(f"{template.subject or ''} {template.body}")
    return TemplateView.model_validate({**item, "variables": named})


def _data(template: TemplateInput) -> dict[str, Any]:
    return template.model_dump(mode="json", by_alias=True, exclude_none=True)


def template_service(table: Table | None = None, clock: Clock | None = None) -> TemplateService:
    table = table or Table()
    return TemplateService(table, ProgramLoader(ConfigRepository(table)), clock or SystemClock())
