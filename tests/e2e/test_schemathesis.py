"""Bad input (issue 5, item 4): schemathesis generates requests for every operation of the OpenAPI document
the stack serves and sends them over HTTP to the local stack, with a channel key and with an operator key.
No response may be a 5xx, and every response must match the document: a declared status code, its content
type and its schema (problem JSON for errors). Then the four ways a body can be wrong, over HTTP."""

from __future__ import annotations

import json
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

from tests.support import ROOT

schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.parametrize("key", ["pos", "operator"])
@schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_5xx_and_every_response_matches_the_document(case, key, stack):
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {stack.info['apiKeys'][key]}"}
    response = case.call(base_url=stack.base)
    case.validate_response(response, checks=CHECKS)


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
