"""Personal data, declared once (D-123): which of a member's stored fields are personal and how a record shows
each one masked, what is stored beside them, and which operator text about a member is free text.

Erasure removes exactly these, change records and lists mask them, transfer records and logs leave them out.
A field added to the member's models must be named here, as personal or as not (`NOT_PERSONAL`): a unit
test walks the models, so a new field cannot be forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def mask_phone(phone: str | None) -> str | None:
    """138****8000: what a record shows of a member's phone (the first 3 and last 4 digits)."""
    if not phone:
        return None
    return phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:] if len(phone) > 7 else "*" * len(phone)


def _email(value: Any) -> str:
    local, _, domain = str(value).partition("@")
    return f"{local[:1]}***@{domain}"


def _initial(value: Any) -> str:
    return str(value)[:1] + "*"


def _address(value: Any) -> dict[str, Any]:
    return {k: ("***" if k == "line" else v) for k, v in dict(value).items()}


# Each personal field of the stored profile (its attribute name) and its mask. Every mask is idempotent, so
# a masked value masked again is unchanged (migration 006 re-masks old change records with it).
PERSONAL: Mapping[str, Callable[[Any], Any]] = {
    "phone": mask_phone,
    "name": _initial,
    "nickname": _initial,
    "email": _email,
    "birthday": lambda value: "****" + str(value)[4:],  # the year hidden
    "gender": lambda value: "*",
    "address": _address,  # the street line hidden
    "avatarUrl": lambda value: "***",
}

# Stored beside a personal field and derived from it: erased with it.
DERIVED = ("nameKey",)

# What an operator writes about a member in their own words (a note's comment, the reason of a freeze or a
# cancellation): it may say anything about the person, so erasure blanks it.
FREE_TEXT = ("comment", "reason", "statusReason")

# The member's model fields that are not personal: ids, the program's state of the member, consent and
# operator flags. The card number is the account's number, not the person's (D-123): an erased member's
# points stay reachable by it.
NOT_PERSONAL = frozenset(
    {
        "id",
        "memberId",
        "programCode",
        "status",
        "version",
        "cardNo",
        "marketingOptIn",
        "marketingConsentAt",
        "marketingConsentChannel",
        "employee",
        "testData",
        "homeStoreCode",
        "storeCode",
        "metrics",
        "registeredAt",
        "registrationChannel",
        "registrationStoreCode",
        "tier",
        "tierProgress",
        "tierCode",
        "accounts",
        "identities",  # bound channel accounts: erasure unbinds them (D-123)
        "identity",
        "tags",
        "channel",
    }
)

ERASED_ATTRIBUTES = (*PERSONAL, *DERIVED, "statusReason")  # what erasure removes from the profile


def masked(field: str, value: Any) -> Any:
    """How a record shows a value: a personal field masked (138****8000, z***@example.com, 张*, a birthday's
    year hidden, the street line hidden), the rest as it is."""
    if value is None or field not in PERSONAL:
        return value
    return PERSONAL[field](value)


def redacted(value: Any) -> Any:
    """A value for a log line: personal fields and free text masked wherever they sit in it."""
    if isinstance(value, Mapping):
        return {k: "***" if k in FREE_TEXT else masked(k, redacted(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value
