"""The template's schedules, fired on time (moto keeps schedules but never fires them), and on demand.

Supports what SAM schedules use: rate(N minute|minutes|hour|hours|day|days) and the six-field AWS cron
(minutes hours day-of-month month day-of-week year) with *, ?, lists, ranges, steps, L-less day names,
evaluated in the schedule's time zone. One-time schedules that the functions create through the Scheduler
API (`at(yyyy-mm-ddThh:mm:ss)`, a batch campaign's launch) are fired too, once, to their SQS target, then
deleted as ActionAfterCompletion DELETE says.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from infra.local.runtime import LocalFunction
from infra.local.template import ACCOUNT, REGION, ScheduleSource
from loyalty.clock import SystemClock
from loyalty.observability import logger

_DAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_MONTHS = {
    name: i
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}


def _field(spec: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """The values a cron field allows; None means any (* or ?)."""
    if spec in ("*", "?"):
        return None
    values: set[int] = set()
    for part in spec.upper().split(","):
        for name, number in (names or {}).items():
            part = part.replace(name, str(number))
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            start, end = map(int, part.split("-"))
        else:
            start = end = int(part)
            if step > 1:
                end = high
        values.update(range(start, end + 1, step))
    return values


class Cron:
    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError(f"an AWS cron has six fields: {expression!r}")
        self.minutes = _field(fields[0], 0, 59)
        self.hours = _field(fields[1], 0, 23)
        self.days = _field(fields[2], 1, 31)
        self.months = _field(fields[3], 1, 12, _MONTHS)
        self.weekdays = _field(fields[4], 1, 7, _DAYS)  # 1 = Sunday
        self.years = _field(fields[5], 1970, 2199)

    def matches(self, moment: datetime) -> bool:
        times = [(self.minutes, moment.minute), (self.hours, moment.hour)]
        return self._day_matches(moment.date()) and all(allowed is None or value in allowed for allowed, value in times)

    def fires_between(self, previous: datetime, now: datetime, zone: ZoneInfo) -> bool:
        """Is a minute of (previous, now] one of this cron's, in `zone`? Days that cannot match are skipped."""
        day, last = previous.astimezone(zone).date(), now.astimezone(zone).date()
        hours, minutes = sorted(self.hours or range(24)), sorted(self.minutes or range(60))
        while day <= last:
            if self._day_matches(day):
                for hour in hours:
                    for minute in minutes:
                        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                        if previous < moment <= now:
                            return True
            day += timedelta(days=1)
        return False

    def _day_matches(self, day: date) -> bool:
        weekday = (day.isoweekday() % 7) + 1
        checks = [(self.days, day.day), (self.months, day.month), (self.weekdays, weekday), (self.years, day.year)]
        return all(allowed is None or value in allowed for allowed, value in checks)


def due(expression: str, zone: str, previous: datetime, now: datetime) -> bool:
    """Did the schedule fire in (previous, now]? Times are aware. A gap of a year (the clock moved, D-108)
    costs a walk over its days, not its minutes, and a schedule due many times in it fires once."""
    rate = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    cron = re.fullmatch(r"cron\((.+)\)", expression)
    if rate:
        period = int(rate.group(1)) * {"minute": 1, "hour": 60, "day": 1440}[rate.group(2).rstrip("s")]
        if now - previous >= timedelta(minutes=period):
            return True
        minute = previous.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while minute <= now:
            if int(minute.timestamp() // 60) % period == 0:
                return True
            minute += timedelta(minutes=1)
        return False
    return cron is not None and Cron(cron.group(1)).fires_between(previous, now, ZoneInfo(zone))


def scheduled_event(source: ScheduleSource, at: datetime) -> dict[str, Any]:
    if source.input:
        return json.loads(source.input)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{source.name}"],
        "detail": {},
    }


def at_due(expression: str, zone: str, now: datetime) -> bool:
    """Is a one-time schedule's moment (`at(...)`, local time of `zone`) reached?"""
    moment = re.fullmatch(r"at\((.+)\)", expression)
    if moment is None:
        return False
    return datetime.fromisoformat(moment.group(1)).replace(tzinfo=ZoneInfo(zone or "UTC")) <= now


class OneTimeSchedules:
    """The `at(...)` schedules in the emulator's Scheduler, fired when due to their SQS targets."""

    def __init__(self, scheduler: Any, sqs: Any) -> None:
        self.scheduler, self.sqs = scheduler, sqs
        self.fired: set[tuple[str, str]] = set()

    def fire_due(self, now: datetime) -> int:
        fired = 0
        for summary in self.scheduler.list_schedules().get("Schedules", []):
            name, group = summary["Name"], summary.get("GroupName", "default")
            if (group, name) in self.fired:
                continue
            schedule = self.scheduler.get_schedule(Name=name, GroupName=group)
            expression = schedule.get("ScheduleExpression", "")
            if not expression.startswith("at(") or schedule.get("State") == "DISABLED":
                continue
            if not at_due(expression, schedule.get("ScheduleExpressionTimezone", "UTC"), now):
                continue
            target = schedule["Target"]
            if target["Arn"].startswith("arn:aws:sqs:"):
                url = self.sqs.get_queue_url(QueueName=target["Arn"].rsplit(":", 1)[1])["QueueUrl"]
                self.sqs.send_message(QueueUrl=url, MessageBody=target.get("Input", "{}"))
            self.fired.add((group, name))
            if schedule.get("ActionAfterCompletion") == "DELETE":
                self.scheduler.delete_schedule(Name=name, GroupName=group)
            fired += 1
        return fired


class Scheduler:
    def __init__(
        self,
        schedules: dict[str, tuple[ScheduleSource, LocalFunction]],
        tick_seconds: float = 5.0,
        one_time: OneTimeSchedules | None = None,
    ) -> None:
        self.schedules = schedules
        self.tick_seconds = tick_seconds
        self.one_time = one_time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def trigger(self, name: str) -> Any:
        """Fire one schedule now (the operator's `run now`)."""
        source, function = self.schedules[name]
        return function.invoke(scheduled_event(source, SystemClock().now()))

    def _run(self) -> None:
        clock = SystemClock()  # the stack's, which POST /_local/clock moves: what fell due in the jump fires
        previous = clock.now()
        while not self._stop.wait(self.tick_seconds):
            now = clock.now()
            for name, (source, _) in self.schedules.items():
                if source.enabled and due(source.expression, source.timezone, previous, now):
                    try:
                        self.trigger(name)
                    except Exception:
                        logger.exception("scheduled invocation failed", extra={"schedule": name})
            if self.one_time:
                try:
                    self.one_time.fire_due(now)
                except Exception:
                    logger.exception("one-time schedules failed")
            previous = now
