"""Migrations of stored items (issue 24, D-112): members and index items written as earlier versions wrote
them are brought forward by the runner, a page per queue message, in order, once; a second run changes
nothing. Pages of 20 items, so every segment's walk takes several pages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from loyalty.domain.members import valid_card_number
from loyalty.services.migrations.steps import MIGRATIONS
from loyalty.store import keys
from loyalty.store.table import Table, delete, update
from tests.support import OPERATOR, POS, SHANGHAI, Api, order_body


@pytest.fixture
def small_pages(monkeypatch):
    import loyalty.services.migrations.runner as runner

    monkeypatch.setattr(runner, "PAGE_ITEMS", 20)


def register(api: Api, phone: str) -> str:
    status, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": phone})
    assert status == 201, member
    return str(member["id"])


def as_written_before(table: Table, member_id: str) -> None:
    """What an earlier version left: no card number, no 注册 entry, no spend metrics, and every index
    entry of what ends in the partition of its day."""
    pk = keys.member("demo", member_id)
    profile = table.get(pk, keys.MEMBER_SK)
    assert profile is not None
    entries = [i for i in table.query_all(pk, keys.ACTIVITY_PREFIX) if i["type"] == "register"]
    table.transact(
        [
            update(
                pk,
                keys.MEMBER_SK,
                "REMOVE cardNo, grossSpend, orderCount, returnedAmount, firstPurchaseAt, lastPurchaseAt",
            ),
            delete(keys.card_guard("demo", profile["cardNo"]), keys.GUARD_SK),
            *[delete(pk, entry["SK"]) for entry in entries],
        ]
    )
    for item in table.query_all(pk, keys.LOT_PREFIX) + [table.get(pk, keys.MEMBER_SK)]:
        if item and "GSI1PK" in item and "#" in item["GSI1SK"] and item["GSI1SK"][:4].isdigit():
            _, tenant, name, program, shard = item["GSI1PK"].split("#")
            day, rest = item["GSI1SK"].split("#", 1)
            old = {":pk": f"T#{tenant}#{name}#{program}#{day}#{shard}", ":sk": rest}
            table.transact([update(item["PK"], item["SK"], "SET GSI1PK = :pk, GSI1SK = :sk", old)])


def test_earlier_members_get_card_numbers_metrics_list_entries_and_index_keys_once(demo, api, pipeline, small_pages):
    from loyalty.services.migrations.runner import migration_runner

    table = Table()
    old = register(api, "13800138000")
    for number, amount in (("A1", 120), ("A2", 80)):
        assert api.call("POST", "/v1/orders", POS, body=order_body(number, amount, member={"id": old}))[0] == 202
    pipeline.drain()
    returned = {"returnNo": "R1", "originalOrderNo": "A2", "returnedAt": datetime.now(SHANGHAI).isoformat()}
    assert api.call("POST", "/v1/returns", POS, body={**returned, "wholeOrder": True})[0] == 202
    pipeline.drain()
    _, before = api.call("GET", f"/v1/members/{old}", POS)
    current = [register(api, f"1380013810{n}") for n in range(5)]  # written by this version: left as they are
    as_written_before(table, old)
    _, stripped = api.call("GET", f"/v1/members/{old}", POS)
    assert stripped.get("cardNo") is None and stripped["metrics"]["orderCount"] == 0
    assert old not in [m["id"] for m in api.call("GET", "/v1/admin/members", OPERATOR)[1]["items"]]

    runner = migration_runner()
    assert runner.start_pending() == "001-ends-index"
    pipeline.drain(rounds=2000)
    status = {m["id"]: m for m in runner.status()}
    assert [m["status"] for m in status.values()] == ["done"] * len(MIGRATIONS)  # each started the next
    assert status["001-ends-index"]["changed"] == 2  # A1's lots of points and growth (A2's went back)
    assert status["002-member-list-entries"]["changed"] == 1
    assert status["003-card-numbers"]["changed"] == 1
    assert status["004-spend-metrics"]["changed"] == 1
    assert status["002-member-list-entries"]["scanned"] == 6  # every profile, a page of 20 at most

    _, after = api.call("GET", f"/v1/members/{old}", POS)
    assert valid_card_number(after["cardNo"])
    assert api.call("GET", "/v1/members/lookup", POS, query={"cardNo": after["cardNo"]})[1]["id"] == old
    assert after["metrics"] == before["metrics"]  # 200 paid over two orders, 80 returned
    assert Decimal(after["metrics"]["totalSpend"]) == Decimal("120.00")
    listed = [m["id"] for m in api.call("GET", "/v1/admin/members", OPERATOR, query={"limit": "50"})[1]["items"]]
    assert sorted(listed) == sorted([old, *current])
    lots = table.query_all(keys.member("demo", old), keys.LOT_PREFIX)
    assert lots and all(lot["GSI1PK"].count("#") == 4 for lot in lots)  # T#demo#EXPIRES#DEMO#<shard>

    # Started again: nothing pending. Run again from the start (its state forgotten): nothing changes.
    assert runner.start_pending() is None
    table.transact([delete(keys.MIGRATIONS, "003-card-numbers")])
    assert runner.start_pending() == "003-card-numbers"
    pipeline.drain(rounds=2000)
    again = {m["id"]: m for m in runner.status()}["003-card-numbers"]
    assert (again["status"], again["changed"]) == ("done", 0)
    assert api.call("GET", f"/v1/members/{old}", POS)[1]["cardNo"] == after["cardNo"]


def test_a_lot_moved_to_the_new_index_is_swept_when_it_ends(demo, api, pipeline, small_pages):
    """The old partition of a day is read by nothing now: the migrated lot must be where the sweep looks."""
    from loyalty.services.migrations.runner import migration_runner

    member_id = register(api, "13800138000")
    assert api.call("POST", "/v1/orders", POS, body=order_body("OLD", 300, days_ago=367, member={"id": member_id}))
    pipeline.drain()
    as_written_before(Table(), member_id)
    migration_runner().start_pending()
    pipeline.drain(rounds=2000)
    assert api.call("POST", "/v1/admin/programs/DEMO/expiry-sweeps", OPERATOR, body={})[0] == 202
    pipeline.drain()
    _, records = api.call("GET", f"/v1/members/{member_id}/point-records", POS, query={"type": "EXPIRY"})
    assert sorted(r["change"] for r in records["items"]) == [-300, -1]


def test_a_fresh_table_is_marked_done_without_a_walk(demo):
    from loyalty.services.migrations.runner import migration_runner

    runner = migration_runner()
    assert runner.baseline() == len(MIGRATIONS)
    assert runner.start_pending() is None
    assert {m["status"] for m in runner.status()} == {"done"}


def test_the_template_names_every_migration_so_a_deploy_that_adds_one_runs_it():
    from loyalty.services.migrations.steps import MIGRATIONS
    from tests.support import TEMPLATE

    named = TEMPLATE.resources["MigrationsOnDeploy"]["Properties"]["Migrations"]
    assert named == [m.id for m in MIGRATIONS]
    assert [m.id for m in MIGRATIONS] == sorted(m.id for m in MIGRATIONS)  # the order they run in
