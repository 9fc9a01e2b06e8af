"""A year of the demo program in seconds, over HTTP (issue 24, D-108): the stack's clock moves forward
(POST /_local/clock) and its schedules fire for what fell due, instead of the tests waiting. On a stack of
its own per engine (its clock moves), with the spec's numbers: gold from 1000 points (tier rule 1000-5000),
a 365-day tier validity and 365-day points, quiet hours 21:00-09:00.

- 保级 then 降级: gold kept at the end of its validity (1000 qualifying points in the period), then base a
  year later without points; the 1000 points expire at the end of their last day, not a minute before.
- A birthday gift on a day the clock jumped over, and a campaign approved after the day's run still runs
  that day; "30 days without a purchase" wins the member back on the 30th day.
- Marketing held through quiet hours goes out when they end, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import ENGINES, KeepAlive, Stack, module_tenant
from tests.e2e.test_local_stack import wait_for
from tests.support import with_points_budget

pytestmark = pytest.mark.e2e
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module", params=ENGINES)
def stack(request: pytest.FixtureRequest, stacks) -> Stack:
    return stacks(request.param, moves_clock=True).with_tenant(module_tenant(request))


def clients(stack: Stack) -> tuple[KeepAlive, KeepAlive, KeepAlive]:
    keys = stack.info["apiKeys"]
    return (
        KeepAlive(stack.base, keys["pos"]),
        KeepAlive(stack.base, keys["operator"]),
        KeepAlive(stack.base, keys["approver"]),
    )


def order(number: str, amount: str, member_id: str, at: datetime) -> dict:
    line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": amount, "paid": amount, "pointsAmount": amount}
    return {
        "programCode": "DEMO",
        "orderNo": number,
        "member": {"id": member_id},
        "storeCode": "SH001",  # an offline store: 1 point per yuan, 365 days
        "orderedAt": at.replace(microsecond=0).isoformat(),
        "lines": [line],
    }


def account(pos: KeepAlive, member_id: str) -> tuple[int, int]:
    _, view = pos.json("GET", f"/v1/members/{member_id}")
    points = next(a for a in view["accounts"] if a["pointGroupCode"] == "points")
    return points["available"], points["expired"]


def tier(pos: KeepAlive, member_id: str) -> tuple[str, str]:
    _, view = pos.json("GET", f"/v1/members/{member_id}")
    return view["tier"]["code"], view["tier"]["type"]


def running(stack: Stack, body: dict) -> str:
    _, operator, approver = clients(stack)
    status, draft = operator.json("POST", "/v1/admin/campaigns", with_points_budget(body))
    assert status == 201, draft
    path = f"/v1/admin/campaigns/{draft['campaignId']}"
    assert operator.json("POST", f"{path}/submit", {"approver": stack.info["apiKeyIds"]["approver"]})[0] == 200
    status, approved = approver.json("POST", f"{path}/approve", {"comment": "同意"})
    assert status == 200, approved
    return str(draft["campaignId"])


def gift(name: str, trigger: dict, points: int, now: datetime, days: int = 90) -> dict:
    return {
        "programCode": "DEMO",
        "name": name,
        "trigger": trigger,
        "effects": [{"type": "grantPoints", "pointGroupCode": "points", "points": points}],
        "startsAt": (now - timedelta(days=1)).isoformat(),
        "endsAt": (now + timedelta(days=days)).isoformat(),
        "costCenterCode": "marketing",
    }


def test_gold_is_kept_at_the_end_of_its_year_then_lost_and_points_expire_at_the_end_of_their_last_day(stack):
    pos, _, _ = clients(stack)
    phone = "1350013500" + ("1" if stack.info["engine"] == "moto" else "2")
    _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": phone})
    now = stack.now()
    assert pos.json("POST", "/v1/orders", order("year-1", "1000", member["id"], now))[0] == 202
    assert wait_for(lambda: tier(pos, member["id"]), lambda t: t == ("gold", "upgrade")) == ("gold", "upgrade")
    _, view = pos.json("GET", f"/v1/members/{member['id']}")
    until = datetime.fromisoformat(view["tier"]["validUntil"])
    assert account(pos, member["id"]) == (1000, 0)

    # The last minute of the points' and the tier's last day: nothing has ended yet
    stack.move_clock(to=(until - timedelta(minutes=1)).isoformat())
    assert wait_for(lambda: account(pos, member["id"]), lambda a: a != (1000, 0), seconds=3) == (1000, 0)
    assert tier(pos, member["id"]) == ("gold", "upgrade")
    # Past midnight, the hourly sweeps run: the 1000 points expire, gold is kept (1000 reached in the year)
    stack.move_clock(to=(until + timedelta(minutes=30)).isoformat())
    assert wait_for(lambda: account(pos, member["id"]), lambda a: a == (0, 1000)) == (0, 1000)
    assert wait_for(lambda: tier(pos, member["id"]), lambda t: t[1] == "retention") == ("gold", "retention")
    _, view = pos.json("GET", f"/v1/members/{member['id']}")
    again = datetime.fromisoformat(view["tier"]["validUntil"])
    assert again > until + timedelta(days=364)
    # A year without points: dropped to base, which never ends
    stack.move_clock(to=(again + timedelta(minutes=30)).isoformat())
    assert wait_for(lambda: tier(pos, member["id"]), lambda t: t[1] == "downgrade") == ("base", "downgrade")
    history = pos.json("GET", f"/v1/members/{member['id']}/tiers")[1]["items"]
    assert [(r["type"], r["code"]) for r in history] == [
        ("BASE", "base"),
        ("UPGRADE", "gold"),
        ("RETENTION", "gold"),
        ("DOWNGRADE", "base"),
    ]


def test_birthdays_the_clock_jumped_over_are_given_and_a_quiet_member_is_won_back_on_the_30th_day(stack):
    pos, _, _ = clients(stack)
    engine = "1" if stack.info["engine"] == "moto" else "2"
    now = stack.now()
    today = now.astimezone(SHANGHAI).date()
    born = {}
    for ahead in (0, 2):  # today, and the day after tomorrow (a day the clock will jump over)
        day = today + timedelta(days=ahead)
        body = {"programCode": "DEMO", "phone": f"136{engine}01360{ahead}", "birthday": f"1990-{day:%m-%d}"}
        born[ahead] = pos.json("POST", "/v1/members", body)[1]["id"]
    # the day's run already happened, then the campaigns are approved: they still run today (the members are
    # in the index first: an approval plans the day at once, and a day is planned once)
    assert stack.request("POST", "/_local/schedules/campaign-days-hourly")[0] == 200
    running(stack, gift("生日礼 50 积分", {"type": "birthday"}, 50, now))
    running(stack, gift("30 天未购回馈 20 积分", {"type": "noPurchase", "days": 30}, 20, now, days=120))
    quiet = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": f"136{engine}0136099"})[1]["id"]
    assert pos.json("POST", "/v1/orders", order(f"last-{engine}", "10", quiet, now))[0] == 202
    assert wait_for(lambda: account(pos, quiet)[0], lambda p: p == 10) == 10
    assert stack.request("POST", "/_local/schedules/campaign-days-hourly")[0] == 200  # approved since: today again
    assert wait_for(lambda: account(pos, born[0])[0], lambda p: p == 50) == 50
    assert account(pos, born[2]) == (0, 0)

    stack.move_clock(advance="P3D")  # three days on, in one jump: each day between is run once
    assert wait_for(lambda: account(pos, born[2])[0], lambda p: p == 50) == 50
    assert account(pos, born[0])[0] == 50  # once a year
    assert account(pos, quiet)[0] == 10
    stack.move_clock(advance="P27D")  # the 30th day after the last purchase
    assert wait_for(lambda: account(pos, quiet)[0], lambda p: p == 30) == 30


def test_marketing_held_through_quiet_hours_goes_out_when_they_end_once(stack):
    pos, operator, _ = clients(stack)
    engine = "1" if stack.info["engine"] == "moto" else "2"
    evening = stack.now().astimezone(SHANGHAI).replace(hour=22, minute=0, second=0, microsecond=0)
    if evening <= stack.now():
        evening += timedelta(days=1)
    stack.move_clock(to=evening.isoformat())
    body = gift("会员日短信", {"type": "purchase"}, 0, evening)
    body["effects"] = [{"type": "sendMessage", "templateCode": "member-day"}]
    running(stack, body)
    phone = f"137{engine}0137001"
    _, member = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": phone, "name": "同意"})
    assert (
        operator.call(
            "PATCH", f"/v1/admin/members/{member['id']}", {"marketingOptIn": True}, headers={"if-match": '"1"'}
        )[0]
        == 200
    )
    assert pos.json("POST", "/v1/orders", order(f"mkt-{engine}", "100", member["id"], evening))[0] == 202

    def records() -> list[dict]:
        path = f"/v1/admin/members/{member['id']}/messages?templateCode=member-day"
        return list(operator.json("GET", path)[1]["items"])

    def sms() -> list[str]:
        outbox = KeepAlive(stack.base).json("GET", "/_local/outbox")[1]
        return [m["message"] for m in outbox["sms"] if m["phoneNumber"] == f"+86{phone}" and "会员日" in m["message"]]

    held = wait_for(records, lambda r: bool(r) and r[0]["status"] == "held")
    until = datetime.fromisoformat(held[0]["heldUntil"].replace("Z", "+00:00")).astimezone(SHANGHAI)
    assert (until.date(), until.hour, until.minute) == ((evening + timedelta(days=1)).date(), 9, 0)
    stack.move_clock(to=(until - timedelta(minutes=10)).isoformat())
    assert wait_for(sms, bool, seconds=3) == []  # still quiet
    stack.move_clock(to=(until + timedelta(minutes=6)).isoformat())  # the release runs every 5 minutes
    assert wait_for(records, lambda r: r[0]["status"] == "sent")[0]["status"] == "sent"
    assert stack.request("POST", "/_local/schedules/messages-release-held")[0] == 200  # again: nothing more
    assert wait_for(sms, lambda s: len(s) > 1, seconds=3) == ["同意, 会员日短信: 本周六会员日全场双倍积分, 回T退订"]
