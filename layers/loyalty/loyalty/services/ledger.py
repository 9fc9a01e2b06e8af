"""Reading the points ledger: records with their lots' remaining points, and the open lots in FIFO order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty.clock import Clock, SystemClock
from loyalty.domain.errors import InvalidInput
from loyalty.domain.ledger import LotPage, LotView, PointRecordPage, PointRecordView, RecordType
from loyalty.ids import ulid_bound
from loyalty.store.ledger_repo import LedgerRepository
from loyalty.store.member_repo import MemberRepository
from loyalty.store.table import Table


@dataclass
class LedgerService:
    ledger: LedgerRepository
    members: MemberRepository
    clock: Clock

    def records(
        self,
        tenant: str,
        member_id: str,
        point_group: str | None,
        record_type: RecordType | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> PointRecordPage:
        self.members.items(tenant, member_id)  # 404 for an unknown member
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise InvalidInput("give a time with its offset", field=name)
        between = None
        if since or until:
            low = ulid_bound(int(since.timestamp() * 1000), upper=False) if since else "0"
            high = ulid_bound(int(until.timestamp() * 1000) - 1, upper=True) if until else "Z"
            between = (low, high)
        page = self.ledger.records(tenant, member_id, limit, cursor, between)
        remaining = {lot["recordId"]: lot["remaining"] for lot in self.ledger.open_lots(tenant, member_id)}
        items = [
            PointRecordView.model_validate(
                {**r, "id": r["recordId"], "remaining": remaining.get(r["recordId"], 0) if "lotSk" in r else None}
            )
            for r in page.items
            if (point_group is None or r["pointGroupCode"] == point_group)
            and (record_type is None or r["type"] == record_type.value)
        ]
        return PointRecordPage(items=items, next_cursor=page.next_cursor)

    def open_lots(
        self, tenant: str, member_id: str, point_group: str | None, limit: int = 100, cursor: str | None = None
    ) -> LotPage:
        """The lots that can still be spent, a page at a time: one past its expiry is expired, swept or not
        (D-051). Of every group, a page may hold fewer than `limit` and still a cursor (expired lots read)."""
        self.members.items(tenant, member_id)
        now = self.clock.now()
        page = self.ledger.lots_page(tenant, member_id, point_group, now, limit, cursor)
        lots = [LotView.model_validate(lot) for lot in page.items if datetime.fromisoformat(lot["expiresAt"]) >= now]
        return LotPage(items=lots, next_cursor=page.next_cursor)


def ledger_service(table: Table | None = None, clock: Clock | None = None) -> LedgerService:
    table = table or Table()
    return LedgerService(LedgerRepository(table), MemberRepository(table), clock or SystemClock())
