"""A program's message settings (消息设置, D-102): quiet hours and the marketing cap members are owed, where
email and webhooks come from, and the notifications an operator switched on, each with its template. One item
per program; a program without one has the defaults (quiet 21:00-09:00, 2 a day and 5 a week, none on)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import Field
from pydantic.alias_generators import to_camel

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import Conflict, InvalidInput
from loyalty.domain.messages import MessageSettingsInput, Notification, PointsNotification
from loyalty.domain.validity import View
from loyalty.services.config import ProgramLoader
from loyalty.services.messages.mail_identities import MailIdentities
from loyalty.services.messages.webhook_target import TargetRefused, checked_url
from loyalty.services.program_jobs import due_now
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.table import Item, Table, TransactionCancelled, put


class MessageSettingsView(View):
    program_code: str
    version: int = Field(description="0: never written, the defaults")
    updated_at: datetime | None = None
    updated_by: str | None = None
    settings: MessageSettingsInput


@dataclass
class MessageSettingsService:
    table: Table
    programs: ProgramLoader
    clock: Clock
    mail: MailIdentities  # the platform's register of the tenants' sender addresses (D-125)

    def get(self, tenant: str, program_code: str) -> MessageSettingsView:
        self.programs.load(tenant, program_code)  # 404 PROGRAM_NOT_FOUND
        return _view(program_code, self._item(tenant, program_code))

    def load(self, tenant: str, program_code: str) -> MessageSettingsInput:
        """The settings the sender works with, the webhook secret included."""
        item = self._item(tenant, program_code)
        return MessageSettingsInput.stored(item["settings"]) if item else MessageSettingsInput()

    def replace(self, tenant: str, program_code: str, settings: MessageSettingsInput, by: str) -> MessageSettingsView:
        """Every template a notification names is the program's, its channel has a sender, its point group is
        the program's; a webhook left without a secret keeps the one it had (422 when it had none)."""
        program = self.programs.load(tenant, program_code)
        if settings.webhook:
            try:
                checked_url(settings.webhook.url, local=get_settings().local_webhooks)
            except TargetRefused as refused:
                raise InvalidInput(str(refused), code="WEBHOOK_URL_REFUSED", field="webhook/url") from None
        if settings.email_from and self.mail.owner(settings.email_from) != tenant:
            raise InvalidInput(
                "emailFrom must be one of the sender addresses the platform registered for this tenant",
                code="EMAIL_SENDER_NOT_ALLOWED",
                field="emailFrom",
            )
        current = self._item(tenant, program_code, consistent=True)
        if settings.webhook and settings.webhook.secret is None:
            kept = ((current or {}).get("settings") or {}).get("webhook", {}).get("secret")
            if kept is None:
                raise InvalidInput(
                    "a webhook needs a secret to sign with, and none is stored",
                    code="SECRET_REQUIRED",
                    field="webhook/secret",
                )
            settings = settings.model_copy(update={"webhook": settings.webhook.model_copy(update={"secret": kept})})
        for name in settings.notifications.model_fields_set:
            notification: Notification | None = getattr(settings.notifications, name)
            if notification is None:
                continue
            field = f"notifications/{to_camel(name)}"
            template = self.table.get(
                keys.message_template(tenant, program_code, notification.template_code), keys.TEMPLATE_SK
            )
            if template is None:
                raise InvalidInput(
                    f"no template {notification.template_code!r} in program {program_code}",
                    code="UNKNOWN_REFERENCE",
                    field=f"{field}/templateCode",
                )
            channel = template["template"]["channel"]
            if (channel == "email" and not settings.email_from) or (channel == "webhook" and not settings.webhook):
                raise InvalidInput(
                    f"template {notification.template_code!r} is sent by {channel}, which has no settings here",
                    code="CHANNEL_NOT_CONFIGURED",
                    field=f"{field}/templateCode",
                )
            group = notification.point_group_code if isinstance(notification, PointsNotification) else None
            if group is not None and group not in program.point_groups:
                raise InvalidInput(
                    f"no point group {group!r} in program {program_code}",
                    code="UNKNOWN_REFERENCE",
                    field=f"{field}/pointGroupCode",
                )
        item = {
            "PK": keys.message_settings(tenant, program_code),
            "SK": keys.MESSAGE_SETTINGS_SK,
            "settings": settings.model_dump(mode="json", by_alias=True),
            "version": (current or {}).get("version", 0) + 1,
            "updatedAt": self.clock.now().isoformat(),
            "updatedBy": by,
        }
        # written over the version read (the secret kept was that version's): two operators at once, one 409
        seen = (current or {}).get("version")
        condition = "attribute_not_exists(PK)" if seen is None else "version = :seen"
        try:
            self.table.transact(
                [
                    put(item, condition, {":seen": seen} if seen is not None else None),
                    due_now(tenant, program_code, "notifications", self.clock.now()),  # today's, if newly on
                ]
            )
        except TransactionCancelled:
            raise Conflict("the settings changed meanwhile; retry", code="CONCURRENT_UPDATE") from None
        return _view(program_code, item)

    def _item(self, tenant: str, program_code: str, *, consistent: bool = False) -> Item | None:
        pk = keys.message_settings(tenant, program_code)
        return self.table.get(pk, keys.MESSAGE_SETTINGS_SK, consistent=consistent)


def _view(program_code: str, item: Item | None) -> MessageSettingsView:
    settings = MessageSettingsInput.stored(item["settings"]) if item else MessageSettingsInput()
    shown = settings.model_dump(mode="json", by_alias=True)
    if settings.webhook:
        shown["webhook"] = {"url": settings.webhook.url}
    return MessageSettingsView.model_validate(
        {**(item or {}), "programCode": program_code, "version": (item or {}).get("version", 0), "settings": shown}
    )


def message_settings_service(table: Table | None = None, clock: Clock | None = None) -> MessageSettingsService:
    table = table or Table()
    return MessageSettingsService(
        table, ProgramLoader(ConfigRepository(table)), clock or SystemClock(), MailIdentities()
    )
