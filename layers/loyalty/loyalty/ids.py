"""ULIDs: sortable by creation time, so ids double as a stable order in listings."""

from __future__ import annotations

import os
import threading

from loyalty.clock import SystemClock

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_bound(moment_ms: int, upper: bool) -> str:
    """The smallest (or largest) ULID of a millisecond: bounds for time ranges over ULID keys."""
    low = new_ulid(moment_ms)[:10]
    return low + ("Z" * 16 if upper else "0" * 16)


_last = [0, 0]  # the last (millisecond, random part) this process issued
_lock = threading.Lock()


def new_ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits. Within one process, ids of the
    same millisecond increase (the random part of the previous one plus one), so two records written in a
    row sort in the order they were written (the ULID spec's monotonic generation)."""
    if now_ms is not None:
        return _encode((now_ms << 80) | int.from_bytes(os.urandom(10), "big"))
    with _lock:
        timestamp = int(SystemClock().now().timestamp() * 1000)  # the moved clock's, on the local stack
        if timestamp <= _last[0] and _last[1] + 1 < 1 << 80:
            timestamp, random = _last[0], _last[1] + 1
        else:
            random = int.from_bytes(os.urandom(10), "big")
        _last[0], _last[1] = timestamp, random
    return _encode((timestamp << 80) | random)


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))
