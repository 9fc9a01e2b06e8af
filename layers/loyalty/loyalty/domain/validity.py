"""Validity periods shared by tiers, point lots and coupons: when does something that starts now end?

Both shapes end at the last instant of a day in the program's time zone (docs/decisions.md, D-010):
- fixed period (固定周期): the end of the day X days after the start;
- fixed date (固定日期): the end of month/day in the year X years after the start (Feb 29 -> Feb 28).
"""

from __future__ import annotations

import calendar
import unicodedata
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Self, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import InitErrorDetails, PydanticCustomError

from loyalty.domain.errors import InvalidInput

END_OF_DAY = time(23, 59, 59, 999999)


# Every control and format character (Unicode Cc and Cf, Python 3.11's Unicode 14.0), as inclusive ranges:
# what `_plain_text` refuses, written out so that building the API document's patterns costs nothing at
# import (scanning all 1.1 million code points took 80 ms of every cold start). A unit test compares it
# with `unicodedata`, so a Python with another Unicode version fails the build until it is updated.
CONTROL_AND_FORMAT = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD),
    (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip


@cache
def refused_characters(allowed: str) -> str:
    """A regex character class of every control and format character but `allowed`, as ranges."""
    refused = [c for low, high in CONTROL_AND_FORMAT for c in range(low, high + 1) if chr(c) not in allowed]
    ranges: list[tuple[int, int]] = []
    for code in refused:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))

    def char(code: int) -> str:  # \uXXXX in the BMP (every regex dialect), the character itself above it
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)


@cache
def text_pattern(multiline: bool) -> str:
    return f"^[^{refused_characters(chr(13) + chr(10) + chr(9) if multiline else '')}]*$"


def _document_strings(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Say in the API document what the model enforces beyond its fields: `str_min_length` (pydantic leaves
    config constraints out) and, on text without a pattern of its own, no control or format characters; and
    give the examples a request model names in `EXAMPLES` (schemathesis sends each one)."""
    fields = {field.alias or name: (name, field) for name, field in model.model_fields.items()}
    for wire, documented in schema.get("properties", {}).items():
        name, field = fields.get(wire, (wire, None))
        decimal = _decimal_shape(field)
        if wire == "type" and "const" in documented and wire not in schema.setdefault("required", []):
            schema["required"].append(wire)  # a union's tag: without it, no variant is chosen
        for option in [documented, *documented.get("anyOf", []), documented.get("items", {})]:
            if option.get("type") == "string" and decimal:  # a decimal sent as a JSON string
                option["pattern"] = decimal[0]
            elif option.get("type") == "string" and not {"format", "enum", "const"} & option.keys():
                option.setdefault("minLength", 1)
                option.setdefault("pattern", text_pattern(name in MULTILINE))
            if option.get("type") == "number" and decimal:  # a decimal sent as a JSON number
                _, whole, places = decimal
                option["multipleOf"] = float(Decimal(1).scaleb(-places))
                option.setdefault("maximum", float(Decimal(10) ** whole - Decimal(1).scaleb(-places)))
    if examples := model.__dict__.get("EXAMPLES"):  # a request body's examples, the model's own (not inherited)
        schema["examples"] = examples


def _decimal_shape(field: Any) -> tuple[str, int, int] | None:
    """For a Decimal field: the pattern of its string form, its digits before and after the point. Plain
    digits only (no exponent, no spaces), within max_digits and decimal_places, positive where it must be."""
    annotation = getattr(field, "annotation", None)
    constraints = list(getattr(field, "metadata", []))
    for argument in get_args(annotation):  # Money | None: the constraints sit inside the Annotated alias
        if get_origin(argument) is Annotated and get_args(argument)[0] is Decimal:
            annotation = Decimal
            for extra in get_args(argument)[1:]:
                constraints += [extra, *getattr(extra, "metadata", [])]
    if Decimal not in (annotation, *get_args(annotation)):
        return None
    whole, places, sign, positive = 28, 28, "-?", False
    for constraint in constraints:
        total, decimals = getattr(constraint, "max_digits", None), getattr(constraint, "decimal_places", None)
        if total is not None and decimals is not None:
            whole, places = total - decimals, decimals
        if getattr(constraint, "ge", None) is not None and constraint.ge >= 0:
            sign = ""
        if getattr(constraint, "gt", None) is not None and constraint.gt >= 0:
            sign, positive = "", True
    nonzero = "(?=[0.]*[1-9])" if positive else ""
    fraction = f"(\\.[0-9]{{1,{places}}})?" if places else ""
    return f"^{sign}{nonzero}[0-9]{{1,{whole}}}{fraction}$", whole, places


def _takes_integers(annotation: Any) -> bool:
    """An int field, optional or not, or a list of ints (booleans are ints to Python: not these)."""
    if annotation is int:
        return True
    origin, arguments = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _takes_integers(arguments[0])
    if origin in (Union, UnionType, list):
        return any(_takes_integers(argument) for argument in arguments if argument is not type(None))
    return False


def _lax_integer(value: Any) -> bool:
    """What pydantic would turn into an int but a client should not send as one: "300", true."""
    if isinstance(value, list):
        return any(_lax_integer(item) for item in value)
    return isinstance(value, bool | str)


MULTILINE = frozenset({"description", "usage_text", "reason", "comment", "csv", "data"})  # text that may break lines


def _plain_text(value: Any, multiline: bool) -> Any:
    """Text as people type it: NFC, and no control or format characters (NUL, ESC, CR, bidi overrides,
    zero-width spaces), which display, search and uniqueness checks treat unpredictably; free text and CSV
    keep line breaks and tabs."""
    if isinstance(value, list):
        return [_plain_text(item, multiline) for item in value]
    if not isinstance(value, str):
        return value
    allowed = "\r\n\t" if multiline else ""
    for character in value:
        if unicodedata.category(character) in ("Cc", "Cf") and character not in allowed:
            raise ValueError(f"control and format characters are not allowed (U+{ord(character):04X})")
    return unicodedata.normalize("NFC", value)


class CamelModel(BaseModel):
    """Base of every API-facing model: camelCase on the wire, unknown fields refused, no empty strings (an
    empty text says nothing that leaving the field out does not; D-043), and integers only as JSON numbers:
    `"points": true` or `"points": "300"` is refused, not read as 1 or 300 (D-058)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        str_min_length=1,
        json_schema_extra=_document_strings,
        defer_build=True,  # built when first used, not at import: a function builds only what it uses (D-057)
    )

    checks_input: ClassVar[bool] = True  # requests are checked; views (what was stored) are not

    @model_validator(mode="before")
    @classmethod
    def _plain_input(cls, data: Any) -> Any:
        if not cls.checks_input or not isinstance(data, dict):
            return data
        fields = _wire_fields(cls)
        checked = {}
        for key, value in data.items():
            name, integers = fields.get(key, (key, False))
            if integers and _lax_integer(value):
                raise invalid_field(
                    cls.__name__, key, "an integer is expected: a JSON number, not a string or true/false", value
                )
            try:
                checked[key] = _plain_text(value, name in MULTILINE)
            except ValueError as error:
                raise invalid_field(cls.__name__, key, str(error), value) from None
        return checked

    @classmethod
    def stored(cls, data: Any) -> Self:
        """A model read back from the table: as it was written, without the rules added for requests since
        (D-127), so data accepted before a new rule still loads (a rule for requests: `for_requests(info)`)."""
        return cls.model_validate(data, context=STORED)

    @model_validator(mode="after")
    def _bounded_dates(self, info: ValidationInfo) -> Any:
        """Every date and time a request gives lies in BUSINESS_DAYS (a birthday in BIRTHDAYS): a window ending
        9999-12-31 or a sweep of 0001-01-01 is 422 at its field, never a crash of date arithmetic later."""
        model = type(self)
        if not model.checks_input or not for_requests(info):
            return self
        for name, field in model.model_fields.items():
            low, high = BIRTHDAYS if name in BIRTH_FIELDS else BUSINESS_DAYS
            for value in _dates(getattr(self, name)):
                day = value.date() if isinstance(value, datetime) else value
                if not low <= day <= high:
                    message = f"a date from {low} to {high}"
                    raise invalid_field(model.__name__, field.alias or name, message, value)
        return self


STORED = {"stored": True}  # the validation context of what is read back from the table


def for_requests(info: ValidationInfo) -> bool:
    """Whether a rule that only requests must meet applies: not to what was stored before it existed."""
    return not (info.context or {}).get("stored")


# The dates and times the API takes (D-127): business dates of this century, birthdays of the last 130
# years (the member service also refuses one in the future). Wider values broke date arithmetic downstream.
BUSINESS_DAYS = (date(2000, 1, 1), date(2099, 12, 31))
BIRTHDAYS = (date(1890, 1, 1), date(2099, 12, 31))
BIRTH_FIELDS = frozenset({"birthday"})


def _business_day(value: Any) -> Any:
    day = value.date() if isinstance(value, datetime) else value
    if not BUSINESS_DAYS[0] <= day <= BUSINESS_DAYS[1]:
        raise ValueError(f"a date from {BUSINESS_DAYS[0]} to {BUSINESS_DAYS[1]}")
    return value


# For query parameters (request bodies are bounded by CamelModel's validator)
BusinessDay = Annotated[date, AfterValidator(_business_day)]
BusinessTime = Annotated[datetime, AfterValidator(_business_day)]


def _dates(value: Any) -> list[date]:
    """The dates and times in a field's value (itself, or the items of a list)."""
    if isinstance(value, date):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, date)]
    return []


@cache
def _wire_fields(model: type[BaseModel]) -> dict[str, tuple[str, bool]]:
    """Each field under its wire name and its Python name: (Python name, takes integers). Once per model."""
    fields = {}
    for name, field in model.model_fields.items():
        entry = (name, _takes_integers(field.annotation))
        fields[name] = entry
        if field.alias:
            fields[field.alias] = entry
    return fields


class View(CamelModel):
    """Base of response shapes built from stored items: attributes the API does not show are dropped, and
    what they embed of a request's shape is read as stored (no rule added for requests since applies)."""

    checks_input: ClassVar[bool] = False

    @classmethod
    def model_validate(cls, obj: Any, *, context: Any = None, **options: Any) -> Self:  # type: ignore[override]
        return super().model_validate(obj, context={**STORED, **(context or {})}, **options)

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        str_min_length=0,
        json_schema_extra=None,
        defer_build=True,
    )


CLOCK_SKEW = timedelta(minutes=5)  # a channel's clock may run this far ahead of ours


def within_window(moment: datetime, now: datetime, past: timedelta, field: str) -> datetime:
    """A business time (a sale, a return, a behaviour, a till's check) that is neither older than `past`
    nor ahead of now by more than the clock skew; else 422 TIME_OUT_OF_RANGE on `field` (D-059). Also what
    keeps date arithmetic on it (an expiry 365 days later) far from datetime's limits."""
    if not now - past <= moment <= now + CLOCK_SKEW:
        raise InvalidInput(
            f"{field} must lie within the last {past.days} days and not in the future",
            code="TIME_OUT_OF_RANGE",
            field=field,
        )
    return moment


def invalid_field(model: str, field: str, message: str, value: object) -> ValidationError:
    """A rule across fields, reported on the one field at fault (its wire name), so clients get a pointer."""
    error = InitErrorDetails(type=PydanticCustomError("value_error", message), loc=(field,), input=value)
    return ValidationError.from_exception_data(model, [error])


class NoExpiry(CamelModel):
    type: Literal["none"] = "none"


class FixedPeriod(CamelModel):
    type: Literal["fixedPeriod"] = "fixedPeriod"
    days: int = Field(ge=1, le=36500, description="Valid until the end of the day this many days after the start")


class FixedDate(CamelModel):
    type: Literal["fixedDate"] = "fixedDate"
    years: int = Field(ge=0, le=100, description="0 = this year, 1 = next year, ...")
    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _real_day(self) -> FixedDate:
        if self.day > (29 if self.month == 2 else calendar.monthrange(2001, self.month)[1]):
            raise invalid_field("FixedDate", "day", f"month {self.month} has no day {self.day}", self.day)
        return self


Validity = Annotated[Union[NoExpiry, FixedPeriod, FixedDate], Field(discriminator="type")]
ExpiringValidity = Annotated[Union[FixedPeriod, FixedDate], Field(discriminator="type")]


def end_of_validity(validity: NoExpiry | FixedPeriod | FixedDate, start: datetime, zone: ZoneInfo) -> datetime | None:
    """The last instant of the validity that starts at `start` (aware), or None when it never ends."""
    local_start = start.astimezone(zone)
    if isinstance(validity, NoExpiry):
        return None
    if isinstance(validity, FixedPeriod):
        last_day = local_start.date() + timedelta(days=validity.days)
    else:
        year = local_start.year + validity.years
        last_day = date(year, validity.month, min(validity.day, calendar.monthrange(year, validity.month)[1]))
    return datetime.combine(last_day, END_OF_DAY, tzinfo=zone)
