"""审批: what operators submit to a named approver (coupon rules, campaigns, marketing message templates)
moves through its states one
conditional transaction at a time, each with its log entry, so two operators acting at once cannot both win.

The rules are the same for everything approved: the approver is named on submission and is not the
submitter; only that approver may approve or reject (403 for anyone else); a rejection says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field

from loyalty.domain.errors import Forbidden, InvalidInput, NotFound
from loyalty.domain.validity import CamelModel, View
from loyalty.ids import new_ulid
from loyalty.services.auth import active_operator
from loyalty.store import keys
from loyalty.store.table import Item, Page, Table, TransactionCancelled, put, update


class Submission(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"approver": "01JDQ5W8C4M7Q3V2X9Z6K1B0TA"}]
    approver: str = Field(min_length=1, max_length=64, description="The operator key id of the approver")


class Decision(CamelModel):
    EXAMPLES: ClassVar[list[dict[str, Any]]] = [{"comment": "同意上架"}]
    comment: str = Field(default="", max_length=500, description="审核意见; required when rejecting")


class Approvable(View):
    """What a view of an approved subject shows of its approval (its own status is the subject's)."""

    approval_status: Literal["none", "pending", "approved", "rejected"]
    approver: str | None = None
    rejection_comment: str | None = None


@dataclass(frozen=True)
class LogEntryDraft:
    action: str
    by: str
    comment: str | None = None
    quantity: int | None = None
    cost: Decimal | None = None

    def item(self, now: datetime) -> Item:
        entry: dict[str, Any] = {"at": now.isoformat(), "by": self.by, "action": self.action, "comment": self.comment}
        if self.quantity is not None:
            entry.update(quantity=self.quantity, cost=self.cost)
        return {k: v for k, v in entry.items() if v not in (None, "")}


def check_submission(submission: Submission, by: str) -> None:
    if submission.approver == by:
        raise InvalidInput(
            "the approver must be someone other than the submitter", code="SELF_APPROVAL", field="approver"
        )


def check_approver(subject: Item, by: str) -> None:
    if subject.get("status") == "pending" and subject.get("approver") != by:
        raise Forbidden("only the approver named on submission may decide", code="NOT_THE_APPROVER")


def check_rejection(decision: Decision, noun: str) -> None:
    if not decision.comment:
        raise InvalidInput(f"say why the {noun} is rejected", code="COMMENT_REQUIRED", field="comment")


@dataclass(frozen=True)
class Move:
    """Submit, approve or reject as the arguments of a subject's `step` (`**move.as_step()`): the same three
    moves for every subject; what approving also does (listing a rule, scheduling a campaign) is the
    subject's."""

    expected: str
    expression: str
    values: dict[str, Any]
    entry: LogEntryDraft
    approver: str | None = None

    def as_step(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "expression": self.expression,
            "values": self.values,
            "entry": self.entry,
            "approver": self.approver,
        }


def submitting(table: Table, tenant: str, submission: Submission, by: str) -> Move:
    """提交审批: a draft to the approver it names, who is not the submitter and is an active operator key of
    the tenant (anyone else could never approve it, and the subject would stay pending for good)."""
    check_submission(submission, by)
    if not active_operator(table, tenant, submission.approver):
        raise InvalidInput(
            "the approver is no active operator key of this tenant", code="UNKNOWN_APPROVER", field="approver"
        )
    return Move(
        "draft",
        "SET #status = :pending, approvalStatus = :pending, approver = :approver, submittedBy = :by"
        " REMOVE rejectionComment",
        {":pending": "pending", ":approver": submission.approver, ":by": by},
        LogEntryDraft("submitted", by, submission.approver),
    )


def approving(
    subject: Item, decision: Decision, by: str, status: str, sets: str = "", values: dict[str, Any] | None = None
) -> Move:
    """审批通过, by the approver named: pending becomes `status`, with the subject's own `sets`."""
    check_approver(subject, by)
    return Move(
        "pending",
        f"SET #status = :approvedStatus, approvalStatus = :approved{sets}",
        {":approvedStatus": status, ":approved": "approved", **(values or {})},
        LogEntryDraft("approved", by, decision.comment),
        approver=by,
    )


def rejecting(subject: Item, decision: Decision, by: str, noun: str) -> Move:
    """驳回, by the approver named and saying why: back to draft."""
    check_rejection(decision, noun)
    check_approver(subject, by)
    return Move(
        "pending",
        "SET #status = :draft, approvalStatus = :rejected, rejectionComment = :comment",
        {":draft": "draft", ":rejected": "rejected", ":comment": decision.comment},
        LogEntryDraft("rejected", by, decision.comment),
        approver=by,
    )


def step(
    table: Table,
    now: datetime,
    key: tuple[str, str],
    expected: str | Sequence[str],
    expression: str,
    values: dict[str, Any],
    entry: LogEntryDraft,
    refused: Callable[[Item], Exception],
    not_found: Callable[[], NotFound],
    extra: list[dict] | None = None,
    approver: str | None = None,
) -> None:
    """Move the subject at `key` from `expected` (a status or several) by `expression`, with its log entry
    and `extra`, in one transaction. `approver`: only if that operator is the one named, and not the
    submitter. `refused(found)` is the error for a subject in another status."""
    pk, sk = key
    statuses = [expected] if isinstance(expected, str) else list(expected)
    names = [f":expected{i}" for i in range(len(statuses))]
    condition = f"#status IN ({', '.join(names)})"
    values = {**values, **dict(zip(names, statuses, strict=True)), ":one": 1}
    if approver:
        condition += " AND approver = :approverNow AND submittedBy <> :approverNow"
        values[":approverNow"] = approver
    operations = [
        update(pk, sk, f"{expression} ADD version :one", values, condition, {"#status": "status"}),
        put({"PK": pk, "SK": keys.log_sk(new_ulid()), **entry.item(now)}),
        *(extra or []),
    ]
    try:
        table.transact(operations)
    except TransactionCancelled as cancelled:
        if cancelled.failed(0):
            found = cancelled.items[0]
            if found is None:
                raise not_found() from None
            raise refused(found) from None
        raise


def log_page(table: Table, pk: str, limit: int, cursor: str | None) -> Page:
    """A page of the subject's log entries, oldest first (they share its partition)."""
    return table.query_prefix(pk, keys.log_sk(""), limit=limit, cursor=cursor)
