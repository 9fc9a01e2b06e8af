"""The README's run command, driven over HTTP: the demo tenant, members, access rules, the API docs."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_the_stack_prints_working_keys_and_its_routes(stack):
    assert set(stack.info["apiKeys"]) == set(stack.info["apiKeyIds"]) == {"operator", "approver", "pos", "miniProgram"}
    assert "POST /v1/members" in stack.info["routes"] and "ANY /v1/admin/{proxy+}" in stack.info["routes"]
    assert stack.info["baseUrl"].startswith("http://127.0.0.1:")


def test_a_member_registered_over_http_has_the_base_tier_and_two_zero_accounts(stack):
    key = stack.info["apiKeys"]["pos"]
    status, member = stack.request(
        "POST",
        "/v1/members",
        {"programCode": "DEMO", "phone": "13700137000", "name": "李四"},
        key,
        headers={"Idempotency-Key": "e2e-1"},
    )
    assert status == 201
    assert (member["tier"]["code"], member["tier"]["name"]) == ("base", "普通会员")
    assert sorted((a["name"], a["cumulative"], a["available"], a["expired"]) for a in member["accounts"]) == [
        ("成长值", 0, 0, 0),
        ("积分", 0, 0, 0),
    ]
    assert stack.request("GET", f"/v1/members/{member['id']}", key=key) == (200, member)


def test_the_demo_program_is_configured_as_in_the_spec(stack):
    key = stack.info["apiKeys"]["operator"]
    status, tiers = stack.request("GET", "/v1/admin/programs/DEMO/tiers", key=key)
    assert status == 200 and [t["code"] for t in sorted(tiers["items"], key=lambda t: t["order"])] == [
        "base",
        "silver",
        "gold",
        "platinum",
    ]
    _, rules = stack.request("GET", "/v1/admin/programs/DEMO/point-rules", key=key)
    assert len(rules["items"]) == 3
    _, stores = stack.request("GET", "/v1/admin/stores", key=key)
    assert len(stores["items"]) >= 3


def test_access_rules_over_http(stack):
    keys = stack.info["apiKeys"]
    assert stack.request("GET", "/v1/admin/stores")[0] == 401  # no key: the gateway refuses
    # an unknown key: the authorizer refuses it, so the gateway answers 403 and no route function runs
    assert stack.request("GET", "/v1/admin/stores", key="lk_not-a-key") == (403, {"message": "Forbidden"})
    status, problem = stack.request("GET", "/v1/admin/stores", key=keys["pos"])
    assert status == 403 and problem["code"] == "FORBIDDEN"
    status, problem = stack.request("POST", "/v1/members", {"programCode": "DEMO"}, key=keys["operator"])
    assert status == 403


def test_the_openapi_document_and_docs_page_are_served(stack):
    status, document = stack.request("GET", "/openapi.json")
    assert status == 200 and "/v1/members" in document["paths"]
    status, page = stack.request("GET", "/docs")
    assert status == 200 and "/docs/swagger-ui-bundle.js" in page and "https://" not in page  # nothing remote
    assert stack.request("GET", "/v1/nothing-here", key=stack.info["apiKeys"]["pos"])[0] == 404


def local_client(service: str, endpoint: str):
    """A boto3 client for one of the local stack's services (any credentials do)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_a_registration_reaches_the_event_bus_through_the_outbox(stack):
    import json
    import time

    emulator = stack.info["emulatorEndpoint"]
    sqs, events = local_client("sqs", emulator), local_client("events", emulator)
    url = sqs.create_queue(QueueName="e2e-listener")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.info["eventBus"]
    events.put_rule(
        Name="e2e-members",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["loyalty"], "detail-type": ["MemberRegistered"]}),
    )
    events.put_targets(Rule="e2e-members", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    _, member = stack.request(
        "POST", "/v1/members", {"programCode": "DEMO", "phone": "13600136000"}, stack.info["apiKeys"]["miniProgram"]
    )
    # Other tests on this stack register members too, and their events may still be in the outbox.
    deadline, member_ids = time.monotonic() + 20, []
    while member["id"] not in member_ids and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, MaxNumberOfMessages=10).get("Messages", [])
        member_ids += [json.loads(m["Body"])["detail"]["memberId"] for m in messages]
        time.sleep(0.2)
    time.sleep(1)  # long enough for a duplicate publication to show up
    messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, MaxNumberOfMessages=10).get("Messages", [])
    member_ids += [json.loads(m["Body"])["detail"]["memberId"] for m in messages]
    assert member_ids.count(member["id"]) == 1


def wait_for(read, done, seconds: float = 30):
    """Poll `read()` until `done(value)`: the stack's queues and streams work in the background."""
    import time

    deadline = time.monotonic() + seconds
    while not done(value := read()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def an_order(member_id: str, order_no: str, amount: str) -> dict:
    """One line of one TD0001 at `amount`, all of it paid and earning points, at store SH001."""
    line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": amount, "paid": amount, "pointsAmount": amount}
    return {
        "programCode": "DEMO",
        "orderNo": order_no,
        "member": {"id": member_id},
        "storeCode": "SH001",
        "orderedAt": "2026-11-22T12:00:00+08:00",
        "lines": [line],
    }


def test_an_order_posted_over_http_earns_its_points(stack):
    key = stack.info["apiKeys"]["pos"]
    _, member = stack.request("POST", "/v1/members", {"programCode": "DEMO", "phone": "13500135000"}, key)
    status, accepted = stack.request("POST", "/v1/orders", an_order(member["id"], "e2e-order-1", "500"), key)
    assert status == 202 and accepted["status"] == "received"
    shown = wait_for(
        lambda: stack.request("GET", "/v1/orders/e2e-order-1", key=key)[1], lambda o: o["status"] == "accrued"
    )
    assert shown["status"] == "accrued"
    _, view = stack.request("GET", f"/v1/members/{member['id']}", key=key)
    assert {a["pointGroupCode"]: a["available"] for a in view["accounts"]} == {"points": 500, "growth": 1}


def test_a_member_claims_validates_and_redeems_a_coupon_over_http(stack):
    keys = stack.info["apiKeys"]
    rules = stack.request("GET", "/v1/admin/coupon-rules", key=keys["operator"])[1]["items"]
    rule = next(r for r in rules if r["rule"]["name"] == "满100减20" and r["status"] == "listed")
    _, member = stack.request("POST", "/v1/members", {"programCode": "DEMO", "phone": "13700137999"}, keys["pos"])
    status, coupon = stack.request(
        "POST", f"/v1/members/{member['id']}/coupons", {"ruleId": rule["ruleId"]}, keys["miniProgram"]
    )
    assert status == 201 and len(coupon["code"]) == 16 and coupon["status"] == "issued"
    order = {"codes": [coupon["code"]], "orderNo": "E2E-COUPON-1", "storeCode": "SH001", "orderAmount": "99.99"}
    status, check = stack.request("POST", "/v1/coupons/validate", order, keys["pos"])
    assert status == 200 and [r["code"] for r in check["coupons"][0]["reasons"]] == ["BELOW_THRESHOLD"]
    status, redeemed = stack.request("POST", "/v1/coupons/redemptions", {**order, "orderAmount": "100"}, keys["pos"])
    assert status == 201 and redeemed["discountTotal"] == "20" and redeemed["paidAmount"] == "80"
    assert stack.request("POST", "/v1/coupons/redemptions", {**order, "orderAmount": "100"}, keys["pos"]) == (
        201,
        redeemed,
    )  # a replay: the first answer, its status too
    mine = stack.request("GET", f"/v1/members/{member['id']}/coupons", key=keys["pos"])[1]["items"]
    assert [(c["code"], c["status"]) for c in mine] == [(coupon["code"], "used")]


def test_an_upgrade_a_keyed_spend_and_a_return_over_http(stack):
    """The heaviest transaction (a first accrual raising the tier: 10 items) and the spend/return path, on
    whichever engine the stack runs."""
    key = stack.info["apiKeys"]["pos"]
    _, member = stack.request("POST", "/v1/members", {"programCode": "DEMO", "phone": "13400134000"}, key)
    path = f"/v1/members/{member['id']}"
    assert stack.request("POST", "/v1/orders", an_order(member["id"], "e2e-order-2", "1000"), key)[0] == 202

    def accounts():
        view = stack.request("GET", path, key=key)[1]
        return view["tier"]["code"], {a["pointGroupCode"]: (a["cumulative"], a["available"]) for a in view["accounts"]}

    assert wait_for(accounts, lambda v: v[1]["points"] != (0, 0)) == (
        "gold",
        {"points": (1000, 1000), "growth": (1, 1)},
    )
    history = stack.request("GET", f"{path}/tiers", key=key)[1]["items"]
    assert [(t["code"], t["type"], t["status"]) for t in history] == [
        ("base", "BASE", "invalid"),
        ("gold", "UPGRADE", "valid"),
    ]
    spend = {"pointGroupCode": "points", "points": 300, "purpose": "gift"}
    first = stack.request("POST", f"{path}/redemptions", spend, key, headers={"Idempotency-Key": "e2e-spend"})
    again = stack.request("POST", f"{path}/redemptions", spend, key, headers={"Idempotency-Key": "e2e-spend"})
    assert first[0] == 201 and again == first
    returned = {
        "returnNo": "e2e-return-2",
        "originalOrderNo": "e2e-order-2",
        "returnedAt": "2026-11-22T18:00:00+08:00",
        "wholeOrder": True,
    }
    assert stack.request("POST", "/v1/returns", returned, key)[0] == 202
    # 1000 reversed: 700 left in the lot, 300 already spent are owed; a return never lowers the tier
    assert wait_for(accounts, lambda v: v[1]["points"][0] == 0) == ("gold", {"points": (0, -300), "growth": (0, 0)})


def test_the_data_lives_on_the_engine_the_stack_was_started_with(stack):
    engine = local_client("dynamodb", stack.info["dynamodbEndpoint"])
    assert engine.scan(TableName=stack.info["tableName"], Limit=1)["Items"]  # the demo tenant at least
    moto_tables = local_client("dynamodb", stack.info["emulatorEndpoint"]).list_tables()["TableNames"]
    if stack.info["engine"] == "dynamodb-local":
        assert stack.info["dynamodbEndpoint"] != stack.info["emulatorEndpoint"] and moto_tables == []
    else:
        assert stack.info["dynamodbEndpoint"] == stack.info["emulatorEndpoint"]


def test_a_204_has_no_body_and_the_connection_serves_the_next_request(stack):
    """One keep-alive connection: create a store, delete it (204), then read on the same connection."""
    from tests.e2e.conftest import KeepAlive

    client = KeepAlive(stack.base, stack.info["apiKeys"]["operator"])
    store = {"code": "KA204", "name": "保持连接门店", "type": "offline", "city": "上海"}
    assert client.json("POST", "/v1/admin/stores", store)[0] == 201
    status, headers, body = client.call("DELETE", "/v1/admin/stores/KA204")
    assert (status, body) == (204, b"")
    assert "content-length" not in headers and "content-type" not in headers
    assert client.json("GET", "/v1/admin/stores/KA204")[0] == 404
    assert client.json("GET", "/v1/admin/stores/SH001")[1]["name"] == "上海南京路店"


def test_a_profile_change_with_if_match_over_http_and_two_at_once_give_one_change(stack):
    """GET gives the version as ETag; PATCH with If-Match changes the profile; two changes sent at once
    with the same If-Match give one 200 and one 412 on either engine (the version is the condition)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.e2e.conftest import KeepAlive

    client = KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    status, member = client.json("POST", "/v1/members", {"programCode": "DEMO", "phone": "13600136001"})
    assert status == 201
    path = f"/v1/members/{member['id']}"
    status, headers, _ = client.call("GET", path)
    assert (status, headers["etag"]) == (200, '"1"')
    merge = {"content-type": "application/merge-patch+json", "if-match": headers["etag"]}
    status, headers, body = client.call("PATCH", path, {"name": "王五", "marketingOptIn": True}, headers=merge)
    assert (status, headers["etag"], json.loads(body)["name"]) == (200, '"2"', "王五")

    def change(name: str) -> int:
        other = KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
        return other.call("PATCH", path, {"name": name}, headers={"if-match": '"2"'})[0]

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(change, ["赵六", "钱七"])) == [200, 412]
    _, page = client.json("GET", f"{path}/profile-changes")
    assert [c["changes"][0]["field"] for c in page["items"]] == ["name", "name"]
    assert page["items"][1]["changes"][0] == {"field": "name", "old": None, "new": "王*"}


def test_a_keyed_registration_with_an_identity_and_a_spend_from_seven_lots_work_on_both_engines(stack):
    """What the 2020 DynamoDB Local answered with a 500 (10 items per transaction): a keyed registration that
    binds an identity, and a keyed spend drawing from seven lots (7 draws, the record, the account, the
    outbox, the key's marker: 11 items)."""
    from tests.e2e.conftest import KeepAlive

    client = KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
    identity = {"type": "wechatOpenId", "value": f"o-{stack.info['engine']}"}
    body = {"programCode": "DEMO", "phone": "13300133000", "identity": identity}
    status, _, raw = client.call("POST", "/v1/members", body, headers={"Idempotency-Key": "e2e-identity"})
    member = json.loads(raw)
    assert status == 201 and [i["value"] for i in member["identities"]] == [identity["value"]]
    for n in range(7):
        assert client.json("POST", "/v1/orders", an_order(member["id"], f"e2e-lot-{n}", "100"))[0] == 202

    def points():
        view = client.json("GET", f"/v1/members/{member['id']}")[1]
        return next(a["available"] for a in view["accounts"] if a["pointGroupCode"] == "points")

    assert wait_for(points, lambda p: p == 700) == 700
    spend = {"pointGroupCode": "points", "points": 650, "purpose": "gift"}
    path = f"/v1/members/{member['id']}/redemptions"
    status, _, raw = client.call("POST", path, spend, headers={"Idempotency-Key": "e2e-seven-lots"})
    assert status == 201 and len(json.loads(raw)["relations"]) == 7
    assert points() == 50


def test_the_docs_page_renders_the_operations_in_a_browser_with_no_network(stack):
    """Headless Chromium loads /docs from the stack alone (Swagger UI is served by it) and renders the API."""
    import os
    import shutil
    import subprocess

    if stack.info["engine"] != "moto":
        pytest.skip("the page does not depend on the engine: once is enough")
    browser = shutil.which(os.environ.get("LOYALTY_BROWSER", "chromium"))
    if browser is None:
        if os.environ.get("LOYALTY_BROWSER"):  # `make test` installed it: missing is a failure
            pytest.fail("chromium is not installed")
        pytest.skip("chromium is not installed; `make test` installs it")
    dom = subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-proxy-server",
            "--virtual-time-budget=20000",
            "--window-size=1280,40000",  # Swagger UI renders a long document's operations as they scroll into view
            "--dump-dom",
            f"{stack.base}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert dom.count('class="opblock-summary-path"') > 100  # every operation has its block (over 100 of them)
    assert 'data-path="/v1/members"' in dom and "Register a member" in dom


@pytest.mark.parametrize("engine", ["moto"])
def test_the_stack_stops_at_once_on_the_first_sigterm_while_busy(engine, tmp_path):
    """Under traffic, one SIGTERM stops the stack within seconds (it needed two, and over 10 s), and the state
    file it wrote is whole (written beside, then renamed)."""
    import signal
    import threading
    import time

    from tests.e2e.conftest import KeepAlive, start_stack

    stacks = start_stack(tmp_path, "--engine", engine)
    stack = next(stacks)
    assert json.loads((tmp_path / "stack.json").read_text())["baseUrl"] == stack.base
    stop = threading.Event()

    def traffic() -> None:
        client = KeepAlive(stack.base, stack.info["apiKeys"]["pos"])
        for n in range(100_000):
            if stop.is_set():
                return
            try:
                client.json("POST", "/v1/members", {"programCode": "DEMO", "phone": f"1360000{n:04d}"})
            except OSError:
                return

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for worker in workers:
        worker.start()
    time.sleep(3)  # busy: registrations in flight, the outbox publishing behind them
    import os

    started = time.monotonic()
    os.kill(stack.pid, signal.SIGTERM)
    while time.monotonic() - started < 10:
        try:
            os.kill(stack.pid, 0)
        except ProcessLookupError:
            break
        if os.waitpid(stack.pid, os.WNOHANG) != (0, 0):
            break
        time.sleep(0.05)
    stopped_in = time.monotonic() - started
    stop.set()
    for worker in workers:
        worker.join()
    next(stacks, None)  # the fixture's own teardown: nothing left to stop
    assert stopped_in < 5, f"stopped after {stopped_in:.1f} s"
