"""Sending a message, once (D-104). A notification or a campaign effect makes a `MessageRequest` with a
business key (the notification and its occasion, the campaign and its member); the message queue brings it
to `deliver`, which renders the template for the member, asks the rules members are owed, and sends through
the channel's adapter. The send record, keyed by the business key, is the once:

- a request whose record is final (sent, failed, refused) changes nothing;
- a send is claimed first (status queued with a lease, in the transaction that takes the member's marketing
  cap); a redelivery meeting a live lease tries later, one meeting an expired lease (the sender died between
  the call and the record) marks it failed `outcomeUnknown` and does not send again: at most once;
- a provider's "try later" gives the claim back and raises, so the queue retries with a backoff.

A marketing message inside the program's quiet hours is held: its record says until when, and a HELD item in
the program's release index brings the request back then (`release`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.messages import (
    MessageSettingsInput,
    TemplateInput,
    cap_periods,
    e164,
    held_until,
    masked_recipient,
    refusal,
    render,
)
from loyalty.domain.program import ProgramConfig
from loyalty.ids import new_ulid
from loyalty.observability import logger
from loyalty.services.config import ProgramLoader
from loyalty.services.messages.senders import Outgoing, Sender, TryLater, Undeliverable, senders
from loyalty.services.messages.settings import MessageSettingsService
from loyalty.services.messages.templates import USABLE
from loyalty.services.program_jobs import JobMark, Progress, release_waiting
from loyalty.services.queues import send_all
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.table import Item, Table, TransactionCancelled, delete, put, update

FINAL = ("sent", "failed", "refused")
LEASE = timedelta(seconds=60)  # longer than the function's timeout: a live claim is never taken for a dead one
RELEASE_GRACE = timedelta(minutes=5)  # a release time stays on the program's mark this long after it came
NAMES = {"#status": "status"}


@dataclass(frozen=True)
class MessageRequest:
    """A message to send: one per business key, ever. `values` are the occasion's variables (points,
    couponCode, ...); the sender adds the member's (name, balance, tier) and the program's."""

    tenant: str
    program_code: str
    template_code: str
    member_id: str
    key: str
    values: dict[str, Any] = field(default_factory=dict)
    cause: dict[str, str] = field(default_factory=dict)  # {"notification": ...} or {"campaignId": ...}
    point_group_code: str | None = None  # whose balance {{balance}} shows

    def body(self) -> str:
        return json.dumps({"messageRequest": asdict(self)}, default=str, ensure_ascii=False)

    @classmethod
    def from_body(cls, message: dict[str, Any]) -> MessageRequest:
        return cls(**message["messageRequest"])


def enqueue(requests: list[MessageRequest], queue_url: str | None = None) -> None:
    """Hand requests to the message queue (ten per call); raises if SQS refused any. What other capabilities
    call to have a message sent."""
    if requests:
        send_all(queue_url or get_settings().message_queue_url, [r.body() for r in requests])


@dataclass
class Decision:
    """What deliver found out before sending: the record to write, and what to send if anything."""

    record: Item
    outgoing: Outgoing | None = None
    channel: str = ""
    caps: list[tuple[str, int | None, datetime]] = field(default_factory=list)
    retention: timedelta = timedelta(days=30)


@dataclass
class MessageService:
    table: Table
    programs: ProgramLoader
    settings: MessageSettingsService
    clock: Clock
    channels: Callable[[], dict[str, Sender]] = senders
    queue_url: str | None = None
    _announced: set[tuple[str, str, datetime]] = field(default_factory=set, repr=False)

    def enqueue(self, requests: list[MessageRequest]) -> None:
        enqueue(requests, self.queue_url)

    def deliver(self, request: MessageRequest, settings: MessageSettingsInput | None = None) -> str:
        """Send the request's message unless its record says it was dealt with; answers the record's status.
        `settings`: the program's, when the caller has read them already."""
        pk = keys.message(request.tenant, request.key)
        found = self.table.get(pk, keys.MESSAGE_SK)
        now = self.clock.now().astimezone(UTC)  # records keep UTC times: their index sorts by them
        if found is not None:
            status = found["status"]
            if status in FINAL:
                return str(status)
            if status == "held" and now < datetime.fromisoformat(found["heldUntil"]):
                return "held"
            if status == "queued" and "leaseUntil" in found:
                if now < datetime.fromisoformat(found["leaseUntil"]):
                    raise TryLater("inFlight")
                return self._unknown_outcome(found)
        decision = self._decide(request, found, now, settings)
        record = decision.record
        if record["status"] in ("refused", "held"):
            return self._settle(request, found, decision, now)
        return self._send(request, found, decision, now)

    # --- deciding ---------------------------------------------------------------------------------------

    def _decide(
        self, request: MessageRequest, found: Item | None, now: datetime, settings: MessageSettingsInput | None
    ) -> Decision:
        program = self.programs.load(request.tenant, request.program_code)
        template_item = self.table.get(
            keys.message_template(request.tenant, request.program_code, request.template_code),
            keys.TEMPLATE_SK,
            consistent=False,
        )
        member = self.table.query_prefix(keys.member(request.tenant, request.member_id), keys.MEMBER_SK).items
        profile = member[0] if member and member[0]["SK"] == keys.MEMBER_SK else None
        record: Item = {
            "PK": keys.message(request.tenant, request.key),
            "SK": keys.MESSAGE_SK,
            "messageId": (found or {}).get("messageId") or new_ulid(),
            "key": request.key,
            "programCode": request.program_code,
            "templateCode": request.template_code,
            "memberId": request.member_id,
            "createdAt": (found or {}).get("createdAt") or now.isoformat(),
            "attempts": (found or {}).get("attempts", 0),
            **{k: v for k, v in request.cause.items() if v},
        }
        record |= _indexes(request.tenant, request.member_id, record)
        if template_item is None:
            return Decision(_refused(record, "templateMissing"))
        template = TemplateInput.stored(template_item["template"])
        record |= {"templateName": template.name, "channel": template.channel, "purpose": template.purpose}
        if template_item["status"] not in USABLE:
            return Decision(_refused(record, "templateNotApproved"))
        if profile is None:
            return Decision(_refused(record, "memberNotFound"))
        refused = refusal(template.purpose, profile, for_tests=template.for_tests)
        if refused:
            return Decision(_refused(record, refused))
        settings = settings or self.settings.load(request.tenant, request.program_code)
        recipient, reason = _recipient(template.channel, profile, settings)
        if recipient is None:
            return Decision(_refused(record, reason))
        record["recipient"] = masked_recipient(template.channel, recipient)
        values = _values(request, program, profile, member)
        body = render(template.body, values)
        subject = render(template.subject, values) if template.subject else None
        record["length"] = len(body)
        if template.purpose == "marketing":
            until = held_until(now, program.zone, settings.quiet_hours)
            if until is not None:
                record |= {"status": "held", "heldUntil": until.astimezone(UTC).isoformat()}
                return Decision(record)
        outgoing = Outgoing(
            message_id=record["messageId"],
            recipient=recipient,
            body=body,
            purpose=template.purpose,
            subject=subject,
            sender=settings.email_from,
            tenant=request.tenant,
            secret=settings.webhook.secret if settings.webhook else None,
            payload={
                "memberId": request.member_id,
                "templateCode": request.template_code,
                "values": values,
                # what an app push or a WeChat template message is addressed by (openid, device): the receiver's
                "identities": [
                    {"channel": i["channel"], "type": i["type"], "value": i["value"]}
                    for i in member
                    if i["SK"].startswith(keys.IDENTITY_PREFIX)
                ],
            },
        )
        caps: list[tuple[str, int | None, datetime]] = []
        if template.purpose == "marketing":
            periods = cap_periods(now, program.zone)
            cap = settings.marketing_cap
            caps = [
                (f"D#{periods['day'][0]}", cap.per_day, periods["day"][1]),
                (f"W#{periods['week'][0]}", cap.per_week, periods["week"][1]),
            ]
        record["status"] = "queued"
        return Decision(record, outgoing, template.channel, caps, timedelta(days=settings.body_retention_days))

    # --- writing ----------------------------------------------------------------------------------------

    def _settle(self, request: MessageRequest, found: Item | None, decision: Decision, now: datetime) -> str:
        """A refusal or a hold: the record, in one transaction with its stats (a refusal) or its place in the
        release index (a hold)."""
        record = decision.record
        operations = [put(record, *_open(found))]
        if record["status"] == "held":
            until = record["heldUntil"]
            self._announce_hold(request.tenant, request.program_code, datetime.fromisoformat(until))
            operations.append(
                put(
                    {
                        "PK": record["PK"],
                        "SK": keys.MESSAGE_HOLD_SK,
                        "GSI1PK": keys.held_messages(request.tenant, request.program_code, until[:10]),
                        "GSI1SK": f"{until}#{request.key}",
                        "request": request.body(),
                    }
                )
            )
        else:
            record["finishedAt"] = now.isoformat()
            operations.append(self._stats(request, record, now))
            if found is not None and found["status"] == "held":
                operations.append(delete(record["PK"], keys.MESSAGE_HOLD_SK))
        try:
            self.table.transact(operations)
        except TransactionCancelled:
            return str(self._current(record)["status"])
        return str(record["status"])

    def _send(self, request: MessageRequest, found: Item | None, decision: Decision, now: datetime) -> str:
        record, outgoing = decision.record, decision.outgoing
        assert outgoing is not None  # a queued decision always has one
        lease = (now + LEASE).isoformat()
        claim = {**record, "leaseUntil": lease, "attempts": int(record["attempts"]) + 1}
        operations = [put(claim, *_open(found))]
        first = found is None or found["status"] == "held"  # a retry's caps were taken by its first claim
        if first:
            caps_pk = keys.message_caps(request.tenant, request.member_id)
            for sk, cap, until in decision.caps:
                if cap is None:
                    continue
                expiry = int((until + timedelta(days=1)).timestamp())
                operations.append(
                    update(
                        caps_pk,
                        sk,
                        "ADD #n :one SET expiration = :exp",
                        {":one": 1, ":cap": cap, ":exp": expiry},
                        "attribute_not_exists(#n) OR #n < :cap",
                        {"#n": "count"},
                    )
                )
        if found is not None and found["status"] == "held":
            operations.append(delete(record["PK"], keys.MESSAGE_HOLD_SK))
        try:
            self.table.transact(operations)
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):  # another delivery of the same request got there first
                return str(self._current(record)["status"])
            return self._settle(request, found, Decision(_refused(record, "capReached")), now)
        try:
            provider_id = self.channels()[decision.channel].send(outgoing)
        except Undeliverable as refused:
            return self._finish(request, claim, now, "failed", refused.reason, outgoing, decision.retention)
        except TryLater as later:
            self.table.transact(
                [
                    update(
                        claim["PK"],
                        claim["SK"],
                        "SET reason = :reason REMOVE leaseUntil",
                        {":reason": later.reason, ":lease": lease},
                        "leaseUntil = :lease",
                    )
                ]
            )
            raise
        return self._finish(request, claim, now, "sent", None, outgoing, decision.retention, provider_id)

    def _finish(
        self,
        request: MessageRequest,
        claim: Item,
        now: datetime,
        status: str,
        reason: str | None,
        outgoing: Outgoing,
        retention: timedelta,
        provider_id: str | None = None,
    ) -> str:
        """The claim becomes sent or failed, with its stats and the body kept for the retention."""
        done = self.clock.now().astimezone(UTC)
        sets = {":status": status, ":at": done.isoformat(), ":lease": claim["leaseUntil"]}
        expression = "SET #status = :status, finishedAt = :at"
        if reason:
            expression += ", reason = :reason"
            sets[":reason"] = reason
        if provider_id:
            expression += ", providerMessageId = :provider"
            sets[":provider"] = provider_id
        body = {
            "PK": claim["PK"],
            "SK": keys.MESSAGE_BODY_SK,
            "body": outgoing.body,
            "recipient": outgoing.recipient,
            "expiration": int((done + retention).timestamp()),
            "memberId": request.member_id,
            **({"subject": outgoing.subject} if outgoing.subject else {}),
        }
        self.table.transact(
            [
                update(claim["PK"], claim["SK"], expression + " REMOVE leaseUntil", sets, "leaseUntil = :lease", NAMES),
                put(body),
                self._stats(request, {**claim, "status": status}, now),
            ]
        )
        logger.info(
            "message " + status,
            extra={"messageId": claim["messageId"], "channel": claim.get("channel"), "reason": reason},
        )
        return status

    def _unknown_outcome(self, found: Item) -> str:
        """A claim whose sender died between the provider's call and the record: sending again might send
        twice, so the record says the outcome is unknown instead."""
        now = self.clock.now().astimezone(UTC).isoformat()
        with suppress(TransactionCancelled):  # it was settled meanwhile: what the record says stands
            self.table.transact(
                [
                    update(
                        found["PK"],
                        found["SK"],
                        "SET #status = :failed, reason = :reason, finishedAt = :now REMOVE leaseUntil",
                        {":failed": "failed", ":reason": "outcomeUnknown", ":now": now, ":lease": found["leaseUntil"]},
                        "leaseUntil = :lease",
                        NAMES,
                    )
                ]
            )
        return str(self._current(found)["status"])

    def _stats(self, request: MessageRequest, record: Item, now: datetime) -> dict[str, Any]:
        program = self.programs.load(request.tenant, request.program_code)
        day = now.astimezone(program.zone).date().isoformat()
        shard = keys.message_stats_shard(request.key)
        return update(
            keys.message_stats(request.tenant, day),
            f"{request.program_code}#{request.template_code}#{shard}",
            "ADD #s :one SET programCode = :program, templateCode = :template",
            {":one": 1, ":program": request.program_code, ":template": request.template_code},
            names={"#s": record["status"]},
        )

    def _current(self, record: Item) -> Item:
        return self.table.get(record["PK"], keys.MESSAGE_SK) or record

    # --- quiet hours ------------------------------------------------------------------------------------

    def release(self, tenant: str, program_code: str) -> int:
        """Send the program's held messages whose time has come back to the queue (yesterday's and today's
        release days, UTC); a request released twice is still sent once."""
        now = self.clock.now().astimezone(UTC)
        requests: list[MessageRequest] = []
        for day in ((now - timedelta(days=1)).date(), now.date()):
            index = keys.held_messages(tenant, program_code, day.isoformat())
            start = None
            while True:
                items, start = self.table.query_index(
                    "GSI1", index, limit=200, start=start, sk_between=("GSI1SK", "0", f"{now.isoformat()}#~")
                )
                requests += [MessageRequest.from_body(json.loads(item["request"])) for item in items]
                if not start:
                    break
        self.enqueue(requests)
        return len(requests)

    def _announce_hold(self, tenant: str, program_code: str, until: datetime) -> None:
        """Tell the release job (its program's mark) that a message waits until `until`, before the hold is
        written (a hold that then fails leaves a release with nothing to do). A marketing blast holds many
        messages until the same time: each process writes that once, not once per message."""
        known = (tenant, program_code, until)
        if known in self._announced:
            return
        self.table.transact([release_waiting(tenant, program_code, until)])
        if len(self._announced) > 10_000:  # a long-lived process forgets (announcing again costs one write)
            self._announced.clear()
        self._announced.add(known)


@dataclass
class HeldRelease:
    """The release of held marketing, done a program at a time (services/program_jobs.py): a program is due
    when a time its mark lists has come (each hold lists its time), and once a day in any case. A time stays
    listed RELEASE_GRACE after it came, so a hold the index showed late is released by the next run."""

    messages: MessageService
    name = "release"

    def queue_url(self) -> str:
        return get_settings().message_queue_url

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress:
        now = self.messages.clock.now()
        self.messages.release(tenant, program_code)
        settled = frozenset(t for t in mark.waiting if datetime.fromisoformat(t) <= now - RELEASE_GRACE)
        return Progress(None, now + timedelta(days=1), released=settled)


def _open(found: Item | None) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The condition of writing a record over `found`: none was there, or it is held, or it was given back
    by a provider's "try later" (queued without a lease)."""
    if found is None:
        return "attribute_not_exists(PK)", {}, {}
    return (
        "#status = :seen AND attempts = :attempts AND attribute_not_exists(leaseUntil)",
        {":seen": found["status"], ":attempts": found.get("attempts", 0)},
        NAMES,
    )


def _refused(record: Item, reason: str) -> Item:
    return {**record, "status": "refused", "reason": reason}


def _indexes(tenant: str, member_id: str, record: Item) -> Item:
    """The member's timeline and the tenant's day (UTC), both by creation time."""
    sort = f"{record['createdAt']}#{record['messageId']}"
    day = datetime.fromisoformat(record["createdAt"]).astimezone(UTC).date().isoformat()
    return {
        "GSI1PK": keys.member_messages(tenant, member_id),
        "GSI1SK": sort,
        "GSI2PK": keys.messages_of_day(tenant, day),
        "GSI2SK": sort,
    }


def _recipient(channel: str, profile: Item, settings: MessageSettingsInput) -> tuple[str | None, str]:
    """Whom the channel reaches, or why nobody."""
    if channel == "sms":
        phone = profile.get("phone")
        return (e164(phone, settings.sms_country_code), "") if phone else (None, "noPhone")
    if channel == "email":
        if not settings.email_from:
            return None, "noEmailSender"
        return (profile["email"], "") if profile.get("email") else (None, "noEmail")
    return (settings.webhook.url, "") if settings.webhook else (None, "noWebhook")


def _values(request: MessageRequest, program: ProgramConfig, profile: Item, member: list[Item]) -> dict[str, Any]:
    """The variables a template may name: the member's and the program's, then the occasion's."""
    tier = (profile.get("tier") or {}).get("code")
    values: dict[str, Any] = {
        "memberName": profile.get("name"),
        "programName": program.program.name,
        "tierName": program.tiers[tier].name if tier in program.tiers else tier,
    }
    group = request.point_group_code
    if group:
        account = next((i for i in member if i["SK"] == keys.account_sk(group)), None)
        values |= {"balance": int(account["available"]) if account else 0, "pointGroupName": program.group_name(group)}
    return values | {k: v for k, v in request.values.items() if v is not None}


def message_service(table: Table | None = None, clock: Clock | None = None) -> MessageService:
    from loyalty.services.messages.settings import message_settings_service

    table = table or Table()
    clock = clock or SystemClock()
    return MessageService(table, ProgramLoader(ConfigRepository(table)), message_settings_service(table, clock), clock)
