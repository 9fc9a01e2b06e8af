"""Path and header parameters that several route modules share. Here, rather than in one of those modules,
so a function imports the annotation and not another function's routes and services (cold start)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"

MemberId = Annotated[str, Path(pattern=ULID_PATTERN, description="The member's ULID")]
CouponCode = Annotated[str, Path(pattern=r"^[0-9]{16}$", description="券码")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="idempotency-key", max_length=200, description="Retries with the same key get the first answer"),
]
# Every list pages the same way: at most `limit` items, and `nextCursor` while there are more (D-113).
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=500)]
