"""Daily notifications (D-107): points that expire in N days, coupons that expire in N days, birthdays. Each
reads an index the core already keeps (a program's open lots and coupons by shard, sorted by the day they
end: the day's range of each shard; its members by birthday), a page per queue message, so a day costs what
falls due, never the member count.

Once a program's day reaches the morning (the end of its quiet hours, 09:00 without them), the schedule
queues that day's pages once (a program at a time, services/program_jobs.py). A page turns its entries into
message requests, keyed by what they are about (the member and the expiry day, the coupon, the member and
the year), queues them, and queues the page after it: a page read twice asks for the same messages, which
are sent once.

Points: one message per member and day with the total of their open lots of the point group, although a
member's lots may straddle two pages (the page carries the member it ended on to the next).
"""

from __future__ import annotations

import calendar
import json
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from loyalty.domain.messages import MessageSettingsInput
from loyalty.observability import logger
from loyalty.services.messages.sending import MessageRequest, MessageService
from loyalty.services.program_jobs import JobMark, Progress, next_local
from loyalty.services.queues import send_all
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.table import Item, TransactionCancelled, put

PAGE = 500
MORNING = time(9, 0)  # when a program without quiet hours is told about its day


def _shards(tenant: str, program_code: str, kind: str) -> list[str]:
    """The partitions of a program's index of what ends by the day (keys.ends_index), one per shard."""
    return [keys.ends_index(tenant, program_code, kind, shard) for shard in range(keys.EXPIRY_SHARDS)]


def _morning(settings: MessageSettingsInput) -> time:
    """When a program's day is told: the end of its quiet hours, 09:00 without them."""
    return settings.quiet_hours.end if settings.quiet_hours else MORNING


@dataclass(frozen=True)
class NotificationPage:
    tenant: str
    program: str
    kind: str  # pointsExpiring, couponExpiring, birthday
    day: str  # the day the index is read for: the expiry day, or the birthday
    partition: str
    low: str | None = None  # a sort-key prefix (the day the lots or coupons end; birthdays: the day of the month)
    start: dict[str, Any] | None = None
    carry: dict[str, Any] | None = field(default=None)  # {memberId, points}: a member the last page ended on

    def message(self) -> str:
        return json.dumps({"notificationPage": asdict(self)})

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> NotificationPage:
        return cls(**body["notificationPage"])


@dataclass
class DailyNotifications:
    messages: MessageService

    name = "notifications"

    def queue_url(self) -> str:
        return get_settings().message_queue_url

    def run(self, tenant: str, program_code: str, mark: JobMark) -> Progress:
        """The schedule's run for one program (services/program_jobs.py): its day's pages, once, from its
        morning; due again at the next morning (or this one, when it has not come yet), or when its settings
        change."""
        program = self.messages.programs.load(tenant, program_code)
        settings = self.messages.settings.load(tenant, program_code)
        morning = _morning(settings)
        now = self.messages.clock.now().astimezone(program.zone)
        if now.time().replace(tzinfo=None) < morning:
            return Progress(mark.through, datetime.combine(now.date(), morning, program.zone))
        self._plan(tenant, program_code, settings, now)  # once a day: the day's marker (settings changed: again)
        return Progress(now.date(), next_local(now, program.zone, morning))

    def plan(self, tenant: str, program_code: str, today: date | None = None) -> int:
        """Queue the pages of `today` (default: the program's today, once, from its morning); returns how many."""
        program = self.messages.programs.load(tenant, program_code)
        settings = self.messages.settings.load(tenant, program_code)
        now = self.messages.clock.now().astimezone(program.zone)
        if today is None and now.time().replace(tzinfo=None) < _morning(settings):
            return 0
        return self._plan(tenant, program_code, settings, now, today)

    def _plan(
        self, tenant: str, program_code: str, settings: MessageSettingsInput, now: datetime, day: date | None = None
    ) -> int:
        """The pages of `day`, or of today once (a marker, so a second run of the day plans nothing)."""
        notifications = settings.notifications
        on = [n for n in (notifications.points_expiring, notifications.coupon_expiring, notifications.birthday) if n]
        if not any(n.enabled for n in on):
            return 0
        marker: Item | None = None
        today = day or now.date()
        if day is None:
            marker = {
                "PK": keys.message_days(tenant, program_code),
                "SK": today.isoformat(),
                "expiration": int((now + timedelta(days=7)).timestamp()),  # needed for the day only
            }
            if self.messages.table.get(marker["PK"], marker["SK"], consistent=False) is not None:
                return 0  # an earlier run planned this day
        pages: list[NotificationPage] = []
        expiring = notifications.points_expiring
        if expiring and expiring.enabled:
            due = (today + timedelta(days=expiring.days_ahead)).isoformat()
            pages += [
                NotificationPage(tenant, program_code, "pointsExpiring", due, index, keys.on_day(due))
                for index in _shards(tenant, program_code, "LOT")
            ]
        coupons = notifications.coupon_expiring
        if coupons and coupons.enabled:
            due = (today + timedelta(days=coupons.days_ahead)).isoformat()
            pages += [
                NotificationPage(tenant, program_code, "couponExpiring", due, index, keys.on_day(due))
                for index in _shards(tenant, program_code, "COUPON")
            ]
        if notifications.birthday and notifications.birthday.enabled:
            partition = keys.birthdays(tenant, program_code, today.month)
            days = [today.day]
            if today.month == 2 and today.day == 28 and not calendar.isleap(today.year):
                days.append(29)  # born on 29 February: told on the 28th when the year has no 29th
            pages += [
                NotificationPage(tenant, program_code, "birthday", today.isoformat(), partition, f"{d:02d}#")
                for d in days
            ]
        send_all(get_settings().message_queue_url, [page.message() for page in pages])
        if marker is not None:  # marked once its pages are queued: a failure before this is retried
            with suppress(TransactionCancelled):
                self.messages.table.transact([put(marker, "attribute_not_exists(PK)")])
        logger.info("notification pages planned", extra={"program": program_code, "pages": len(pages)})
        return len(pages)

    def run_page(self, page: NotificationPage) -> int:
        """The page's message requests, and the next page, to the queue; returns how many requests."""
        notifications = self.messages.settings.load(page.tenant, page.program).notifications
        prefix = ("GSI1SK", page.low) if page.low else None
        entries, more = self.messages.table.query_index(
            "GSI1", page.partition, limit=PAGE, start=page.start, sk_prefix=prefix
        )
        carry: dict[str, Any] | None = None
        requests: list[MessageRequest] = []
        if page.kind == "pointsExpiring" and notifications.points_expiring:
            requests, carry = self._points(page, notifications.points_expiring, entries, more is not None)
        elif page.kind == "couponExpiring" and notifications.coupon_expiring:
            template = notifications.coupon_expiring.template_code
            requests = [self._coupon(page, template, entry) for entry in entries if entry.get("status") == "issued"]
        elif page.kind == "birthday" and notifications.birthday:
            year = page.day[:4]
            template = notifications.birthday.template_code
            requests = [
                MessageRequest(
                    page.tenant,
                    page.program,
                    template,
                    entry["memberId"],
                    f"birthday#{page.program}#{entry['memberId']}#{year}",
                    {},
                    {"notification": "birthday"},
                )
                for entry in entries
            ]
        bodies = [request.body() for request in requests]
        if more:
            bodies.append(NotificationPage(**{**asdict(page), "start": more, "carry": carry}).message())
        send_all(get_settings().message_queue_url, bodies)
        return len(requests)

    def _points(
        self, page: NotificationPage, notification: Any, entries: list[Item], more: bool
    ) -> tuple[list[MessageRequest], dict[str, Any] | None]:
        """Open lots sum per member; the member the page ends on waits for the next page unless it is the last."""
        group = notification.point_group_code
        totals: dict[str, int] = {}
        if page.carry:
            totals[page.carry["memberId"]] = int(page.carry["points"])
        for lot in entries:
            if lot.get("pointGroupCode") == group and int(lot.get("remaining", 0)) > 0:
                totals[lot["memberId"]] = totals.get(lot["memberId"], 0) + int(lot["remaining"])
        carry = None
        if more and entries:
            last = entries[-1]["memberId"]
            carry = {"memberId": last, "points": totals.pop(last, 0)}
        requests = [
            MessageRequest(
                page.tenant,
                page.program,
                notification.template_code,
                member_id,
                f"pointsExpiring#{page.program}#{group}#{page.day}#{member_id}",
                {"points": points, "expiryDate": page.day},
                {"notification": "pointsExpiring"},
                group,
            )
            for member_id, points in totals.items()
            if points > 0
        ]
        return requests, carry

    @staticmethod
    def _coupon(page: NotificationPage, template: str, coupon: Item) -> MessageRequest:
        return MessageRequest(
            page.tenant,
            page.program,
            template,
            coupon["ownerId"],
            f"couponExpiring#{coupon['code']}#{page.day}",
            {"couponName": coupon.get("ruleName"), "couponCode": coupon["code"], "expiryDate": page.day},
            {"notification": "couponExpiring"},
        )
