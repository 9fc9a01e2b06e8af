"""Configuration use cases (operator API): thin, because the repository's writes carry the rules."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from loyalty.clock import Clock, SystemClock
from loyalty.domain.accrual import Catalog
from loyalty.domain.config import KINDS, ConfigItem, Kind, Program
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.program import ProgramConfig
from loyalty.store import keys
from loyalty.store.config_repo import ENABLED, ConfigRepository, Stored
from loyalty.store.table import Table

PROGRAM_CACHE_SECONDS = 30.0
MEMBERSHIP_CACHE = 100_000  # answers of "is this store (product) in that enabled group": some 20 MB at most


def open_store(repository: ConfigRepository, tenant: str, code: str, field: str = "storeCode") -> Stored:
    """The store a sale, a registration or a coupon redemption names (D-130): 422 UNKNOWN_STORE when the tenant
    has none, 409 STORE_CLOSED when it is closed (it takes no new business; returns of its sales still do)."""
    try:
        store = repository.get(tenant, KINDS["store"], None, code)
    except NotFound:
        raise InvalidInput(f"no store {code!r}", code="UNKNOWN_STORE", field=field) from None
    if getattr(store.item, "status", "open") == "closed":
        raise Conflict(f"the store {code!r} is closed", code="STORE_CLOSED", field=field)
    return store


@dataclass
class ConfigService:
    repository: ConfigRepository
    clock: Clock

    def create(self, tenant: str, kind: Kind, program: str | None, item: ConfigItem) -> Stored:
        return self.repository.create(tenant, kind, program, item, self.clock.now())

    def get(self, tenant: str, kind: Kind, program: str | None, code: str) -> Stored:
        return self.repository.get(tenant, kind, program, code)

    def list_page(
        self, tenant: str, kind: Kind, program: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Stored], str | None]:
        return self.repository.list_page(tenant, kind, program, limit, cursor)

    def replace(self, tenant: str, kind: Kind, program: str | None, code: str, item: ConfigItem) -> Stored:
        return self.repository.replace(tenant, kind, program, code, item, self.clock.now())

    def delete(self, tenant: str, kind: Kind, program: str | None, code: str) -> None:
        self.repository.delete(tenant, kind, program, code)

    def enable(self, tenant: str, kind: Kind, code: str) -> Stored:
        return self.repository.enable(tenant, kind, code, self.clock.now())

    def add_member(self, tenant: str, group_kind: str, group_code: str, code: str) -> bool:
        """Put a store (product) in a draft group; False when it was in it."""
        return self.repository.change_member(tenant, group_kind, group_code, code, True, self.clock.now())

    def remove_member(self, tenant: str, group_kind: str, group_code: str, code: str) -> bool:
        return self.repository.change_member(tenant, group_kind, group_code, code, False, self.clock.now())


class ProgramLoader:
    """Loads a whole program (two reads) and keeps it briefly: configuration changes rarely, orders often."""

    def __init__(self, repository: ConfigRepository, ttl_seconds: float = PROGRAM_CACHE_SECONDS) -> None:
        self.repository = repository
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str], tuple[float, ProgramConfig]] = {}

    def load(self, tenant: str, program_code: str) -> ProgramConfig:
        key = (tenant, program_code)
        cached = self._cache.get(key)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        program = self.repository.get(tenant, KINDS["program"], None, program_code)
        assert isinstance(program.item, Program)
        items = self.repository.program_items(tenant, program_code)
        config = ProgramConfig.from_items(
            program.item, program.has_members, [(i["kind"], i["data"]) for i in items if "kind" in i]
        )
        self._cache[key] = (time.monotonic(), config)
        return config

    def forget(self, tenant: str, program_code: str) -> None:
        self._cache.pop((tenant, program_code), None)


class CatalogLoader:
    """The master data that scope matching and payments need (enabled groups, payment methods), per tenant,
    kept as briefly as programs are."""

    def __init__(self, repository: ConfigRepository, ttl_seconds: float = PROGRAM_CACHE_SECONDS) -> None:
        self.repository = repository
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, TenantCatalog]] = {}
        # Whether a store (product) is in an enabled group: an enabled group's members never change (frozen;
        # a group holding members cannot be deleted, and one re-created under its code is another
        # generation, its creation time), so an answer stays true; kept without a time limit, the oldest
        # dropped first past MEMBERSHIP_CACHE answers.
        self._memberships: dict[tuple[str, str, str, str, str], bool] = {}

    def scoped(
        self,
        tenant: str,
        catalog: Catalog,
        wanted: list[tuple[str, str, str]],
        category_skus: list[str] | None = None,
    ) -> tuple[Catalog, dict[str, str]]:
        """What an order's scope checks read, in one batch read (a round trip per 100 keys): the group
        memberships `wanted` (Catalog.lookups), and the categories of `category_skus`, if asked for."""
        products = list(dict.fromkeys(category_skus or []))

        def answer(kind: str, group: str, code: str) -> tuple[str, str, str, str, str]:
            return tenant, kind, group, catalog.generations.get((kind, group), ""), code

        unknown = [pair for pair in wanted if answer(*pair) not in self._memberships]
        locations = [self.repository.location(tenant, KINDS["product"], sku) for sku in products]
        locations += [
            (keys.group_members(tenant, kind, group), keys.group_member_sk(code)) for kind, group, code in unknown
        ]
        found: dict[tuple[str, str], dict] = {}
        for start in range(0, len(locations), 100):
            found |= self.repository.table.get_many(locations[start : start + 100], consistent=False)
        for kind, group, code in unknown:
            if len(self._memberships) >= MEMBERSHIP_CACHE:
                self._memberships.pop(next(iter(self._memberships)))  # the oldest answer goes first
            location = (keys.group_members(tenant, kind, group), keys.group_member_sk(code))
            self._memberships[answer(kind, group, code)] = location in found
        members = frozenset(pair for pair in wanted if self._memberships[answer(*pair)])
        categories: dict[str, str] = {}
        for sku, location in zip(products, locations, strict=False):
            category = (found.get(location) or {}).get("data", {}).get("categoryCode")
            if category:
                categories[sku] = category
        return replace(catalog, members=members), categories

    def load(self, tenant: str) -> TenantCatalog:
        cached = self._cache.get(tenant)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]

        def all_of(kind: str) -> list[Stored]:
            items, cursor = self.repository.list_page(tenant, KINDS[kind], None, 1000, None)
            while cursor:
                more, cursor = self.repository.list_page(tenant, KINDS[kind], None, 1000, cursor)
                items += more
            return items

        methods = {s.item.code: s.item for s in all_of("paymentMethod")}
        store_groups = [s for s in all_of("storeGroup") if s.status == ENABLED]
        product_groups = [s for s in all_of("productGroup") if s.status == ENABLED]
        catalog = TenantCatalog(
            catalog=Catalog(
                store_groups={s.item.code: s.item for s in store_groups},  # type: ignore[misc]
                product_groups={s.item.code: s.item for s in product_groups},  # type: ignore[misc]
                generations={(s.kind.name, s.item.code): s.created_at for s in store_groups + product_groups},
                earning_methods=frozenset(code for code, m in methods.items() if getattr(m, "earns_points", False)),
            ),
            payment_methods=frozenset(methods),
        )
        self._cache[tenant] = (time.monotonic(), catalog)
        return catalog


@dataclass(frozen=True)
class TenantCatalog:
    catalog: Catalog
    payment_methods: frozenset[str]


def config_service(table: Table | None = None, clock: Clock | None = None) -> ConfigService:
    return ConfigService(ConfigRepository(table or Table()), clock or SystemClock())
