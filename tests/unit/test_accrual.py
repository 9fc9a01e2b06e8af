"""Accrual rules with the spec's numbers (social-hub §8.1, §17 behaviours 11-16, 23, 28-34)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from infra.local.seed import GROUP_MEMBERS, MASTER_DATA, PROGRAM_STRUCTURE
from loyalty.domain.accrual import Catalog, earnings, line_points
from loyalty.domain.config import KINDS, PointRule, Program, StoreGroup
from loyalty.domain.ledger import RecordType, balances, delta
from loyalty.domain.orders import OrderSubmission
from loyalty.domain.program import ProgramConfig
from loyalty.domain.tiers import upgrade_target

PROGRAM = ProgramConfig.from_items(Program(code="DEMO", name="品牌会员计划"), False, PROGRAM_STRUCTURE)
RULES = list(PROGRAM.point_rules.values())
CATALOG = Catalog(
    store_groups={d["code"]: StoreGroup.model_validate(d) for kind, d in MASTER_DATA if kind == "storeGroup"},
    earning_methods=frozenset(d["code"] for kind, d in MASTER_DATA if kind == "paymentMethod" and d["earnsPoints"]),
    members=frozenset((kind, group, code) for (kind, group), codes in GROUP_MEMBERS.items() for code in codes),
)


def order(store: str = "SH001", lines: list[dict] | None = None, payments: list[dict] | None = None) -> OrderSubmission:
    return OrderSubmission.model_validate(
        {
            "programCode": "DEMO",
            "orderNo": "roy202103230000000041",
            "member": {"phone": "13800138000"},
            "storeCode": store,
            "orderedAt": "2021-03-23T14:52:00+08:00",
            "lines": lines
            or [
                {
                    "lineNo": 1,
                    "sku": "TD0001",
                    "quantity": "1",
                    "receivable": "500",
                    "paid": "500",
                    "pointsAmount": "500",
                }
            ],
            "payments": payments or [],
        }
    )


def summary(found) -> list[tuple[str, str, int]]:
    return [(e.point_group, e.rule.name, e.points) for e in found]


def test_an_offline_line_of_500_earns_500_points_and_1_growth():
    assert summary(earnings(order(), "base", RULES, CATALOG)) == [
        ("growth", "线下门店1个数量积1成长值", 1),
        ("points", "线下门店1元1积分", 500),
    ]


def test_an_online_store_earns_by_the_online_rule_only():
    assert summary(earnings(order(store="WEB"), "base", RULES, CATALOG)) == [("points", "线上门店1元积1分", 500)]


def test_rules_on_one_line_and_group_do_not_add_up_the_best_applies():
    double = PointRule.model_validate(
        {
            **PROGRAM.point_rules["offline-amount"].model_dump(by_alias=True),
            "code": "zz-double",
            "name": "双倍",
            "pointsPerUnit": 2,
        }
    )
    found = earnings(order(), "base", [*RULES, double], CATALOG)
    assert ("points", "双倍", 1000) in summary(found) and len(found) == 2


def test_floor_of_base_over_unit_times_points_per_unit():
    rule = PointRule.model_validate(
        {**PROGRAM.point_rules["offline-amount"].model_dump(by_alias=True), "unit": "10", "pointsPerUnit": 3}
    )
    line = order(
        lines=[
            {"lineNo": 1, "sku": "X", "quantity": "2", "receivable": "99.99", "paid": "99.99", "pointsAmount": "99.99"}
        ]
    ).lines[0]
    assert line_points(rule, line) == 27  # floor(99.99 / 10) = 9, x 3


def test_without_a_points_amount_the_paid_share_of_earning_tenders_counts():
    lines = [{"lineNo": 1, "sku": "X", "quantity": "1", "receivable": "120", "discount": "20", "paid": "100"}]
    payments = [{"methodCode": "1001", "amount": "60"}, {"methodCode": "GIFT", "amount": "40"}]  # 礼品卡 earns nothing
    found = earnings(order(lines=lines, payments=payments), "base", RULES, CATALOG)
    assert ("points", "线下门店1元1积分", 60) in summary(found)


def test_tier_and_product_scopes_restrict_a_rule():
    gold_only = PointRule.model_validate(
        {
            **PROGRAM.point_rules["offline-amount"].model_dump(by_alias=True),
            "code": "gold-snacks",
            "name": "金卡小食3倍",
            "pointsPerUnit": 3,
            "tierCodes": ["gold"],
            "productScope": {"categoryCodes": ["SNACK"]},
        }
    )
    snack = [
        {
            "lineNo": 1,
            "sku": "TD0001",
            "categoryCode": "SNACK",
            "quantity": "1",
            "receivable": "10",
            "paid": "10",
            "pointsAmount": "10",
        }
    ]
    assert ("points", "金卡小食3倍", 30) in summary(earnings(order(lines=snack), "gold", [*RULES, gold_only], CATALOG))
    assert ("points", "线下门店1元1积分", 10) in summary(
        earnings(order(lines=snack), "base", [*RULES, gold_only], CATALOG)
    )
    dessert = [{**snack[0], "categoryCode": "DESSERT"}]
    assert ("points", "线下门店1元1积分", 10) in summary(
        earnings(order(lines=dessert), "gold", [*RULES, gold_only], CATALOG)
    )


def test_a_store_outside_every_scope_earns_nothing():
    assert earnings(order(store="NOWHERE"), "base", RULES, CATALOG) == []


def test_lines_of_one_group_and_rule_form_one_lot_with_a_breakdown():
    lines = [
        {"lineNo": n, "sku": "TD0001", "quantity": "2", "receivable": "50", "paid": "50", "pointsAmount": "50"}
        for n in (1, 2)
    ]
    points_lot = next(e for e in earnings(order(lines=lines), "base", RULES, CATALOG) if e.point_group == "points")
    assert [(line.line_no, line.points) for line in points_lot.lines] == [(1, 50), (2, 50)] and points_lot.points == 100


def test_the_formulas_with_the_spec_samples():
    # +500 earned, then -500 reversed: cumulative 0, available 0 (§8.2 sample)
    assert balances([(RecordType.TRANSACTION, 500, True), (RecordType.RETURN_REVERSAL, -500, True)]).available == 0
    # eight 交易积分 records: cumulative = available = 8600
    eight = balances([(RecordType.TRANSACTION, p, True) for p in (1000, 2000, 2000, 2000, 400, 400, 400, 400)])
    assert (eight.cumulative, eight.available, eight.expired) == (8600, 8600, 0)
    # redemptions and expiry lower available only; cancellation raises it; none touches cumulative
    account = balances(
        [
            (RecordType.TRANSACTION, 1000, True),
            (RecordType.REDEEM_COUPON, -300, False),
            (RecordType.REDEEM_CANCEL_RETURN, 300, False),
            (RecordType.EXPIRY, -200, False),
            (RecordType.BEHAVIOUR_DECREASE, -100, False),
        ]
    )
    assert (account.cumulative, account.available, account.expired, account.qualifying) == (1000, 700, 200, 1000)
    assert delta(RecordType.TRANSACTION, 1, False).qualifying == 0  # 成长值 under a non-upgrade rule


@pytest.mark.parametrize(
    ("record_type", "change"), [(RecordType.TRANSACTION, -5), (RecordType.EXPIRY, 5), (RecordType.REDEEM_GIFT, 0)]
)
def test_a_record_against_its_direction_is_refused(record_type, change):
    with pytest.raises(ValueError):
        delta(record_type, change, False)


@pytest.mark.parametrize(
    ("current", "qualifying", "target"),
    [
        ("base", 299, None),
        ("base", 300, "silver"),
        ("base", 1000, "gold"),  # base straight to gold: skipping allowed
        ("base", 5000, "platinum"),
        ("silver", 999, None),
        ("gold", 4999, None),
        ("gold", 1200, None),
        ("platinum", 9000, None),
    ],
)
def test_upgrade_to_the_highest_tier_whose_lower_bound_is_reached(current, qualifying, target):
    found = upgrade_target(PROGRAM, current, {"points": qualifying, "growth": 10_000})
    assert (found.code if found else None) == target


def test_amounts_stay_decimal():
    line = order().lines[0]
    assert isinstance(line.paid, Decimal) and line.points_amount == Decimal("500")
    assert KINDS["pointRule"].model is PointRule


@pytest.mark.parametrize(
    ("current", "qualifying", "outcome"),
    [
        ("gold", 1000, ("RETENTION", "gold")),
        ("gold", 4000, ("RETENTION", "gold")),
        ("gold", 999, ("DOWNGRADE", "silver")),
        ("gold", 299, ("DOWNGRADE", "base")),
        ("platinum", 5000, ("RETENTION", "platinum")),
        ("platinum", 1200, ("DOWNGRADE", "gold")),
        ("silver", 0, ("DOWNGRADE", "base")),
    ],
)
def test_when_a_tier_ends_it_is_kept_or_lowered_to_the_tier_the_accumulator_reaches(current, qualifying, outcome):
    from loyalty.domain.tiers import retention_outcome

    kind, tier = retention_outcome(PROGRAM, current, {"points": qualifying})
    assert (kind, tier.code) == outcome
