"""Time is an argument: services take a Clock so tests can move it; domain code never reads the time.

The system clock can be moved forward in one process, by the local stack only (`POST /_local/clock`, D-108),
so that a brand tries a year of its program in minutes: every function and schedule of the stack reads the
time through SystemClock (and ULIDs take their milliseconds from it), so they all see the same moved time.
Nothing on AWS moves it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


_lock = threading.Lock()
_offset = [timedelta(0)]  # how far this process's clock runs ahead of the real time


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC) + _offset[0]


def offset() -> timedelta:
    """How far the system clock has been moved ahead (zero unless the local stack moved it)."""
    return _offset[0]


def move_to(moment: datetime) -> datetime:
    """Move this process's clock to `moment` (aware), never backwards: what was written at a later time
    would otherwise come before what is written next (ULIDs, ledgers, sort keys). Returns the new time."""
    if moment.tzinfo is None:
        raise ValueError("the time needs an offset")
    with _lock:
        shift = moment - datetime.now(UTC)
        if shift < _offset[0]:
            raise ValueError("the clock moves forward only")
        _offset[0] = shift
    return SystemClock().now()


def advance(by: timedelta) -> datetime:
    """Move this process's clock forward by `by`; returns the new time."""
    if by < timedelta(0):
        raise ValueError("the clock moves forward only")
    with _lock:
        _offset[0] += by
    return SystemClock().now()


def reset() -> None:
    """The real time again: for tests, which each start from it."""
    with _lock:
        _offset[0] = timedelta(0)


class FixedClock:
    """A clock for tests: it stays where it is put until moved."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at
