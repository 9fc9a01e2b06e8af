"""Send records (短信消息, 微信消息: social-hub §11.3-11.4), as operators read them: a member's, newest first;
the tenant's over a time range with filters, newest first, cursor paged; counts per template and day; and a
member's erasure, which takes their bodies and recipients away (D-106)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import InvalidInput, NotFound
from loyalty.domain.members import normalize_phone
from loyalty.domain.validity import CamelModel, View
from loyalty.services.config import ProgramLoader
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository
from loyalty.store.table import Item, Table, decode_cursor, delete, encode_cursor, to_attributes, update

MAX_DAYS = 92
READS_PER_PAGE = 10  # a filtered page reads at most this many index pages, then answers with a cursor
Status = Literal["queued", "held", "sent", "failed", "refused"]


RECORD_EXAMPLE: JsonDict = {
    "messageId": "01JDQ5W8C4M7Q3V2X9Z6K1B0TA",
    "programCode": "DEMO",
    "templateCode": "points-earned",
    "templateName": "购买赠送积分通知",
    "channel": "sms",
    "purpose": "business",
    "memberId": "01JDQ5T2M3N4P5Q6R7S8T9V0WX",
    "recipient": "138****8000",
    "length": 28,
    "status": "sent",
    "body": "张三您好, 您本次购买获得300积分, 当前可用300。",
    "providerMessageId": "5649559b-bc03-4b00-af11-745bc9aca719",
    "notification": "pointsEarned",
    "attempts": 1,
    "createdAt": "2026-12-06T11:20:44.271Z",
    "finishedAt": "2026-12-06T11:20:44.323Z",
}


class MessageRecordView(View):
    """A send record (消息记录): what was sent to whom (masked), why, and how it went."""

    model_config = ConfigDict(json_schema_extra={"examples": [RECORD_EXAMPLE]})  # merged with View's

    message_id: str
    program_code: str
    template_code: str
    template_name: str | None = None
    channel: Literal["sms", "email", "webhook"] | None = None
    purpose: Literal["business", "marketing"] | None = None
    member_id: str
    recipient: str | None = Field(default=None, description="masked: 138****8000, z***@example.com, a host")
    length: int | None = Field(default=None, description="characters of the rendered body")
    status: Status
    reason: str | None = Field(default=None, description="why refused or failed (noConsent, capReached, ...)")
    subject: str | None = Field(default=None, description="an email's, as sent")
    body: str | None = Field(
        default=None, description="发送内容: what was sent, while the program keeps it (bodyRetentionDays); then null"
    )
    provider_message_id: str | None = None
    notification: str | None = None
    campaign_id: str | None = None
    attempts: int = 0
    created_at: datetime
    held_until: datetime | None = None
    finished_at: datetime | None = None


class MessageRecordPage(View):
    items: list[MessageRecordView]
    next_cursor: str | None = None


class MessageFilters(CamelModel):
    status: Status | None = None
    template_code: str | None = None
    campaign_id: str | None = None
    program_code: str | None = None
    notification: str | None = None


class TemplateDayCount(View):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "date": "2026-12-06",
                    "programCode": "DEMO",
                    "templateCode": "points-earned",
                    "sent": 1280,
                    "failed": 3,
                    "refused": 12,
                }
            ]
        },
    )

    date: date
    program_code: str
    template_code: str
    sent: int = 0
    failed: int = 0
    refused: int = 0


@dataclass
class MessageRecords:
    table: Table
    programs: ProgramLoader
    clock: Clock

    def of_member(
        self, tenant: str, member_id: str, filters: MessageFilters, limit: int, cursor: str | None
    ) -> MessageRecordPage:
        MemberRepository(self.table).profile(tenant, member_id)  # 404 for another tenant's, as every member route
        index = keys.member_messages(tenant, member_id)
        start = None
        if cursor:
            sort, pk = _resume(cursor, 2)
            start = to_attributes({"GSI1PK": index, "GSI1SK": sort, "PK": pk, "SK": keys.MESSAGE_SK})
        found: list[Item] = []
        for _ in range(READS_PER_PAGE):
            items, start = self.table.query_index(
                "GSI1", index, limit=limit - len(found), start=start, newest_first=True, filter_by=_filter(filters)
            )
            found += items
            if not start or len(found) >= limit:
                break
        next_cursor = encode_cursor(json.dumps([start["GSI1SK"]["S"], start["PK"]["S"]])) if start else None
        return MessageRecordPage(items=self._with_bodies(found), next_cursor=next_cursor)

    def listing(
        self,
        tenant: str,
        filters: MessageFilters,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> MessageRecordPage:
        """Newest first over [since, until] (default: the last 7 days), one UTC day's partition after another."""
        _plausible(since, "from")
        until = _plausible(until, "to") or self.clock.now()
        until = until.astimezone(UTC)
        since = (since or until - timedelta(days=7)).astimezone(UTC)
        if since > until or until - since > timedelta(days=MAX_DAYS):
            raise InvalidInput(f"from comes before to, at most {MAX_DAYS} days apart", field="from")
        day, start = until.date(), None
        if cursor:
            saved_day, sort, pk = _resume(cursor, 3)
            day = date.fromisoformat(saved_day)
            if sort:
                index = keys.messages_of_day(tenant, day.isoformat())
                start = to_attributes({"GSI2PK": index, "GSI2SK": sort, "PK": pk, "SK": keys.MESSAGE_SK})
        low, high = since.isoformat(), until.isoformat() + "#~"
        found: list[Item] = []
        finished = False
        for _ in range(READS_PER_PAGE):
            items, start = self.table.query_index(
                "GSI2",
                keys.messages_of_day(tenant, day.isoformat()),
                limit=limit - len(found),
                start=start,
                pk_attribute="GSI2PK",
                newest_first=True,
                sk_between=("GSI2SK", low, high),
                filter_by=_filter(filters),
            )
            found += items
            if start is None:
                if day <= since.date():
                    finished = True
                    break
                day -= timedelta(days=1)
            if len(found) >= limit:
                break
        next_cursor = None
        if not finished:
            after = [start["GSI2SK"]["S"], start["PK"]["S"]] if start else [None, None]
            resume = [day.isoformat(), *after]
            next_cursor = encode_cursor(json.dumps(resume))
        return MessageRecordPage(items=self._with_bodies(found), next_cursor=next_cursor)

    def of_phone(
        self, tenant: str, phone: str, filters: MessageFilters, limit: int, cursor: str | None
    ) -> MessageRecordPage:
        """按手机号搜索 (§11.3): the records of the member with this phone (none when no member has it)."""
        try:
            member_id = MemberRepository(self.table).id_by_phone(tenant, normalize_phone(phone))
        except (NotFound, ValueError):
            return MessageRecordPage(items=[])
        return self.of_member(tenant, member_id, filters, limit, cursor)

    def _with_bodies(self, records: list[Item]) -> list[MessageRecordView]:
        """The records with what was sent (发送内容), while their program keeps it: one BatchGetItem a page."""
        kept = self.table.get_many([(r["PK"], keys.MESSAGE_BODY_SK) for r in records], consistent=False)
        views = []
        for record in records:
            body = kept.get((record["PK"], keys.MESSAGE_BODY_SK)) or {}
            shown = {k: body[k] for k in ("body", "subject") if k in body}
            views.append(MessageRecordView.model_validate({**record, **shown}))
        return views

    def counts(self, tenant: str, program_code: str, since: date, until: date) -> list[TemplateDayCount]:
        """Per template and program day (sent, failed, refused), oldest day first: one query per day."""
        self.programs.load(tenant, program_code)
        _plausible(since, "from")
        _plausible(until, "to")
        if since > until or (until - since).days >= MAX_DAYS:
            raise InvalidInput(f"from comes before to, at most {MAX_DAYS} days apart", field="from")
        counted: list[TemplateDayCount] = []
        for offset in range((until - since).days + 1):
            day = since + timedelta(days=offset)
            shards = self.table.query_all(keys.message_stats(tenant, day.isoformat()), f"{program_code}#")
            merged: dict[str, dict[str, int]] = {}
            for shard in shards:
                totals = merged.setdefault(shard["templateCode"], {"sent": 0, "failed": 0, "refused": 0})
                for status in totals:
                    totals[status] += int(shard.get(status, 0))
            counted += [
                TemplateDayCount(date=day, program_code=program_code, template_code=code, **totals)
                for code, totals in sorted(merged.items())
            ]
        return counted

    def erase(self, tenant: str, member_id: str) -> int:
        """一键删除隐私 reaches messages too: every body (with the recipient it went to) is deleted and the
        masked recipient taken off the record; the records themselves stay, as the ledger does."""
        index, start, erased = keys.member_messages(tenant, member_id), None, 0
        while True:
            items, start = self.table.query_index("GSI1", index, limit=100, start=start)
            for item in items:
                self.table.transact(
                    [
                        delete(item["PK"], keys.MESSAGE_BODY_SK),
                        update(item["PK"], keys.MESSAGE_SK, "REMOVE recipient SET erased = :yes", {":yes": True}),
                    ]
                )
                erased += 1
            if not start:
                return erased


def _plausible(moment: Any, field: str) -> Any:
    """A day or a time of this century, or None; anything else is 422 (and no date arithmetic overflows)."""
    if moment is None:
        return None
    day = moment.date() if isinstance(moment, datetime) else moment
    if not date(2000, 1, 1) <= day < date(2100, 1, 1):
        raise InvalidInput("a date between 2000 and 2099", field=field)
    return moment


def _resume(cursor: str, parts: int) -> list[Any]:
    """What a cursor of these listings holds: a JSON list of `parts` strings (or nulls), the first a day or a
    sort key; anything else is 422 INVALID_CURSOR."""
    try:
        saved = json.loads(decode_cursor(cursor, "["))
        if parts == 3:
            date.fromisoformat(saved[0])
    except (ValueError, TypeError, IndexError, KeyError):
        saved = None
    valid = (
        isinstance(saved, list)
        and len(saved) == parts
        and isinstance(saved[0], str)
        and (all(isinstance(v, str) for v in saved[1:]) or (parts == 3 and saved[1:] == [None, None]))
    )
    if not valid:
        raise InvalidInput("the cursor is not one this API issued", code="INVALID_CURSOR", field="cursor")
    return saved


def _filter(filters: MessageFilters) -> tuple[str, Item, dict[str, str]] | None:
    wanted: dict[str, Any] = {
        "#status": filters.status,
        "templateCode": filters.template_code,
        "campaignId": filters.campaign_id,
        "programCode": filters.program_code,
        "notification": filters.notification,
    }
    given = {name: value for name, value in wanted.items() if value is not None}
    if not given:
        return None
    clauses = [f"{name} = :f{i}" for i, name in enumerate(given)]
    values = {f":f{i}": value for i, value in enumerate(given.values())}
    names = {"#status": "status"} if "#status" in given else {}
    return " AND ".join(clauses), values, names


def message_records(table: Table | None = None, clock: Clock | None = None) -> MessageRecords:
    table = table or Table()
    return MessageRecords(table, ProgramLoader(ConfigRepository(table)), clock or SystemClock())
