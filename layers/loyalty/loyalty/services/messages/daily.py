"""Daily notifications (D-107): points that expire in N days, coupons that expire in N days, birthdays. Each
reads a day index the core already keeps (a program's expiring lots and open coupons by day and shard, its
members by birthday), a page per queue message, so a day costs what falls due, never the member count.

Once a program's day reaches the morning (the end of its quiet hours, 09:00 without them), the schedule
queues that day's pages once. A page turns its entries into message requests, keyed by what they are about
(the member and the expiry day, the coupon, the member and the year), queues them, and queues the page after
it: a page read twice asks for the same messages, which are sent once.

Points: one message per member and day with the total of their open lots of the point group, although a
member's lots may straddle two pages (the page carries the member it ended on to the next).
"""

from __future__ import annotations

import calendar
import json
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import date, time, timedelta
from typing import Any

from loyalty.observability import logger
from loyalty.services.messages.sending import MessageRequest, MessageService
from loyalty.services.sweeps import send_all
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.table import Item, TransactionCancelled, put

PAGE = 500
MORNING = time(9, 0)  # when a program without quiet hours is told about its day


@dataclass(frozen=True)
class NotificationPage:
    tenant: str
    program: str
    kind: str  # pointsExpiring, couponExpiring, birthday
    day: str  # the day the index is read for: the expiry day, or the birthday
    partition: str
    low: str | None = None  # a sort-key prefix (birthdays: the day of the month)
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

    def plan_all(self) -> int:
        """The schedule: each program's day, once, in its morning."""
        programs = ConfigRepository(self.messages.table).all_programs()
        return sum(self.plan(tenant, program) for tenant, program in programs)

    def plan(self, tenant: str, program_code: str, today: date | None = None) -> int:
        """Queue the pages of `today` (default: the program's today, once, from its morning); returns how many."""
        program = self.messages.programs.load(tenant, program_code)
        settings = self.messages.settings.load(tenant, program_code)
        notifications = settings.notifications
        on = [n for n in (notifications.points_expiring, notifications.coupon_expiring, notifications.birthday) if n]
        if not any(n.enabled for n in on):
            return 0
        now = self.messages.clock.now().astimezone(program.zone)
        marker: Item | None = None
        if today is None:
            morning = settings.quiet_hours.end if settings.quiet_hours else MORNING
            if now.time().replace(tzinfo=None) < morning:
                return 0
            today = now.date()
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
            buckets = [keys.expiry_bucket(tenant, program_code, due, s) for s in range(keys.EXPIRY_SHARDS)]
            pages += [NotificationPage(tenant, program_code, "pointsExpiring", due, b) for b in buckets]
        coupons = notifications.coupon_expiring
        if coupons and coupons.enabled:
            due = (today + timedelta(days=coupons.days_ahead)).isoformat()
            buckets = [keys.coupon_bucket(tenant, program_code, due, s) for s in range(keys.EXPIRY_SHARDS)]
            pages += [NotificationPage(tenant, program_code, "couponExpiring", due, b) for b in buckets]
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
