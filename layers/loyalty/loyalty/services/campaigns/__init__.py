"""Campaigns (营销活动): operators write and approve them (admin), events make members take part (engine).
Effects go through the points and coupon engines; nothing here writes a lot, a record or a coupon."""
