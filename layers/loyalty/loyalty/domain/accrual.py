"""Points for an order (积分规则 applied to 交易单明细): pure, so every rule has a unit test.

For each line and point group, the base point rules whose scope matches (store or store group, product,
category or product group, the member's tier at order time; empty scope = everything) are candidates;
the one giving most points applies: rules do not add up. Points per line = floor(base / unit) x points
per unit, where base is the line's points amount (amount mode) or quantity (quantity mode). A line
without a points amount uses its paid amount less the share paid with tenders that earn no points.
Lines earning in one group under one rule form one earning lot (docs/decisions.md, D-020).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from loyalty.domain.config import PointRule, ProductGroup, StoreGroup
from loyalty.domain.orders import OrderLine, OrderSubmission


@dataclass(frozen=True)
class Catalog:
    """What scope matching needs beyond the rules: the enabled groups, which of their members one order
    touches (read for it: a group can hold thousands), and which tenders earn."""

    store_groups: dict[str, StoreGroup] = field(default_factory=dict)
    product_groups: dict[str, ProductGroup] = field(default_factory=dict)
    earning_methods: frozenset[str] = frozenset()
    members: frozenset[tuple[str, str, str]] = frozenset()  # (group kind, group code, member code) found
    generations: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, code) -> the group's creation

    def store_in(self, group_code: str, store_code: str) -> bool:
        group = self.store_groups.get(group_code)
        return group is not None and (group.all_stores or ("storeGroup", group_code, store_code) in self.members)

    def product_in(self, group_code: str, sku: str) -> bool:
        group = self.product_groups.get(group_code)
        return group is not None and (group.all_products or ("productGroup", group_code, sku) in self.members)

    def lookups(
        self, store_code: str, skus: Iterable[str], store_groups: Iterable[str], product_groups: Iterable[str]
    ) -> list[tuple[str, str, str]]:
        """The memberships an order's scope checks need: its store in each enabled store group named, each
        of its products in each enabled product group named (groups of everything need none)."""
        wanted = [
            ("storeGroup", g, store_code) for g in sorted(set(store_groups)) if self._listed(self.store_groups, g)
        ]
        products = sorted(set(skus))
        for group in sorted(set(product_groups)):
            if self._listed(self.product_groups, group):
                wanted += [("productGroup", group, sku) for sku in products]
        return wanted

    @staticmethod
    def _listed(groups: dict, code: str) -> bool:
        return code in groups and not groups[code].everything


@dataclass(frozen=True)
class LinePoints:
    line_no: int
    points: int


@dataclass(frozen=True)
class Earning:
    """One earning lot to write: a point group, the rule that gave it, and its lines."""

    point_group: str
    rule: PointRule
    lines: tuple[LinePoints, ...]

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines)


def earnings(order: OrderSubmission, tier_code: str, rules: Iterable[PointRule], catalog: Catalog) -> list[Earning]:
    """Every lot the order earns, in a stable order (group, rule code), each with points > 0."""
    earning_share = _earning_share(order, catalog)
    best: dict[tuple[int, str], tuple[int, PointRule]] = {}
    for rule in sorted(rules, key=lambda r: r.code):
        if not _store_matches(rule, order.store_code, catalog) or (
            rule.tier_codes and tier_code not in rule.tier_codes
        ):
            continue
        for line in order.lines:
            if not _product_matches(rule, line, catalog):
                continue
            points = line_points(rule, line, earning_share)
            key = (line.line_no, rule.point_group_code)
            if points > best.get(key, (0, rule))[0]:
                best[key] = (points, rule)
    lots: dict[tuple[str, str], list[LinePoints]] = {}
    for (line_no, group), (points, rule) in sorted(best.items()):
        lots.setdefault((group, rule.code), []).append(LinePoints(line_no, points))
    rules_by_code = {rule.code: rule for _, rule in best.values()}
    return [Earning(group, rules_by_code[code], tuple(lines)) for (group, code), lines in sorted(lots.items())]


def categorised(order: OrderSubmission, categories: dict[str, str]) -> OrderSubmission:
    """The order with each line's category taken from the product master data (商品 -> 商品类别), so a
    category scope needs only the product code. A product the catalogue does not know keeps the category
    the channel sent, if any (D-047)."""
    lines = [
        line.model_copy(update={"category_code": categories[line.sku]}) if line.sku in categories else line
        for line in order.lines
    ]
    return order.model_copy(update={"lines": lines})


def needs_categories(rules: Iterable[PointRule]) -> bool:
    return any(rule.product_scope.category_codes for rule in rules)


def line_points(rule: PointRule, line: OrderLine, earning_share: Decimal = Decimal(1)) -> int:
    """floor(base / unit) x points per unit, never negative."""
    if rule.award_mode == "quantity":
        base = line.quantity
    elif line.points_amount is not None:
        base = line.points_amount
    else:
        base = line.paid * earning_share
    steps = (base / rule.unit).to_integral_value(rounding=ROUND_FLOOR)
    return max(0, int(steps)) * rule.points_per_unit


def _earning_share(order: OrderSubmission, catalog: Catalog) -> Decimal:
    """The share of the order paid with tenders that earn points (1 when no payments are given)."""
    total = sum((p.amount for p in order.payments), Decimal(0))
    if total == 0:
        return Decimal(1)
    earning = sum((p.amount for p in order.payments if p.method_code in catalog.earning_methods), Decimal(0))
    return earning / total


def _store_matches(rule: PointRule, store_code: str, catalog: Catalog) -> bool:
    scope = rule.store_scope
    if scope.store_codes:
        return store_code in scope.store_codes
    if scope.store_group_code:
        return catalog.store_in(scope.store_group_code, store_code)
    return True


def _product_matches(rule: PointRule, line: OrderLine, catalog: Catalog) -> bool:
    scope = rule.product_scope
    if scope.product_codes:
        return line.sku in scope.product_codes
    if scope.category_codes:
        return line.category_code in scope.category_codes
    if scope.product_group_code:
        return catalog.product_in(scope.product_group_code, line.sku)
    return True
