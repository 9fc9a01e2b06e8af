"""How an uploaded file's rows are read (issue 25): CSV through the csv module with its errors (a cell over its
131,072-character limit, a stray quote) answered as 422 `CSV_MALFORMED` naming the line, and JSON lines
through the request bodies' strict parser (duplicate keys, nesting deeper than 32 levels), each bad line
becoming that row's outcome, never a 500."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from loyalty.api.json_body import strict_loads
from loyalty.domain.errors import InvalidInput


def csv_records(text: str, field: str) -> tuple[list[str], Iterator[dict[str, str]]]:
    """The header's names and the rows (as csv.DictReader gives them) of a CSV upload; a file the csv module
    cannot read is 422 CSV_MALFORMED at `field`, with the line."""
    reader = csv.DictReader(io.StringIO(text.strip()))
    try:
        names = list(reader.fieldnames or [])
    except csv.Error as error:
        detail = f"line {reader.line_num + 1} cannot be read as CSV: {error}"
        raise InvalidInput(detail, code="CSV_MALFORMED", field=field) from None

    def rows() -> Iterator[dict[str, str]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                detail = f"line {reader.line_num + 1} cannot be read as CSV: {error}"  # the line being read
                raise InvalidInput(detail, code="CSV_MALFORMED", field=field) from None
            yield row

    return names, rows()


def json_line(line: str, number: int) -> dict[str, Any] | str:
    """One JSON-lines row: its object, or why it is not one (the row's outcome)."""
    try:
        data = strict_loads(line)
    except json.JSONDecodeError as error:
        return f"line {number} is not JSON: {error.msg}"
    if not isinstance(data, dict):
        return f"line {number} is not a JSON object"
    return data
