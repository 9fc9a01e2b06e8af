"""Configuration use cases (operator API): thin, because the repository's writes carry the rules."""

from __future__ import annotations

import time
from dataclasses import dataclass

from loyalty.clock import Clock, SystemClock
from loyalty.domain.accrual import Catalog
from loyalty.domain.config import KINDS, ConfigItem, Kind, Program
from loyalty.domain.program import ProgramConfig
from loyalty.store.config_repo import ENABLED, ConfigRepository, Stored
from loyalty.store.table import Table

PROGRAM_CACHE_SECONDS = 30.0


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

    def categories(self, tenant: str, skus: list[str]) -> dict[str, str]:
        """The master-data category of each of these products that has one (read, not cached: a chain has
        more products than a function should hold)."""
        products = self.repository.get_many(tenant, KINDS["product"], None, skus)
        categories = {code: getattr(p.item, "category_code", None) for code, p in products.items()}
        return {code: category for code, category in categories.items() if category}

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
        catalog = TenantCatalog(
            catalog=Catalog(
                store_groups={s.item.code: s.item for s in all_of("storeGroup") if s.status == ENABLED},  # type: ignore[misc]
                product_groups={s.item.code: s.item for s in all_of("productGroup") if s.status == ENABLED},  # type: ignore[misc]
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
