"""Every CSV the product writes goes through `csv_text`: a cell that a spreadsheet would read as a formula
(starting with = + - @, or a tab or carriage return before one) is written with a leading apostrophe, so an
operator opening a report cannot run what a member or a channel typed (CSV injection, issue 25)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: list[str], rows: Iterable[Iterable[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return out.getvalue()
