"""The README's problem-code table lists every code the package can answer, with the status it answers."""

from __future__ import annotations

import ast
import re

from loyalty.domain.config import KINDS
from tests.support import ROOT

STATUS = {
    "NotFound": 404,
    "Conflict": 409,
    "InvalidInput": 422,
    "Forbidden": 403,
    "Unauthorized": 401,
    "PreconditionFailed": 412,
    "PreconditionRequired": 428,
}
NOT_PROBLEMS = {"NOT_FOUND"}  # a coupon validation reason (answered in a 200's list), not an error code


def documented() -> dict[str, int]:
    section = (ROOT / "README.md").read_text().split("### Problem codes", 1)[1].split("\n### ", 1)[0]
    table: dict[str, int] = {}
    for codes, status in re.findall(r"^\| (`[^|]+`) \| (\d{3}) \|", section, re.MULTILINE):
        for code in re.findall(r"`([A-Z_]+)`", codes):
            table[code] = int(status)
    return table


def raised() -> dict[str, set[int]]:
    """Every literal `code=` of a domain error, and every literal code of a problem answer, by status."""
    found: dict[str, set[int]] = {}
    for path in (ROOT / "layers" / "loyalty" / "loyalty").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            for keyword in node.keywords:
                if keyword.arg == "code" and isinstance(keyword.value, ast.Constant) and name in STATUS:
                    found.setdefault(keyword.value.value, set()).add(STATUS[name])
            if name == "problem" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                status = node.args[0]
                found.setdefault(node.args[1].value, set()).add(status.value if isinstance(status, ast.Constant) else 0)
    return found


def test_every_code_raised_is_in_the_table_with_its_status():
    table = documented()
    for code, statuses in raised().items():
        if code in NOT_PROBLEMS:
            continue
        assert code in table, f"{code} is not in the README's problem-code table"
        assert statuses - {0} <= {table[code]}, f"{code}: raised as {statuses}, documented as {table[code]}"


def test_each_code_is_one_case_with_one_status():
    assert all(len(statuses - {0}) <= 1 for statuses in raised().values())


def test_the_not_found_codes_of_every_configuration_kind_are_listed():
    table = documented()
    for name in KINDS:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() + "_NOT_FOUND"
        assert table.get(code) == 404, code


def test_the_table_lists_nothing_that_is_never_answered():
    known = set(raised()) | {
        re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper() + "_NOT_FOUND" for name in KINDS
    }  # fmt: skip
    made_elsewhere = {  # built from a value rather than a literal
        "COUPON_USED", "COUPON_TRANSFERRING", "COUPON_EXPIRED", "DUPLICATE_BASE", "DUPLICATE_ORDER",
        "OUT_OF_STOCK", "DAILY_CAP_REACHED", "UNKNOWN_REFERENCE", "NOT_ENABLED",
    }  # fmt: skip
    assert set(documented()) - known - made_elsewhere == set()
