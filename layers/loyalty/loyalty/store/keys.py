"""Key builders. Every key starts with the tenant (`T#<tenant>#`), so no request can reach another
tenant's items and IAM can scope by leading key. The one exception is the API-key lookup item, which
is how a request finds its tenant in the first place (docs/decisions.md, D-006)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


def tenant_config(tenant: str) -> str:
    """Tenant-wide configuration: programs and master data (stores, products, groups, ...)."""
    return f"T#{tenant}#CONFIG"


def program(tenant: str, program_code: str) -> str:
    """One program's structure: tiers, tier rules, point groups, cost centers, point rules."""
    return f"T#{tenant}#PROGRAM#{program_code}"


def config_sk(kind: str, code: str) -> str:
    return f"{kind}#{code}"


def group_members(tenant: str, group_kind: str, group_code: str) -> str:
    """The members of one store or product group, an item each (a chain's group holds thousands): a scope
    check reads just the pairs an order needs."""
    return f"T#{tenant}#GROUP#{group_kind}#{group_code}"


GROUP_MEMBER_PREFIX = "MEMBER#"


def group_member_sk(code: str) -> str:
    return f"{GROUP_MEMBER_PREFIX}{code}"


def guard_sk(name: str) -> str:
    return f"guard#{name}"


def member(tenant: str, member_id: str) -> str:
    return f"T#{tenant}#M#{member_id}"


MEMBER_SK = "MEMBER"  # the profile; the member's other summary items start with it too


ACCOUNT_PREFIX = "MEMBER#ACCOUNT#"
TAG_PREFIX = "MEMBER#TAG#"  # read with the profile: a member's tags are part of the member
IDENTITY_PREFIX = "MEMBER#IDENTITY#"


def account_sk(point_group: str) -> str:
    return f"{ACCOUNT_PREFIX}{point_group}"


def identity_sk(channel: str, identity_type: str, value: str) -> str:
    return f"{IDENTITY_PREFIX}{channel}#{identity_type}#{value}"


PROFILE_CHANGE_PREFIX = "CHANGE#"
NOTE_PREFIX = "NOTE#"  # remarks on the member (备注), by ULID: newest first read in reverse
ACTIVITY_PREFIX = "ACT#"  # the member's timeline (行为记录), in the order things happened


def activity_sk(occurred_at: datetime, activity_id: str) -> str:
    return f"{ACTIVITY_PREFIX}{stamp(occurred_at)}#{activity_id}"


def profile_change_sk(change_id: str) -> str:
    return f"{PROFILE_CHANGE_PREFIX}{change_id}"


def tier_record_sk(record_id: str) -> str:
    return f"TIER#{record_id}"


RECORD_PREFIX = "REC#"
LOT_PREFIX = "LOT#"


def record_sk(record_id: str) -> str:
    """A point record (积分记录); ULIDs keep the ledger in time order."""
    return f"{RECORD_PREFIX}{record_id}"


def stamp(moment: datetime) -> str:
    """An aware moment in UTC, fixed width, so it sorts correctly inside sort keys."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def lot_sk(point_group: str, expires_at: datetime, earned_at: datetime, record_id: str) -> str:
    """An open earning lot; the sort key is the FIFO order: earliest expiry, then earliest earned."""
    return f"{LOT_PREFIX}{point_group}#{stamp(expires_at)}#{stamp(earned_at)}#{record_id}"


EXPIRY_SHARDS = 8  # what ends by the day in one program spreads over this many index partitions
PROGRAMS_INDEX = "PROGRAMS"  # GSI1 partition listing every program of every tenant, for the sweeps


def program_jobs(tenant: str, program_code: str) -> str:
    """A program's scheduled jobs, an item each (SK = the job): the day each has done work through and when it
    is due next, so an hourly run plans no day twice and reads one item per program (D-109)."""
    return f"T#{tenant}#JOBS#{program_code}"


def shard_of(member_id: str) -> int:
    return int(hashlib.sha256(member_id.encode()).hexdigest()[:8], 16) % EXPIRY_SHARDS


ENDS = {"LOT": "EXPIRES", "COUPON": "COUPON_ENDS", "TRANSFER": "TRANSFER_ENDS", "TIER": "TIER_ENDS"}


def ends_index(tenant: str, program_code: str, kind: str, shard: int) -> str:
    """GSI1 partition of what ends by the day in one program and shard, sorted by its last day (program time
    zone; GSI1SK = `<day>#...`): open point lots (LOT), open coupons (COUPON), coupons being transferred
    (TRANSFER), members whose tier ends (TIER). Sparse: a thing is in it only while open, so a sweep reads
    "everything up to yesterday" in one range of each shard, whatever days were missed (D-109)."""
    return f"T#{tenant}#{ENDS[kind]}#{program_code}#{shard}"


def through_day(day: str) -> tuple[str, str, str]:
    """The GSI1SK range of an ends_index partition that ended on `day` or before (query_index's sk_between)."""
    return ("GSI1SK", "0", f"{day}#~")


def on_day(day: str) -> str:
    """The GSI1SK prefix of what ends on `day` exactly (a notification about it)."""
    return f"{day}#"


def lot_index(
    tenant: str, program_code: str, member_id: str, expires_at: datetime, lot_sort_key: str
) -> dict[str, str]:
    """The GSI1 attributes that put an open lot in its program's expiry index (`expires_at` in the program's
    zone)."""
    day = expires_at.date().isoformat()
    return {
        "GSI1PK": ends_index(tenant, program_code, "LOT", shard_of(member_id)),
        "GSI1SK": f"{day}#{member_id}#{lot_sort_key}",
        "memberId": member_id,
    }


def tier_index(tenant: str, program_code: str, member_id: str, valid_until: datetime | None) -> dict[str, str]:
    """GSI1 attributes that put a member's profile in the index of tiers ending (none: never ends)."""
    if valid_until is None:
        return {}
    day = valid_until.date().isoformat()
    return {"GSI1PK": ends_index(tenant, program_code, "TIER", shard_of(member_id)), "GSI1SK": f"{day}#{member_id}"}


def order(tenant: str, channel: str, order_no: str) -> str:
    """An order, unique per tenant, channel and the channel's order number."""
    return f"T#{tenant}#ORDER#{channel}#{order_no}"


ORDER_SK = "ORDER"


SALE_ORDER, SALE_RETURN = "ORDER", "RETURN"


def member_sales(tenant: str, member_id: str) -> str:
    """GSI2 partition of a member's orders and returns, by when they happened."""
    return f"T#{tenant}#M#{member_id}#SALES"


def buyer_sales(tenant: str, buyer: str) -> str:
    """GSI2 partition of the non-member orders that named one phone number (hashed: no personal data in a
    key), so the service desk can find what a new member bought before registering."""
    return f"T#{tenant}#BUYER#{hashlib.sha256(buyer.encode()).hexdigest()[:32]}"


def sale_index(partition: str, at: datetime, kind: str, channel: str, number: str) -> dict[str, str]:
    return {"GSI2PK": partition, "GSI2SK": f"{stamp(at)}#{kind}#{channel}#{number}"}


def sale_key(tenant: str, sale_sort_key: str) -> tuple[str, str]:
    """The table key of the order or return a sale index entry points at (for a page's start key)."""
    _, kind, channel, number = sale_sort_key.split("#", 3)
    if kind == SALE_RETURN:
        return return_(tenant, channel, number), RETURN_SK
    return order(tenant, channel, number), ORDER_SK


def held_orders(tenant: str) -> str:
    """GSI1 partition of a tenant's orders held for review, sorted by when they were held."""
    return f"T#{tenant}#HELD_ORDERS"


def held_order_sk(held_at: str, channel: str, order_no: str) -> str:
    return f"{held_at}#{channel}#{order_no}"


CHANNEL_EARNING_SHARDS = 8  # a busy channel's orders spread their day's count over these items


def channel_earning(tenant: str, program: str, channel: str, day: str) -> str:
    """A channel's points earned in one day of its program (D-129), split over CHANNEL_EARNING_SHARDS items
    (`channel_earning_sk`), so thousands of tills' orders do not all write one item."""
    return f"T#{tenant}#CHANNEL_EARNING#{program}#{channel}#{day}"


def channel_earning_sk(shard: int) -> str:
    return f"SHARD#{shard}"


def daily_earning_sk(day: str) -> str:
    """In the member's partition: the points the member earned from orders on `day` (program zone), an
    attribute per point group."""
    return f"EARNED#{day}"


def order_spend(tenant: str, channel: str, order_no: str) -> str:
    """Points that paid an order: which member's which record, so a return of the order gives them back."""
    return f"T#{tenant}#ORDER_SPEND#{channel}#{order_no}"


def return_(tenant: str, channel: str, return_no: str) -> str:
    return f"T#{tenant}#RETURN#{channel}#{return_no}"


RETURN_SK = "RETURN"


def behaviour(tenant: str, channel: str, behaviour_id: str) -> str:
    """A behaviour a channel reported, once per channel and its id: what it earned is kept on it."""
    return f"T#{tenant}#BEHAVIOUR#{channel}#{behaviour_id}"


def behaviour_count_sk(rule_code: str, day: str) -> str:
    """How often a member's behaviour earned under a rule on one day (the daily cap is this item's condition)."""
    return f"BEHAVIOUR_COUNT#{rule_code}#{day}"


def phone_guard(tenant: str, phone: str) -> str:
    return f"T#{tenant}#PHONE#{phone}"


def registrations(tenant: str, month: str) -> str:
    """GSI2 partition of the members who registered in one month (UTC, `2026-11`), by time: the operators'
    member list reads it newest first, a month at a time. What is indexed is each member's 注册 timeline
    entry (written once), not the profile (written by every accrual)."""
    return f"T#{tenant}#REGISTERED#{month}"


def registration_index(tenant: str, member_id: str, registered_at: datetime, activity_id: str) -> dict[str, str]:
    moment = registered_at.astimezone(UTC)
    sort_key = f"{stamp(moment)}#{member_id}#{activity_id}"
    return {"GSI2PK": registrations(tenant, moment.strftime("%Y-%m")), "GSI2SK": sort_key}


MEMBER_SHARDS = 8  # a tenant's member index spreads over this many partitions, read in parallel


def members_index(tenant: str, shard: int) -> str:
    """GSI1 partition of one shard of a tenant's members (GSI1SK = member id): what a walk over a tenant's
    members reads (an audience's scan, the reconciliation), so its cost is the tenant's members, never the
    table's. The entry is the member's 注册 timeline item, written once."""
    return f"T#{tenant}#MEMBERS#{shard}"


def member_shard(member_id: str) -> int:
    return int(hashlib.sha256(member_id.encode()).hexdigest()[16:24], 16) % MEMBER_SHARDS


def member_index_entry(tenant: str, member_id: str) -> dict[str, str]:
    return {"GSI1PK": members_index(tenant, member_shard(member_id)), "GSI1SK": member_id}


def registration_key(tenant: str, sort_key: str) -> tuple[str, str]:
    """The table key of the 注册 entry a registrations index entry is (for a page's start key)."""
    moment, member_id, activity_id = sort_key.split("#")
    return member(tenant, member_id), f"{ACTIVITY_PREFIX}{moment}#{activity_id}"


def member_tag_sk(tag_code: str) -> str:
    return f"{TAG_PREFIX}{tag_code}"


def tag_members(tenant: str, tag_code: str) -> str:
    """GSI1 partition of the members holding a tag, by member id."""
    return f"T#{tenant}#TAG#{tag_code}"


def card_guard(tenant: str, card_no: str) -> str:
    return f"T#{tenant}#CARD#{card_no}"


def identity_guard(tenant: str, channel: str, identity_type: str, value: str) -> str:
    return f"T#{tenant}#IDENTITY#{channel}#{identity_type}#{value}"


GUARD_SK = "GUARD"


def outbox(tenant: str, event_id: str) -> str:
    """One item per event waiting for the stream to carry it to the bus (see services/events.py)."""
    return f"T#{tenant}#OUTBOX#{event_id}"


OUTBOX_SK = "EVENT"


def idempotency(tenant: str) -> str:
    return f"T#{tenant}#IDEMPOTENCY"


def api_key(key_hash: str) -> str:
    """A key issued before D-120 (no tenant in it): its global digest item."""
    return f"APIKEY#{key_hash}"


def api_key_secret(tenant: str, key_hash: str) -> str:
    """A key's secret, by its digest, inside its tenant (D-120)."""
    return f"T#{tenant}#APIKEY#{key_hash}"


def api_keys(tenant: str) -> str:
    """The tenant's key records and the actions on them."""
    return f"T#{tenant}#APIKEYS"


API_KEY_RECORD_PREFIX = "KEY#"


def api_key_record_sk(key_id: str) -> str:
    return f"{API_KEY_RECORD_PREFIX}{key_id}"


API_KEY_SK = "APIKEY"


# --- coupons (卡券中心) ----------------------------------------------------------------------------------

COUPON_RULES_INDEX = "COUPON_RULES"
RULE_SK = "RULE"
STOCK_SK = "STOCK"
COUPON_SK = "COUPON"
STOCK_SHARDS = 8  # a listed rule's stock is split over this many items: 5,000 claims/s make 625 writes/s per key


def coupon_rule(tenant: str, rule_id: str) -> str:
    """A coupon rule (优惠券规则) and its log (approval steps, 增发, listing) in one partition."""
    return f"T#{tenant}#COUPON_RULE#{rule_id}"


def coupon_rules_index(tenant: str) -> str:
    return f"T#{tenant}#{COUPON_RULES_INDEX}"


def log_sk(entry_id: str) -> str:
    return f"LOG#{entry_id}"


def coupon_stock(tenant: str, rule_id: str, shard: int) -> str:
    """One shard of a rule's stock, each its own partition key, so a flash claim spreads its writes."""
    return f"T#{tenant}#COUPON_STOCK#{rule_id}#{shard}"


def counter(tenant: str) -> str:
    return f"T#{tenant}#COUNTER"


def coupon(tenant: str, code: str) -> str:
    """An issued coupon, found by its code (券码); its transfers live beside it."""
    return f"T#{tenant}#COUPON#{code}"


def transfer_sk(transfer_id: str) -> str:
    return f"TRANSFER#{transfer_id}"


def member_coupons(tenant: str, member_id: str) -> str:
    """GSI2 partition of a member's coupons, sorted by status, then time of issue."""
    return f"T#{tenant}#M#{member_id}#COUPONS"


def member_coupon_index(tenant: str, member_id: str, status: str, issued_at: datetime, code: str) -> dict[str, str]:
    return {"GSI2PK": member_coupons(tenant, member_id), "GSI2SK": f"{status}#{stamp(issued_at)}#{code}"}


def coupon_owner_sk(owner_sk: str, status: str) -> str:
    """A coupon's GSI2SK after a status change: the same issue time and code under the new status."""
    return f"{status}#{owner_sk.split('#', 1)[1]}"


def coupon_expiry_index(tenant: str, program_code: str, code: str, until: datetime, kind: str = "COUPON") -> dict:
    """GSI1 attributes putting an open coupon in the index of coupons ending (on the day it ends, program
    zone); a coupon being transferred is in the index of transfers lapsing instead (kind TRANSFER)."""
    return {
        "GSI1PK": ends_index(tenant, program_code, kind, shard_of(code)),
        "GSI1SK": f"{until.date().isoformat()}#{code}",
    }


def claims_sk(rule_id: str, period: str = "", label: str = "") -> str:
    """A member's claims of a rule: all time (no period), or in one calendar period (D 2026-11-22, W, M, H, Y)."""
    return f"COUPON_CLAIMS#{rule_id}" + (f"#{period}#{label}" if period else "")


def used_sk(rule_id: str) -> str:
    """Marks that a member has used a coupon of a rule, so the dashboard counts each user once."""
    return f"COUPON_USED#{rule_id}"


def settlement(tenant: str, rule_id: str, day: str) -> str:
    """Redemptions (结算数据) of one rule on one day (program zone), for settlement with stores."""
    return f"T#{tenant}#COUPON_SETTLEMENT#{rule_id}#{day}"


def order_coupons(tenant: str, channel: str, order_no: str) -> str:
    """The coupons an order used, so a return of the order can give them back."""
    return f"T#{tenant}#ORDER_COUPONS#{channel}#{order_no}"


def coupon_job(tenant: str, job_id: str) -> str:
    """An operator's batch issuance (批量发券) and its per-row results."""
    return f"T#{tenant}#COUPON_JOB#{job_id}"


JOB_SK = "JOB"


def bulk_job(tenant: str, job_id: str) -> str:
    """An operator's bulk job (members tagged or noted, master data upserted) and its per-row results."""
    return f"T#{tenant}#BULK_JOB#{job_id}"


def job_row_sk(row: int) -> str:
    return f"ROW#{row:06d}"


# --- campaigns --------------------------------------------------------------------------------------------

CAMPAIGNS_INDEX = "CAMPAIGNS"
CAMPAIGN_SK = "CAMPAIGN"
CAMPAIGN_BUDGET_SK = "BUDGET"  # shard 0 of the budget: also what the campaign's run keeps (launch, progress)


def campaign_budget_sk(shard: int) -> str:
    """One shard of a campaign's budget (D-098): shard 0 is CAMPAIGN_BUDGET_SK."""
    return CAMPAIGN_BUDGET_SK if shard == 0 else f"{CAMPAIGN_BUDGET_SK}#{shard}"


def campaign(tenant: str, campaign_id: str) -> str:
    """A campaign (营销活动), its log and its budget (remaining, and what it gave) in one partition."""
    return f"T#{tenant}#CAMPAIGN#{campaign_id}"


def campaigns_index(tenant: str) -> str:
    return f"T#{tenant}#{CAMPAIGNS_INDEX}"


def campaigns_on(tenant: str, program_code: str, occasion: str) -> str:
    """GSI2 of the approved, not yet ended campaigns a kind of event (registration, order) may trigger in a
    program: one small query per event."""
    return f"T#{tenant}#CAMPAIGNS_ON#{program_code}#{occasion}"


def participation_sk(campaign_id: str, business_key: str) -> str:
    """A member's part in a campaign for one triggering event: the once-only marker and what it gave."""
    return f"CAMPAIGN#{campaign_id}#{business_key}"


def participation_limit_sk(campaign_id: str, label: str) -> str:
    """How often the member took part in a campaign in one calendar period ("ever" for no period)."""
    return f"CAMPAIGN_LIMIT#{campaign_id}#{label}"


BIRTHDAY_SK = "BIRTHDAY"  # a member's entry in the birthday index, apart from the profile


def birthdays(tenant: str, program_code: str, month: int) -> str:
    """GSI1 of a program's members born in a month, sorted by day (a birthday campaign's run reads the day's
    or the month's): sparse, and written only when a birthday is set, changed or erased, not with every
    profile update."""
    return f"T#{tenant}#BIRTHDAYS#{program_code}#{month:02d}"


def birthday_entry(tenant: str, program_code: str, member_id: str, birthday: str) -> dict:
    """The birthday index item of a member (`birthday`: an ISO date)."""
    _, month, day = birthday.split("-")
    return {
        "PK": member(tenant, member_id),
        "SK": BIRTHDAY_SK,
        "memberId": member_id,
        "birthday": birthday,
        "GSI1PK": birthdays(tenant, program_code, int(month)),
        "GSI1SK": f"{day}#{member_id}",
    }


LAST_PURCHASE_SK = "LAST_PURCHASE"  # a member's entry in the last-purchase index, apart from the profile


def last_purchases(tenant: str, program_code: str, day: str, shard: int) -> str:
    """GSI1 of a program's members whose last purchase fell on a day (the program's calendar), in shards: a
    "no purchase for N days" campaign reads the day N days ago. Written by an accrual that moves the last
    purchase to a later day, so a member is in one day's partition at a time."""
    return f"T#{tenant}#LAST_PURCHASE#{program_code}#{day}#{shard}"


def last_purchase_entry(tenant: str, program_code: str, member_id: str, day: str) -> dict:
    return {
        "PK": member(tenant, member_id),
        "SK": LAST_PURCHASE_SK,
        "memberId": member_id,
        "day": day,
        "GSI1PK": last_purchases(tenant, program_code, day, shard_of(member_id)),
        "GSI1SK": member_id,
    }


# --- audiences and batch runs -------------------------------------------------------------------------------

AUDIENCES_INDEX = "AUDIENCES"
AUDIENCE_SK = "AUDIENCE"
AUDIENCE_SHARDS = 8  # a frozen list spreads over this many partitions: a batch run reads them in parallel


def audience(tenant: str, audience_id: str) -> str:
    """An audience (群组) and its scans (previews, the snapshot): their counts and page markers."""
    return f"T#{tenant}#AUDIENCE#{audience_id}"


def audiences_index(tenant: str) -> str:
    return f"T#{tenant}#{AUDIENCES_INDEX}"


def audience_members(tenant: str, audience_id: str, shard: int) -> str:
    """One shard of an audience's frozen list: an item per member (SK = the member id), so that a batch run
    reads the shards in parallel and another audience's condition finds a member with one GetItem."""
    return f"T#{tenant}#AUDIENCE#{audience_id}#MEMBERS#{shard}"


def scan_run_sk(run_id: str) -> str:
    return f"SCAN#{run_id}"


def scan_page_sk(run_id: str, segment: int, page: int) -> str:
    return f"SCAN#{run_id}#PAGE#{segment:03d}#{page:06d}"


def batch_page_sk(shard: int, page: int) -> str:
    """That a page of a batch campaign's run is done (in the campaign's partition)."""
    return f"BATCH_PAGE#{shard}#{page:06d}"


def parked_page_sk(shard: int) -> str:
    """A page of a batch run left while the campaign is paused, sent again on resume."""
    return f"BATCH_PARKED#{shard}"


def batch_result_sk(member_id: str) -> str:
    """A member's outcome in a batch campaign's run (granted, or skipped and why), for the run report."""
    return f"RESULT#{member_id}"


def audience_shard(member_id: str) -> int:
    return int(hashlib.sha256(member_id.encode()).hexdigest()[8:16], 16) % AUDIENCE_SHARDS


# --- messages ---------------------------------------------------------------------------------------------

TEMPLATE_SK = "TEMPLATE"


def message_template(tenant: str, program_code: str, code: str) -> str:
    """A message template (消息模板) of a program, with its approval log."""
    return f"T#{tenant}#TEMPLATE#{program_code}#{code}"


def message_templates(tenant: str, program_code: str) -> str:
    """GSI1 of a program's message templates, by code."""
    return f"T#{tenant}#TEMPLATES#{program_code}"


MESSAGE_SETTINGS_SK = "MESSAGE_SETTINGS"
MESSAGE_SK = "MESSAGE"  # a send record (消息记录)
MESSAGE_BODY_SK = "BODY"  # what was sent, and to whom: kept the program's retention (TTL), erased with the member
MESSAGE_HOLD_SK = "HELD"  # a marketing message waiting out quiet hours, in its program's release index


def message_settings(tenant: str, program_code: str) -> str:
    """A program's message settings (消息设置): quiet hours, caps, senders, notifications."""
    return f"T#{tenant}#MSGSETTINGS#{program_code}"


def message(tenant: str, key: str) -> str:
    """A send record, by its business key (a notification and its occasion, a campaign and its member)."""
    return f"T#{tenant}#MESSAGE#{key}"


def member_messages(tenant: str, member_id: str) -> str:
    """GSI1 of a member's send records, by time (the member's message timeline)."""
    return f"T#{tenant}#M#{member_id}#MESSAGES"


def messages_of_day(tenant: str, day: str) -> str:
    """GSI2 of a tenant's send records of one UTC day, by time."""
    return f"T#{tenant}#MESSAGES#{day}"


def held_messages(tenant: str, program_code: str, day: str) -> str:
    """GSI1 of a program's held messages by the UTC day they may go (GSI1SK = that time, then the key)."""
    return f"T#{tenant}#HELD#{program_code}#{day}"


def message_caps(tenant: str, member_id: str) -> str:
    """A member's marketing counters, one item per calendar day and week (they expire after it)."""
    return f"T#{tenant}#M#{member_id}#MSGCAP"


def message_stats(tenant: str, day: str) -> str:
    """Counts of a UTC day's send records per program, template, status, in shards (SK = program#template#n)."""
    return f"T#{tenant}#MSGSTATS#{day}"


MESSAGE_STATS_SHARDS = 4


def message_stats_shard(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % MESSAGE_STATS_SHARDS


def message_days(tenant: str, program_code: str) -> str:
    """The days whose daily notifications were planned (SK = the day), so the schedule plans each once."""
    return f"T#{tenant}#MSGDAYS#{program_code}"


# --- reconciliation -----------------------------------------------------------------------------------------


def reconciliation(tenant: str, program_code: str) -> str:
    """A program's nightly reconciliation runs (SK = RUN#<day>), their coupon counts per rule and page markers."""
    return f"T#{tenant}#RECONCILE#{program_code}"


def reconcile_run_sk(run: str, rest: str = "") -> str:
    return f"RUN#{run}" + (f"#{rest}" if rest else "")


# --- migrations (platform-wide, not a tenant's: D-112) ------------------------------------------------------

MIGRATIONS = "MIGRATIONS"  # the run state of every migration, SK = its id


def migration_pages(migration_id: str, run_id: str) -> str:
    """The markers of the pages a run of a migration counted."""
    return f"MIGRATION#{migration_id}#{run_id}"


def migration_page_sk(segment: int, page: int) -> str:
    return f"PAGE#{segment:02d}#{page:06d}"
