"""Notifications (业务通知, D-105): the domain events already on the bus become the messages members expect,
when the program switched them on. One request per event, keyed by what the event is about (the order, the
coupon, the tier record), so a redelivered event asks for the same message and gets it once.

- OrderAccrued -> pointsEarned, with the points of the notification's point group (none when it gave none);
- CouponIssued -> couponIssued, with the coupon's name, code and last day;
- TierChanged -> tierChanged, with the new tier's name.

The daily ones (points and coupons expiring, birthdays) read day indexes: services/messages/daily.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalty.domain.config import KINDS
from loyalty.domain.errors import NotFound
from loyalty.domain.messages import MessageSettingsInput, Notification
from loyalty.services.messages.sending import MessageRequest, MessageService
from loyalty.store import keys
from loyalty.store.config_repo import ConfigRepository
from loyalty.store.table import Item


@dataclass
class Notifier:
    messages: MessageService

    def send(self, tenant: str, detail_type: str, detail: dict[str, Any]) -> list[str]:
        """Deliver the message an event asks for, if any; the statuses of their records."""
        requests, settings = self.requests(tenant, detail_type, detail)
        return [self.messages.deliver(request, settings) for request in requests]

    def requests(
        self, tenant: str, detail_type: str, detail: dict[str, Any]
    ) -> tuple[list[MessageRequest], MessageSettingsInput | None]:
        """The message an event asks for, if its program switched the notification on, and the program's
        settings (read once, for the sender too)."""
        rule = None
        if detail_type == "CouponIssued":
            rule = self.messages.table.get(keys.coupon_rule(tenant, detail["ruleId"]), keys.RULE_SK, consistent=False)
            program_code = rule["rule"]["programCode"] if rule and detail.get("memberId") else None
        else:
            program_code = detail.get("programCode")
        if not program_code:
            return [], None
        settings = self.messages.settings.load(tenant, program_code)
        notifications, member_id = settings.notifications, detail["memberId"]
        request = None
        if rule is not None and notifications.coupon_issued and notifications.coupon_issued.enabled:
            request = self._coupon_issued(tenant, program_code, notifications.coupon_issued, detail, rule)
        elif detail_type == "OrderAccrued" and notifications.points_earned and notifications.points_earned.enabled:
            earned = notifications.points_earned
            points = int(detail.get("points", {}).get(earned.point_group_code, 0))
            if points > 0:
                values = {"points": points, "storeName": self._store_name(tenant, detail.get("storeCode"))}
                request = MessageRequest(
                    tenant,
                    program_code,
                    earned.template_code,
                    member_id,
                    f"pointsEarned#{detail['orderId']}",
                    values,
                    {"notification": "pointsEarned"},
                    earned.point_group_code,
                )
        elif detail_type == "TierChanged" and notifications.tier_changed and notifications.tier_changed.enabled:
            tier = self.messages.programs.load(tenant, program_code).tiers.get(detail["to"])
            request = MessageRequest(
                tenant,
                program_code,
                notifications.tier_changed.template_code,
                member_id,
                f"tierChanged#{detail['recordId']}",
                {"tierName": tier.name if tier else detail["to"]},
                {"notification": "tierChanged"},
            )
        return ([request] if request else []), settings

    def _coupon_issued(
        self, tenant: str, program_code: str, issued: Notification, detail: dict[str, Any], rule: Item
    ) -> MessageRequest:
        zone = self.messages.programs.load(tenant, program_code).zone
        last_day = datetime.fromisoformat(detail["validUntil"]).astimezone(zone).date().isoformat()
        return MessageRequest(
            tenant,
            program_code,
            issued.template_code,
            detail["memberId"],
            f"couponIssued#{detail['code']}",
            {"couponName": rule["rule"]["name"], "couponCode": detail["code"], "expiryDate": last_day},
            {"notification": "couponIssued", "campaignId": detail.get("campaignId", "")},
        )

    def _store_name(self, tenant: str, store_code: str | None) -> str | None:
        if not store_code:
            return None
        try:
            stored = ConfigRepository(self.messages.table).get(tenant, KINDS["store"], None, store_code)
        except NotFound:
            return store_code
        return str(getattr(stored.item, "name", store_code))
