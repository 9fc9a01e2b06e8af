"""The API document against the API (issue 5 item 4, issue 12): schemathesis sends every operation of the
document the stack serves, over HTTP, with a channel key and with an operator key, in its examples and
coverage phases (every boundary the document states) and a few fuzzed cases. No response may be a 5xx;
every response must match the document (a declared status, its content type and schema); and a request the
document allows may not be refused by validation, except for the rules between fields that JSON Schema
cannot state (NOT_IN_THE_DOCUMENT). Then the four ways a body can be wrong, over HTTP."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Stack, module_tenant, on_engine
from tests.support import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=[on_engine("dynamodb-local")])
def stack(request: pytest.FixtureRequest, stacks) -> Stack:
    """DynamoDB Local only (D-118): what is checked here is the HTTP layer against its document, which does not
    change with the engine, except where the engine refuses an item; DynamoDB Local refuses what DynamoDB does."""
    return stacks(request.param).with_tenant(module_tenant(request))


# An audience's condition is a recursive tree of a dozen kinds of leaf: the coverage phase's cases for it run
# to thousands per operation (about 3,300 for POST alone, 4.5 minutes). Its operations get the examples and
# fuzzing phases; every other operation all three.
TREES = r"^/v1/admin/audiences"
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json").exclude(path_regex=TREES)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
trees = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json").include(path_regex=TREES)
trees.config.phases.update(phases=["examples", "fuzzing"])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
REFUSED_AS_INPUT = {"VALIDATION_FAILED", "MALFORMED_JSON", "UNSUPPORTED_MEDIA_TYPE"}

# Rules between fields (or against the time-zone database) that the document says in words, not in JSON
# Schema: a request the document allows may break one and get its 422. Each is (field, start of detail).
NOT_IN_THE_DOCUMENT = {
    ("/productScope", "Value error, name products, categories or a product group, only one of"),
    ("/storeScope", "Value error, name stores or a store group, not both"),
    # a coupon's benefit field is the one of its type: "a discount coupon needs payablePercent", "... has no"
    ("/amountOff", "a "),
    ("/payablePercent", "a "),
    ("/exchangeProductCode", "a "),
    ("/usableWeekdays", "distinct ISO weekdays 1-7"),
    ("/points", "an adjustment changes points"),
    ("/validity", "a non-base tier needs a validity"),
    ("/validity", "the base tier never expires"),
    ("/code", "the code in the body differs from the one in the path"),
    ("/programCode", "the program in the body differs from the one in the path"),
    ("/lines", "give lines, or wholeOrder true without lines"),
    ("/limits", "a points budget needs a points effect"),
    ("/limits", "a campaign that gives points needs a points budget"),
    # every date a request gives lies in 2000-2099 (D-127): the README says so; `format: date` cannot
    ("", "a date from 2000-01-01 to 2099-12-31"),
    ("", "Value error, a date from 2000-01-01 to 2099-12-31"),
    ("/validity/fixedDate/day", "month "),  # "month 4 has no day 31": a day that month does not have
    ("/effects", "at most one grantPoints or orderPoints effect"),
    ("/effects", "an orderPoints campaign has no other effect"),
    ("/trigger", "orderPoints are given for a purchase"),
    ("/multiplier", "one of multiplier, pointsPerYuan, fixedPoints"),
    # a multiplier is more than 1, which its description says: a JSON string's pattern cannot
    ("/effects/orderPoints/multiplier", "Input should be greater than 1"),
    ("/productGroupCode", "fixedPoints are for the whole order"),
    ("/endsAt", "the end comes after the start"),
    ("/lines", "line numbers must be distinct"),
    ("/parentCode", "a category cannot be its own parent"),
    ("/upperBound", "upperBound must be greater than lowerBound"),
    # a tier rule names a point group exactly when it counts points ("a points rule names ...", "a spend rule ...")
    ("/pointGroupCode", "a "),
    ("/endDate", "the end date is before the start date"),
    ("/timeZone", "Value error, unknown time zone"),
    ("/member", "Value error, name the member by exactly one of"),
    # campaigns: a batch one names an audience and no trigger, a trigger one the other way round (D-094)
    ("/audienceId", "a batch campaign names an audience, not a trigger"),
    ("/trigger", "a trigger campaign names a trigger, not an audience"),
    ("/launchAt", "the launch is within the window"),
    ("/minProductAmount", "an amount of a product group names it"),
    # audiences (D-093): a window is absolute or relative; a behaviour leaf names its type; the tree's size
    ("/window/from", "either from/to or lastDays"),
    ("/window/to", "the window ends after it starts"),
    ("/behaviourType", "named for behaviour, and only for it"),
    ("/condition", "at most 30 conditions"),
    ("/condition", "nested at most 5 deep"),
    # message templates (D-100): an email has a subject, and only an email; {{names}} from a fixed list
    ("/subject", "an email has a subject, and only an email"),
    ("/subject", "unknown variable"),
    ("/body", "unknown variable"),
    # a coupon rule's rules between fields: usable hours end after they start; a points price names its group
    # (and only then); at least one way to issue; a limit is -1 or at least 1; no code presented twice
    ("/usableTime/end", "the window ends before it starts"),
    ("/pointsGroupCode", "a points price needs its point group, and only then"),
    ("/publicClaim", "choose at least one way to issue it"),
    ("/claimLimits", "a limit is -1 (none) or at least 1"),
    ("/codes", "a code is presented twice"),
    # send records (D-106): a range of at most 92 days, of this century
    ("/from", "from comes before to, at most 92 days apart"),
    ("/from", "a date between 2000 and 2099"),
    ("/to", "a date between 2000 and 2099"),
    # API keys (D-120): a channel key names its channel, an operator key none
    ("/channel", "a channel key names its channel, an operator key none"),
}


def refused_what_the_document_allows(response, case) -> list[tuple[str, str]]:
    """The validation errors of a request generated as valid (positive), minus the rules above."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 415, 422):
        return []
    problem = response.json()
    if problem.get("code") not in REFUSED_AS_INPUT:
        return []  # a rule of the state or the data (UNKNOWN_*, TIME_OUT_OF_RANGE, ...), not of the shape
    errors = problem.get("errors") or [{"field": problem.get("field") or "", "detail": problem.get("detail", "")}]
    found = [(re.sub(r"/[0-9]+", "", e["field"]), e["detail"]) for e in errors]
    return [
        (field, detail)
        for field, detail in found
        if not any(field.endswith(f) and detail.startswith(d) for f, d in NOT_IN_THE_DOCUMENT)
    ]


# derandomize: the same document gives the same cases on every run, so a red build names a real mismatch
SETTINGS = settings(
    max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True
)


def check(case, key: str, stack) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {stack.info['apiKeys'][key]}"}
    response = case.call(base_url=stack.base)
    case.validate_response(response, checks=CHECKS)
    assert refused_what_the_document_allows(response, case) == [], (case.operation.label, case.body)


@pytest.mark.parametrize("key", ["pos", "operator"])
@schema.parametrize()
@SETTINGS
def test_no_5xx_and_every_response_matches_the_document(case, key, stack):
    check(case, key, stack)


@pytest.mark.parametrize("key", ["pos", "operator"])
@trees.parametrize()
@SETTINGS
def test_no_5xx_and_every_response_matches_the_document_for_audiences(case, key, stack):
    check(case, key, stack)


def _raw(stack, path: str, body: bytes, content_type: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(stack.base + path, data=body, method="POST")
    request.add_header("content-type", content_type)
    request.add_header("authorization", f"Bearer {stack.info['apiKeys'][key]}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("key", "path"), [("pos", "/v1/members"), ("operator", "/v1/admin/programs/DEMO/point-groups")]
)
def test_oversized_malformed_mistyped_and_invalid_bodies_get_their_own_problem(stack, key, path):
    json_type = "application/json"
    answers = {
        "oversized": _raw(stack, path, b'{"name": "' + b"x" * 300_000 + b'"}', json_type, key),
        "malformed": _raw(stack, path, b'{"programCode": ', json_type, key),
        "not UTF-8": _raw(stack, path, b"\xff\xfe{", json_type, key),
        "not JSON": _raw(stack, path, b"programCode=DEMO", "application/x-www-form-urlencoded", key),
        "bad field": _raw(stack, path, json.dumps({"programCode": 7}).encode(), json_type, key),
    }
    found = {name: (status, body["code"]) for name, (status, body) in answers.items()}
    assert found == {
        "oversized": (413, "PAYLOAD_TOO_LARGE"),
        "malformed": (400, "MALFORMED_JSON"),
        "not UTF-8": (400, "MALFORMED_JSON"),
        "not JSON": (415, "UNSUPPORTED_MEDIA_TYPE"),
        "bad field": (422, "VALIDATION_FAILED"),
    }
    assert all(answer["field"] for answer in answers["bad field"][1]["errors"])
