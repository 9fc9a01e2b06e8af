"""The configuration API on moto: validation, uniqueness, references and deletes (issue 2, item 5)."""

from __future__ import annotations

from tests.support import OPERATOR, OTHER_TENANT_OPERATOR, POS, Api

TIERS = "/v1/admin/programs/DEMO/tiers"
RULES = "/v1/admin/programs/DEMO/point-rules"
DIAMOND = {"code": "diamond", "name": "钻石会员", "order": 5, "validity": {"type": "fixedPeriod", "days": 365}}


def rule(**changes: object) -> dict:
    base = {
        "code": "web-double",
        "name": "官网2倍积分",
        "pointGroupCode": "points",
        "awardMode": "amount",
        "unit": "1",
        "pointsPerUnit": 2,
        "countsTowardUpgrade": True,
        "costCenterCode": "marketing",
        "validity": {"type": "fixedDate", "years": 1, "month": 12, "day": 31},
    }
    return {**base, **changes}


def test_seeded_program_matches_the_spec_samples(demo, api: Api):
    # social-hub §4.2: four tiers, 365-day periods; §4.3: the three rules; §8.1: the three point rules
    _, tiers = api.call("GET", TIERS, OPERATOR)
    assert sorted((t["order"], t["code"], t["base"], t["validity"].get("days")) for t in tiers["items"]) == [
        (1, "base", True, None),
        (2, "silver", False, 365),
        (3, "gold", False, 365),
        (4, "platinum", False, 365),
    ]
    _, rules = api.call("GET", "/v1/admin/programs/DEMO/tier-rules", OPERATOR)
    assert sorted((r["tierCode"], r["lowerBound"], r.get("upperBound")) for r in rules["items"]) == [
        ("gold", 1000, 5000),
        ("platinum", 5000, None),
        ("silver", 300, 1000),
    ]
    _, point_rules = api.call("GET", RULES, OPERATOR)
    assert sorted(
        (r["name"], r["awardMode"], r["pointGroupCode"], r["countsTowardUpgrade"]) for r in point_rules["items"]
    ) == [
        ("线上门店1元积1分", "amount", "points", True),
        ("线下门店1个数量积1成长值", "quantity", "growth", False),
        ("线下门店1元1积分", "amount", "points", True),
    ]
    _, groups = api.call("GET", "/v1/admin/programs/DEMO/point-groups", OPERATOR)
    assert {g["name"] for g in groups["items"]} == {"积分", "成长值"}


def test_create_read_replace_delete_a_tier(demo, api: Api):
    status, created = api.call("POST", TIERS, OPERATOR, body=DIAMOND)
    assert status == 201 and created["code"] == "diamond" and created["createdAt"] == created["updatedAt"]
    assert api.call("GET", f"{TIERS}/diamond", OPERATOR)[1]["name"] == "钻石会员"
    status, replaced = api.call("PUT", f"{TIERS}/diamond", OPERATOR, body={**DIAMOND, "name": "黑钻会员"})
    assert status == 200 and replaced["name"] == "黑钻会员" and replaced["createdAt"] == created["createdAt"]
    assert api.call("DELETE", f"{TIERS}/diamond", OPERATOR) == (204, None)
    assert api.call("GET", f"{TIERS}/diamond", OPERATOR)[1]["code"] == "TIER_NOT_FOUND"


def test_codes_are_unique_per_scope(demo, api: Api):
    status, problem = api.call("POST", "/v1/admin/programs", OPERATOR, body={"code": "DEMO", "name": "again"})
    assert status == 409 and problem["code"] == "ALREADY_EXISTS" and problem["field"] == "/code"
    # ...but per tenant: another tenant may use the same program code
    assert api.call("POST", "/v1/admin/programs", OTHER_TENANT_OPERATOR, body={"code": "DEMO", "name": "x"})[0] == 201


def test_exactly_one_base_tier_and_one_tier_per_order(demo, api: Api):
    status, problem = api.call("POST", TIERS, OPERATOR, body={"code": "base2", "name": "x", "order": 9, "base": True})
    assert status == 422 and problem["code"] == "DUPLICATE_BASE" and problem["existing"] == "base"
    status, problem = api.call("POST", TIERS, OPERATOR, body={**DIAMOND, "order": 3})
    assert status == 422 and problem["code"] == "DUPLICATE_ORDER" and problem["existing"] == "gold"
    # Moving gold to order 6 frees order 3
    gold = api.call("GET", f"{TIERS}/gold", OPERATOR)[1]
    gold = {k: v for k, v in gold.items() if k not in ("createdAt", "updatedAt")}
    assert api.call("PUT", f"{TIERS}/gold", OPERATOR, body={**gold, "order": 6})[0] == 200
    assert api.call("POST", TIERS, OPERATOR, body={**DIAMOND, "order": 3})[0] == 201


def test_tier_settings_are_validated(demo, api: Api):
    cases = [
        ({**DIAMOND, "base": True}, "/validity"),  # a base tier never expires
        ({**DIAMOND, "validity": {"type": "none"}}, "/validity"),  # other tiers need a validity
        ({**DIAMOND, "validity": {"type": "fixedDate", "years": 1, "month": 2, "day": 30}}, "/validity/fixedDate/day"),
        ({**DIAMOND, "validity": {"type": "fixedPeriod", "days": 0}}, "/validity/fixedPeriod/days"),
        ({**DIAMOND, "code": "has space"}, "/code"),
    ]
    for body, pointer in cases:
        status, problem = api.call("POST", TIERS, OPERATOR, body=body)
        assert status == 422, body
        assert any(e["field"].startswith(pointer) for e in problem["errors"]), (pointer, problem["errors"])


def test_tier_rule_bounds_and_references(demo, api: Api):
    path = "/v1/admin/programs/DEMO/tier-rules"
    body = {
        "code": "r",
        "name": "r",
        "tierCode": "gold",
        "pointGroupCode": "points",
        "lowerBound": 500,
        "upperBound": 400,
    }
    status, problem = api.call("POST", path, OPERATOR, body=body)
    assert status == 422 and problem["errors"][0]["field"] == "/upperBound"
    status, problem = api.call("POST", path, OPERATOR, body={**body, "upperBound": 900, "tierCode": "ruby"})
    assert status == 422 and problem["code"] == "UNKNOWN_REFERENCE" and problem["field"] == "/tierCode"
    # a rolling window (最近X天) is refused rather than stored and ignored: the measure is the tier's period
    status, problem = api.call("POST", path, OPERATOR, body={**body, "upperBound": 900, "windowDays": 90})
    assert (status, problem["code"], problem["errors"][0]["field"]) == (422, "VALIDATION_FAILED", "/windowDays")


def test_a_rule_may_use_only_an_enabled_group(demo, api: Api):
    group = {"code": "vip-stores", "name": "VIP门店", "description": "draft"}
    assert api.call("POST", "/v1/admin/store-groups", OPERATOR, body=group)[0] == 201
    assert api.call("PUT", "/v1/admin/store-groups/vip-stores/stores/SH001", OPERATOR)[0] == 200
    body = rule(storeScope={"storeGroupCode": "vip-stores"})
    status, problem = api.call("POST", RULES, OPERATOR, body=body)
    assert status == 422 and problem["code"] == "NOT_ENABLED" and problem["field"] == "/storeScope/storeGroupCode"
    status, enabled = api.call("POST", "/v1/admin/store-groups/vip-stores/enable", OPERATOR)
    assert status == 200 and enabled["status"] == "enabled"
    assert api.call("POST", RULES, OPERATOR, body=body)[0] == 201


def test_an_enabled_group_keeps_its_members(demo, api: Api):
    _, online = api.call("GET", "/v1/admin/store-groups/online", OPERATOR)
    assert (online["memberCount"], online["status"]) == (2, "enabled")
    body = {k: v for k, v in online.items() if k not in ("createdAt", "updatedAt", "status", "memberCount")}
    status, problem = api.call("PUT", "/v1/admin/store-groups/online", OPERATOR, body={**body, "allStores": True})
    assert status == 409 and problem["code"] == "GROUP_ENABLED"
    status, problem = api.call("PUT", "/v1/admin/store-groups/online/stores/SH001", OPERATOR)
    assert (status, problem["code"]) == (409, "GROUP_ENABLED")
    assert api.call("DELETE", "/v1/admin/store-groups/online/stores/WEB", OPERATOR)[1]["code"] == "GROUP_ENABLED"
    assert api.call("PUT", "/v1/admin/store-groups/online", OPERATOR, body={**body, "name": "线上"})[0] == 200
    _, page = api.call("GET", "/v1/admin/store-groups/online/stores", OPERATOR)
    assert [m["code"] for m in page["items"]] == ["MINI", "WEB"]
    assert api.call("GET", "/v1/admin/store-groups/online", OPERATOR)[1]["memberCount"] == 2


def test_something_referenced_cannot_be_deleted_until_the_reference_goes(demo, api: Api):
    assert api.call("POST", RULES, OPERATOR, body=rule(productScope={"productCodes": ["TD0001"]}))[0] == 201
    status, problem = api.call("DELETE", "/v1/admin/products/TD0001", OPERATOR)
    assert status == 409 and problem["code"] == "STILL_REFERENCED" and problem["references"] == 1
    # Replacing the rule to another product moves the reference
    assert (
        api.call("PUT", f"{RULES}/web-double", OPERATOR, body=rule(productScope={"productCodes": ["IC0600"]}))[0] == 200
    )
    assert api.call("DELETE", "/v1/admin/products/TD0001", OPERATOR)[0] == 204
    assert api.call("DELETE", "/v1/admin/products/IC0600", OPERATOR)[0] == 409
    assert api.call("DELETE", f"{RULES}/web-double", OPERATOR)[0] == 204
    assert api.call("DELETE", "/v1/admin/products/IC0600", OPERATOR)[0] == 204


def test_a_rule_naming_an_unknown_store_writes_nothing(demo, api: Api):
    body = rule(storeScope={"storeCodes": ["SH001", "NOPE"]})
    status, problem = api.call("POST", RULES, OPERATOR, body=body)
    assert status == 422 and problem["field"] == "/storeScope/storeCodes/1"
    assert api.call("GET", f"{RULES}/web-double", OPERATOR)[0] == 404
    assert api.call("DELETE", "/v1/admin/stores/SH001", OPERATOR)[0] == 409  # still only the group's reference


def test_an_empty_string_is_refused_with_its_field_and_nothing_is_written(demo, api: Api):
    store = {"code": "SH900", "name": "Pudong", "city": "", "province": "Shanghai"}
    status, problem = api.call("POST", "/v1/admin/stores", OPERATOR, body=store)
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["/city"]
    assert api.call("GET", "/v1/admin/stores/SH900", OPERATOR)[0] == 404
    status, problem = api.call("POST", "/v1/admin/stores", OPERATOR, body={**store, "city": "Shanghai", "name": ""})
    assert status == 422 and [e["field"] for e in problem["errors"]] == ["/name"]
    assert api.call("POST", "/v1/admin/stores", OPERATOR, body={**store, "city": "Shanghai"})[0] == 201
    status, problem = api.call("GET", "/v1/admin/coupons", OPERATOR, query={"phone": ""})  # was a 500
    assert status == 422 and [(e["in"], e["field"]) for e in problem["errors"]] == [("query", "/phone")]


def test_tiers_and_point_groups_are_frozen_once_the_program_has_members(demo, api: Api):
    assert api.call("POST", TIERS, OPERATOR, body=DIAMOND)[0] == 201
    api.call("POST", "/v1/admin/programs/DEMO/point-groups", OPERATOR, body={"code": "stars", "name": "星星"})
    assert api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})[0] == 201
    for path in (f"{TIERS}/diamond", "/v1/admin/programs/DEMO/point-groups/stars"):
        status, problem = api.call("DELETE", path, OPERATOR)
        assert status == 409 and problem["code"] == "PROGRAM_IN_USE", path
    status, problem = api.call("DELETE", "/v1/admin/programs/DEMO", OPERATOR)
    assert status == 409 and problem["code"] == "PROGRAM_IN_USE"


def test_a_program_with_structure_cannot_be_deleted(demo, api: Api):
    api.call(
        "POST", "/v1/admin/programs", OPERATOR, body={"code": "P2", "name": "二号计划", "timeZone": "Europe/Paris"}
    )
    api.call("POST", "/v1/admin/programs/P2/cost-centers", OPERATOR, body={"code": "cc", "name": "cc"})
    assert api.call("DELETE", "/v1/admin/programs/P2", OPERATOR)[1]["code"] == "STILL_REFERENCED"
    assert api.call("DELETE", "/v1/admin/programs/P2/cost-centers/cc", OPERATOR)[0] == 204
    assert api.call("DELETE", "/v1/admin/programs/P2", OPERATOR)[0] == 204


def test_structure_of_an_unknown_program_is_404_and_time_zones_are_checked(demo, api: Api):
    status, problem = api.call(
        "POST", "/v1/admin/programs/NOPE/cost-centers", OPERATOR, body={"code": "c", "name": "c"}
    )
    assert status == 404 and problem["code"] == "PROGRAM_NOT_FOUND"
    status, problem = api.call(
        "POST", "/v1/admin/programs", OPERATOR, body={"code": "X", "name": "x", "timeZone": "Mars/Base"}
    )
    assert status == 422 and problem["errors"][0]["field"] == "/timeZone"


def test_lists_page_with_an_opaque_cursor(demo, api: Api):
    status, first = api.call("GET", TIERS, OPERATOR, query={"limit": "3"})
    assert status == 200 and len(first["items"]) == 3 and first["nextCursor"]
    _, second = api.call("GET", TIERS, OPERATOR, query={"limit": "3", "cursor": first["nextCursor"]})
    codes = [t["code"] for t in first["items"] + second["items"]]
    assert sorted(codes) == ["base", "gold", "platinum", "silver"] and len(set(codes)) == 4
    # A cursor of one listing cannot walk another
    status, problem = api.call("GET", "/v1/admin/stores", OPERATOR, query={"cursor": first["nextCursor"]})
    assert status == 422 and problem["code"] == "INVALID_CURSOR"


def test_another_tenant_sees_none_of_it(demo, api: Api):
    assert api.call("GET", "/v1/admin/programs/DEMO", OTHER_TENANT_OPERATOR)[0] == 404
    assert api.call("GET", "/v1/admin/stores", OTHER_TENANT_OPERATOR)[1]["items"] == []
    assert api.call("GET", TIERS, OTHER_TENANT_OPERATOR)[1]["items"] == []


def test_a_retried_create_with_its_idempotency_key_gets_the_first_answer(demo, api: Api):
    headers = {"idempotency-key": "create-diamond"}
    first = api.call("POST", TIERS, OPERATOR, body=DIAMOND, headers=headers)
    assert api.call("POST", TIERS, OPERATOR, body=DIAMOND, headers=headers) == first
    assert api.call("POST", TIERS, OPERATOR, body=DIAMOND)[1]["code"] == "ALREADY_EXISTS"  # no key: a new attempt
