"""Orders as received: stored once per (channel, order number), with the event that starts accrual."""

from __future__ import annotations

from loyalty.store import keys
from loyalty.store.table import Item, Table, TransactionCancelled, put


class OrderRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def receive(self, tenant: str, order: Item, outbox: list[dict]) -> Item | None:
        """Store the order and its OrderReceived event together. If the number is taken, return the order
        stored under it (the caller decides whether it is the same order retried) and write nothing."""
        item = {"PK": keys.order(tenant, order["channel"], order["orderNo"]), "SK": keys.ORDER_SK, **order}
        try:
            self.table.transact([put(item, "attribute_not_exists(PK)"), *outbox])
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                return cancelled.items[0] or self.get(tenant, order["channel"], order["orderNo"])
            raise
        return None

    def get(self, tenant: str, channel: str, order_no: str) -> Item | None:
        return self.table.get(keys.order(tenant, channel, order_no), keys.ORDER_SK)
