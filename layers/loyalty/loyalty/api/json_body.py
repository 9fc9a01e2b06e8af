"""How a request body is read as JSON, stricter than the json module: a key given twice is refused (so
`{"points": -1000, "points": 1}` cannot mean what one reader takes and another does not), and so is a body
nested deeper than any request of this API needs (a 2 KB body nested 1,000 levels made the parser raise a
RecursionError, a 500). Both are malformed JSON to the caller: 400 MALFORMED_JSON, with why."""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32  # the deepest request (a coupon rule's validity inside its rule) is 4


def strict_loads(body: str) -> Any:
    try:
        value = json.loads(body, object_pairs_hook=_refuse_duplicates)
    except RecursionError:
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", body, 0) from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:  # a duplicate key, from the hook
        raise json.JSONDecodeError(str(error), body, 0) from None
    if _depth(value) > MAX_DEPTH:
        raise json.JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", body, 0)
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key!r} is given twice")
        found[key] = value
    return found


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest, without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        current, depth = pending.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            children = current.values() if isinstance(current, dict) else current
            pending.extend((child, depth + 1) for child in children)
    return deepest
