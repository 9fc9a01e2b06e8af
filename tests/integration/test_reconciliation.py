"""Reconciliation (issue 5, reliability item 3; issue 24: a program at a time, a page of members at a time,
D-116): a real history reconciles clean; an item broken on purpose is reported with the check it fails and
the figures; nothing is written but the run's own state."""

from __future__ import annotations

import json
from datetime import datetime

import boto3
import pytest

from infra import reconcile
from loyalty.settings import get_settings
from loyalty.store import keys
from loyalty.store.table import Table
from tests.support import OPERATOR, POS, SHANGHAI, Api, load_event, order_body


@pytest.fixture
def history(demo, api: Api, pipeline) -> dict[str, str]:
    """A member who earned (two orders), spent, returned one order and claimed the demo coupon."""
    _, member = api.call("POST", "/v1/members", POS, body={"programCode": "DEMO", "phone": "13800138000"})
    for number, amount in (("A1", 300), ("A2", 500)):
        assert api.call("POST", "/v1/orders", POS, body=order_body(number, amount))[0] == 202
    pipeline.drain()
    spend = {"pointGroupCode": "points", "points": 120, "purpose": "gift"}
    assert api.call("POST", f"/v1/members/{member['id']}/redemptions", POS, body=spend)[0] == 201
    back = {
        "returnNo": "R1",
        "originalOrderNo": "A1",
        "returnedAt": datetime.now(SHANGHAI).isoformat(),
        "wholeOrder": True,
    }
    assert api.call("POST", "/v1/returns", POS, body=back)[0] == 202
    pipeline.drain()
    rules = api.call("GET", "/v1/admin/coupon-rules", OPERATOR)[1]["items"]
    rule_id = rules[0]["ruleId"]
    status, coupon = api.call("POST", f"/v1/members/{member['id']}/coupons", POS, body={"ruleId": rule_id})
    assert status == 201, coupon
    return {"member": member["id"], "rule": rule_id, "code": coupon["code"]}


def reconcile_nightly(api: Api, pipeline) -> dict:
    """The schedule's run through the queue; its report as the run's state keeps it."""
    assert api.functions["ReconcileFunction"].invoke(load_event("reconcile.json")) == {"planned": 1}
    pipeline.drain()
    (run,) = [i for i in Table().query_all(keys.reconciliation("demo", "DEMO"), "RUN#") if i["SK"].count("#") == 1]
    found = Table().query_all(keys.reconciliation("demo", "DEMO"), f"{run['SK']}#DIFF#")
    differences = [{k: v for k, v in d.items() if k not in ("PK", "SK", "expiration")} for d in found]
    assert (run["status"], run["differences"]) == ("done", len(differences))
    return {"members": run["members"], "rules": run["rules"], "differences": differences}


def table_items() -> list[dict]:
    """Every item but the reconciliation's own run state."""
    client = boto3.client("dynamodb")
    items = client.scan(TableName=get_settings().table_name)["Items"]
    return [i for i in items if "#RECONCILE#" not in i["PK"]["S"] and not i["PK"]["S"].endswith("#JOBS#DEMO")]


def edit(pk: str, sk: str, expression: str, values: dict) -> None:
    boto3.client("dynamodb").update_item(
        TableName=get_settings().table_name,
        Key={"PK": {"S": pk}, "SK": {"S": sk}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
    )


def test_a_real_history_reconciles_clean(history, api, pipeline):
    report = reconcile_nightly(api, pipeline)
    assert (report["members"], report["rules"], report["differences"]) == (1, 1, [])


def test_a_broken_balance_is_reported_and_nothing_is_written(history, api, pipeline):
    member = history["member"]
    edit(keys.member("demo", member), keys.account_sk("points"), "SET available = available + :n", {":n": {"N": "5"}})
    before = table_items()
    report = reconcile_nightly(api, pipeline)
    _, view = api.call("GET", f"/v1/members/{member}", POS)
    available = next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")
    assert available == 500 - 120 + 5  # A1's 300 reversed, 120 spent, 5 broken in
    assert sorted((d["check"], d["expected"], d["found"]) for d in report["differences"]) == [
        ("available=lots-debt", 380, 385),
        ("available=records", 380, 385),
    ]
    assert {(d["tenant"], d["subject"], d["group"]) for d in report["differences"]} == {("demo", member, "points")}
    assert table_items() == before


def test_a_lost_lot_and_a_negative_debt_are_reported(history, api, pipeline):
    member = history["member"]
    pk = keys.member("demo", member)
    (lot,) = Table().query_prefix(pk, keys.LOT_PREFIX + "growth#").items
    boto3.client("dynamodb").delete_item(
        TableName=get_settings().table_name, Key={"PK": {"S": pk}, "SK": {"S": lot["SK"]}}
    )
    edit(pk, keys.account_sk("points"), "SET debt = :d", {":d": {"N": "-1"}})
    report = reconcile_nightly(api, pipeline)
    found = {(d["group"], d["check"]): (d["expected"], d["found"]) for d in report["differences"]}
    assert found == {
        ("growth", "available=lots-debt"): (0, lot["remaining"]),
        ("points", "available=lots-debt"): (381, 380),
        ("points", "debt>=0"): (0, -1),
    }


def test_broken_coupon_stock_and_a_lost_coupon_are_reported(history, api, pipeline):
    rule = history["rule"]
    shard = next(s for s in range(keys.STOCK_SHARDS) if _shard(rule, s)["issued"] == 1)
    edit(keys.coupon_stock("demo", rule, shard), keys.STOCK_SK, "SET remaining = remaining - :n", {":n": {"N": "1"}})
    boto3.client("dynamodb").delete_item(
        TableName=get_settings().table_name,
        Key={"PK": {"S": keys.coupon("demo", history["code"])}, "SK": {"S": keys.COUPON_SK}},
    )
    _, board = api.call("GET", f"/v1/admin/coupon-rules/{rule}/dashboard", OPERATOR)
    found = {d["check"]: (d["expected"], d["found"]) for d in reconcile_nightly(api, pipeline)["differences"]}
    assert found == {
        "stock=remaining+issued": (board["totalStock"], board["totalStock"] - 1),
        "issued=coupons": (1, 0),
    }


def test_the_operator_command_prints_the_report_and_fails_on_a_difference(history, capsys):
    assert reconcile.main(["--tenant", "demo"]) == 0
    assert json.loads(capsys.readouterr().out)["members"] == 1
    edit(keys.member("demo", history["member"]), keys.account_sk("growth"), "SET expired = :n", {":n": {"N": "7"}})
    assert reconcile.main(["--tenant", "demo"]) == 1
    (difference,) = json.loads(capsys.readouterr().out)["differences"]
    assert (difference["check"], difference["expected"], difference["found"]) == ("expired=records", 0, 7)
    assert reconcile.main(["--tenant", "other"]) == 0  # another tenant's data is not looked at
    assert json.loads(capsys.readouterr().out)["members"] == 0


def _shard(rule: str, shard: int) -> dict:
    return Table().get(keys.coupon_stock("demo", rule, shard), keys.STOCK_SK) or {"issued": 0}
