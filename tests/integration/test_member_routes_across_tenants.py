"""Every GET route that takes a member answers 404 for a member of another tenant (issue 25: the member's
send records and campaigns answered an empty list). Walked from the OpenAPI document, not listed by hand."""

from __future__ import annotations

import json
import re

from tests.support import OTHER_TENANT_OPERATOR, OTHER_TENANT_POS, POS, ROOT


def member_routes() -> list[str]:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    return sorted(
        path for path, operations in document["paths"].items() if "{memberId}" in path and "get" in operations
    )


def test_every_member_route_is_404_for_another_tenants_member(demo, api):
    _, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    routes = member_routes()
    assert len(routes) > 8  # the walk found them
    answers = {}
    for route in routes:
        path = re.sub(r"\{[A-Za-z]+\}", "01HZZZZZZZZZZZZZZZZZZZZZZZ", route.replace("{memberId}", member["id"]))
        other = OTHER_TENANT_OPERATOR if path.startswith("/v1/admin/") else OTHER_TENANT_POS
        status, body = api.call("GET", path, other)
        answers[route] = (status, (body or {}).get("code"))
    assert {route: status for route, (status, _) in answers.items()} == {route: 404 for route in routes}, answers
    assert all(code.endswith("_NOT_FOUND") for _, code in answers.values()), answers
