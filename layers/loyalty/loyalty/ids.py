"""ULIDs: sortable by creation time, so ids double as a stable order in listings."""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_bound(moment_ms: int, upper: bool) -> str:
    """The smallest (or largest) ULID of a millisecond: bounds for time ranges over ULID keys."""
    low = new_ulid(moment_ms)[:10]
    return low + ("Z" * 16 if upper else "0" * 16)


def new_ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits."""
    timestamp = int(time.time() * 1000) if now_ms is None else now_ms
    value = (timestamp << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, index = divmod(value, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))
