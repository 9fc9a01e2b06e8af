"""Store and product groups at the size of a chain (issue 13, master data): members are items of their own,
2,000 of them in one group through a bulk job, and a scope check reads only the order's own pairs (D-084)."""

from __future__ import annotations

from tests.support import OPERATOR, POS, SNACK_DOUBLE, Api, order_body

GROUP = "/v1/admin/product-groups"


def products(count: int) -> None:
    """`count` products P00000... in the catalogue, written straight to the table (set-up, not the subject)."""
    from loyalty.domain.config import KINDS
    from loyalty.store.config_repo import ConfigRepository
    from loyalty.store.table import Table

    now = "2026-12-01T00:00:00+00:00"
    table = Table()
    location = ConfigRepository.location
    table.put_many(
        [
            {
                "PK": location("demo", KINDS["product"], f"P{n:05d}")[0],
                "SK": location("demo", KINDS["product"], f"P{n:05d}")[1],
                "kind": "product",
                "code": f"P{n:05d}",
                "data": {"code": f"P{n:05d}", "name": f"商品{n}", "categoryCode": "SNACK"},
                "version": 1,
                "refs": 0,
                "createdAt": now,
                "updatedAt": now,
            }
            for n in range(count)
        ]
    )


def test_two_thousand_products_in_one_group_and_an_order_reads_only_its_own(demo, api: Api, pipeline):
    products(2_000)
    group = {"code": "promo", "name": "促销商品", "description": "两千个商品"}
    assert api.call("POST", GROUP, OPERATOR, body=group)[0] == 201
    rows = "groupCode,productCode\n" + "\n".join(f"promo,P{n:05d}" for n in range(2_000)) + "\npromo,NO_SUCH\n"
    job = {"kind": "productGroupMember", "format": "csv", "data": rows}
    status, created = api.call("POST", "/v1/admin/master-data-jobs", OPERATOR, body=job)
    assert (status, created["total"]) == (202, 2_001)
    pipeline.drain(rounds=500)
    _, report = api.call("GET", f"/v1/admin/bulk-jobs/{created['jobId']}", OPERATOR)
    assert report["outcomes"] == {"ADDED": 2_000, "UNKNOWN_REFERENCE": 1}
    _, shown = api.call("GET", f"{GROUP}/promo", OPERATOR)
    assert (shown["memberCount"], shown["status"]) == (2_000, "draft")
    _, page = api.call("GET", f"{GROUP}/promo/products", OPERATOR, query={"limit": "3"})
    assert [m["code"] for m in page["items"]] == ["P00000", "P00001", "P00002"] and page["nextCursor"]
    # a product in the group is counted on the product: it cannot be deleted while in the group
    status, problem = api.call("DELETE", "/v1/admin/products/P01999", OPERATOR)
    assert (status, problem["code"]) == (409, "STILL_REFERENCED")
    assert api.call("POST", f"{GROUP}/promo/enable", OPERATOR)[0] == 200
    rule = {**SNACK_DOUBLE, "code": "promo-double", "productScope": {"productGroupCode": "promo"}}
    assert api.call("POST", "/v1/admin/programs/DEMO/point-rules", OPERATOR, body=rule)[0] == 201
    assert api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})[0] == 201
    sale = order_body("G-1", 100)
    sale["lines"] = [
        {**sale["lines"][0], "lineNo": 1, "sku": "P01999"},  # in the group: 2 points a yuan
        {**sale["lines"][0], "lineNo": 2, "sku": "IC0600"},  # not in it: the base rule's 1 a yuan
    ]
    assert api.call("POST", "/v1/orders", POS, body=sale)[0] == 202
    pipeline.drain()
    _, order = api.call("GET", "/v1/orders/G-1", POS)
    earned = {(e["ruleCode"], e["pointGroupCode"]): e["points"] for e in order["earned"]}
    assert earned[("promo-double", "points")] == 200 and sum(p for (_, g), p in earned.items() if g == "points") == 300


def test_members_change_only_while_the_group_is_a_draft_and_a_group_with_members_is_not_deleted(demo, api: Api):
    group = {"code": "north", "name": "北区门店", "description": "draft"}
    assert api.call("POST", "/v1/admin/store-groups", OPERATOR, body=group)[0] == 201
    path = "/v1/admin/store-groups/north/stores"
    assert api.call("PUT", f"{path}/SH001", OPERATOR) == (200, {"code": "SH001", "addedAt": None})
    assert api.call("PUT", f"{path}/SH001", OPERATOR)[0] == 200  # repeatable: counted once
    assert api.call("GET", "/v1/admin/store-groups/north", OPERATOR)[1]["memberCount"] == 1
    status, problem = api.call("PUT", f"{path}/NOPE", OPERATOR)
    assert (status, problem["code"]) == (422, "UNKNOWN_REFERENCE")
    assert api.call("PUT", "/v1/admin/store-groups/south/stores/SH001", OPERATOR)[1]["code"] == "STORE_GROUP_NOT_FOUND"
    status, problem = api.call("DELETE", "/v1/admin/store-groups/north", OPERATOR)
    assert (status, problem["code"], problem["members"]) == (409, "GROUP_NOT_EMPTY", 1)
    assert api.call("DELETE", f"{path}/SH001", OPERATOR)[0] == 204
    assert api.call("DELETE", f"{path}/SH001", OPERATOR)[0] == 204  # repeatable
    assert api.call("DELETE", "/v1/admin/stores/SH001", OPERATOR)[1]["code"] == "STILL_REFERENCED"  # the seed's groups
    assert api.call("DELETE", "/v1/admin/store-groups/north", OPERATOR)[0] == 204


def test_an_answer_about_an_enabled_group_is_read_once(demo, api: Api):
    """Enabled groups are frozen, so a sandbox keeps what it read of them: the next order of the same store
    reads nothing for its scope; a group deleted and made again is another generation, read afresh."""
    from loyalty.services.config import CatalogLoader
    from loyalty.store.config_repo import ConfigRepository
    from loyalty.store.table import Table

    reads: list[int] = []

    class Counting(Table):
        def get_many(self, keys, *, consistent=True):
            reads.append(len(keys))
            return super().get_many(keys, consistent=consistent)

    loader = CatalogLoader(ConfigRepository(Counting()))
    catalog = loader.load("demo").catalog
    wanted = catalog.lookups("SH001", [], ["online", "offline"], [])
    first, _ = loader.scoped("demo", catalog, wanted)
    assert first.store_in("offline", "SH001") and not first.store_in("online", "SH001") and reads == [2]
    again, _ = loader.scoped("demo", catalog, wanted)
    assert again.members == first.members and reads == [2]  # no read the second time
    assert loader.scoped("demo", catalog, catalog.lookups("KS003", [], ["offline"], []))[0].store_in("offline", "KS003")
    assert reads == [2, 1]
