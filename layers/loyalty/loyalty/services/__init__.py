"""Use cases: load, decide with domain/, persist with store/, publish events. Idempotent by business key."""
