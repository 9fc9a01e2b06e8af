"""The operators' member list (会员列表, spec social-hub §6.1): filters, look-ups and cursor paging, without a
search engine and without a scan (D-082).

Three ways in, each a bounded read:
- a phone, a card number or a channel identity: its guard names the member (one profile at most);
- a tag: the tag's index, a page of member ids, and their profiles in one batch read;
- otherwise the registrations index (GSI2, one partition per UTC month, of the members' 注册 timeline
  entries), newest first, from `registeredTo` (or now) back to `registeredFrom` (or the program's creation:
  nobody registered before it), and the page's profiles in one batch read.
Each page reads at most `READS` index pages; the filters (tier, status, store, channel, name) are applied to
what was read, so a page can be short, and its cursor says where the next read starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loyalty.clock import Clock, SystemClock
from loyalty.domain.config import KINDS
from loyalty.domain.errors import InvalidInput, NotFound
from loyalty.domain.members import MemberFilter, MemberSummary, MemberSummaryPage, normalize_phone
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.member_repo import MemberRepository
from loyalty.store.table import Item, Table, decode_cursor, encode_cursor

READS = 5  # index pages one request reads at most, whatever the filters leave
CURSOR = "M|"  # a registrations cursor: M|<month>|<sort key>; a tag cursor: T|<member id>


@dataclass
class MemberDirectory:
    table: Table
    members: MemberRepository
    config: ConfigRepository
    clock: Clock

    def find(
        self,
        tenant: str,
        where: MemberFilter,
        limit: int,
        cursor: str | None = None,
        phone: str | None = None,
        card_no: str | None = None,
        identity: tuple[str, str, str] | None = None,
        tag: str | None = None,
    ) -> MemberSummaryPage:
        """`identity` is (channel, type, value): an operator names the channel the identity is bound on."""
        if phone or card_no or identity:
            return self._by_guard(tenant, where, phone, card_no, identity)
        if tag:
            return self._by_tag(tenant, where, tag, limit, cursor)
        return self._by_registration(tenant, where, limit, cursor)

    def _by_guard(
        self,
        tenant: str,
        where: MemberFilter,
        phone: str | None,
        card_no: str | None,
        identity: tuple[str, str, str] | None,
    ) -> MemberSummaryPage:
        try:
            if phone:
                member_id = self.members.id_by_phone(tenant, normalize_phone(phone))
            elif card_no:
                member_id = self.members.id_by_card(tenant, card_no)
            else:
                assert identity is not None
                member_id = self.members.id_by_identity(tenant, *identity)
            profile = self.members.profile(tenant, member_id)
        except NotFound:
            return MemberSummaryPage(items=[])
        return MemberSummaryPage(items=[MemberSummary.of(profile)] if where.matches(profile) else [])

    def _by_tag(self, tenant: str, where: MemberFilter, tag: str, limit: int, cursor: str | None) -> MemberSummaryPage:
        try:
            self.config.get(tenant, KINDS["tag"], None, tag)
        except NotFound:
            raise NotFound(f"no tag {tag!r}", code="TAG_NOT_FOUND") from None
        after = decode_cursor(cursor, "T|").removeprefix("T|") if cursor else None
        found: list[Item] = []
        for _ in range(READS):
            tagged, last = self.members.with_tag(tenant, tag, limit, after)
            profiles = self._profiles(tenant, [entry["GSI1SK"] for entry in tagged])
            for entry in tagged:
                profile = profiles.get(entry["GSI1SK"])
                if profile and where.matches(profile):
                    found.append(profile)
                    if len(found) == limit:
                        more = entry is not tagged[-1] or last
                        return _page(found, f"T|{entry['GSI1SK']}" if more else None)
            after = last
            if not last:
                return _page(found, None)
        return _page(found, f"T|{after}")

    def _by_registration(self, tenant: str, where: MemberFilter, limit: int, cursor: str | None) -> MemberSummaryPage:
        now = self.clock.now()
        upper = min(where.registered_to or now, now).astimezone(UTC)
        lower = where.registered_from or self._opened(tenant, where.program_code)
        month, start = (upper.strftime("%Y-%m"), None)
        if cursor:
            month, start = _resume(decode_cursor(cursor, CURSOR))
        found: list[Item] = []
        for _ in range(READS):
            if month < lower.astimezone(UTC).strftime("%Y-%m"):
                return _page(found, None)
            partition = keys.registrations(tenant, month)
            entries, last = self.table.query_index(
                "GSI2",
                partition,
                limit=limit,
                start=_start(tenant, partition, start) if start else None,
                pk_attribute="GSI2PK",
                newest_first=True,
            )
            profiles = self._profiles(tenant, [entry["memberId"] for entry in entries])
            for entry in entries:
                profile = profiles.get(entry["memberId"])
                if profile and where.matches(profile):
                    found.append(profile)
                    if len(found) == limit:
                        return _page(found, f"{CURSOR}{month}|{entry['GSI2SK']}")
            if last:
                start = last["GSI2SK"]["S"]
            else:
                month, start = _previous(month), None
        return _page(found, f"{CURSOR}{month}|{start or ''}")

    def _profiles(self, tenant: str, member_ids: list[str]) -> dict[str, Item]:
        """The profiles of a page's members, by id, in one batch read (up to 100)."""
        found = self.table.get_many([(keys.member(tenant, m), keys.MEMBER_SK) for m in member_ids], consistent=False)
        return {item["memberId"]: item for item in found.values()}

    def _opened(self, tenant: str, program_code: str | None) -> datetime:
        """When the earliest of the tenant's programs (or the one asked for) was created."""
        created: list[datetime] = []
        cursor = None
        while True:  # every program, not the first page of them
            programs, cursor = self.config.list_page(tenant, KINDS["program"], None, 100, cursor)
            created += [datetime.fromisoformat(p.created_at) for p in programs if program_code in (None, p.item.code)]
            if not cursor:
                return min(created, default=self.clock.now())


def _page(profiles: list[Item], cursor: str | None) -> MemberSummaryPage:
    return MemberSummaryPage(
        items=[MemberSummary.of(p) for p in profiles], next_cursor=encode_cursor(cursor) if cursor else None
    )


def _previous(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def _resume(sort_key: str) -> tuple[str, str | None]:
    parts = sort_key.removeprefix(CURSOR).split("|")
    if len(parts) != 2 or len(parts[0]) != 7:
        raise InvalidInput("the cursor belongs to another listing", code="INVALID_CURSOR", field="cursor")
    return parts[0], parts[1] or None


def _start(tenant: str, partition: str, sort_key: str) -> dict[str, Any]:
    if sort_key.count("#") != 2:
        raise InvalidInput("the cursor belongs to another listing", code="INVALID_CURSOR", field="cursor")
    pk, sk = keys.registration_key(tenant, sort_key)
    return {"PK": {"S": pk}, "SK": {"S": sk}, "GSI2PK": {"S": partition}, "GSI2SK": {"S": sort_key}}


def member_directory(table: Table | None = None, clock: Clock | None = None) -> MemberDirectory:
    table = table or Table()
    return MemberDirectory(table, MemberRepository(table), ConfigRepository(table), clock or SystemClock())
