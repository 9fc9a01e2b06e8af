"""`make run KEEP=1` on the table an earlier version left (issue 24, D-112): the stack keeps its table between
runs, and a stack of newer code started on that table runs the migrations it has not had, through its queue,
while it serves. The earlier version is played by editing the kept file: a member without a card number,
and the card-number migration not yet run."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import start_stack

pytestmark = pytest.mark.e2e


def stopped(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return
        time.sleep(0.1)
    raise AssertionError("the stack did not stop")


def as_an_earlier_version_left_it(kept: Path, member_id: str) -> None:
    with gzip.open(kept, "rt", encoding="utf-8") as kept_lines:
        lines = [json.loads(line) for line in kept_lines]
    edited = []
    for item in lines:
        if item["PK"]["S"] == "MIGRATIONS" and item["SK"]["S"] == "003-card-numbers":
            continue  # that version had no such migration
        if item["PK"]["S"] == f"T#demo#M#{member_id}" and item["SK"]["S"] == "MEMBER":
            card = item.pop("cardNo")["S"]
        edited.append(item)
    edited = [i for i in edited if i["PK"]["S"] != f"T#demo#CARD#{card}"]
    with gzip.open(kept, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in edited)


def test_a_stack_started_on_an_earlier_table_keeps_its_data_and_keys_and_runs_the_pending_migration(tmp_path):
    kept = tmp_path / "table.jsonl.gz"
    first = start_stack(tmp_path, "--keep-data", str(kept))
    stack = next(first)
    key = stack.info["apiKeys"]["pos"]
    status, member = stack.request("POST", "/v1/members", {"programCode": "DEMO", "phone": "13800138000"}, key)
    assert status == 201, member
    migrations = stack.request("GET", "/_local/migrations")[1]["migrations"]
    assert {m["status"] for m in migrations} == {"done"}  # a fresh table: nothing older to bring forward
    stopped(stack.pid)
    next(first, None)
    assert kept.exists()
    as_an_earlier_version_left_it(kept, member["id"])

    second = start_stack(tmp_path, "--keep-data", str(kept))  # the same state file: the same keys
    stack = next(second)
    try:
        assert stack.info["apiKeys"]["pos"] == key
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {m["id"]: m for m in stack.request("GET", "/_local/migrations")[1]["migrations"]}
            if states["003-card-numbers"]["status"] == "done":
                break
            time.sleep(0.5)
        assert states["003-card-numbers"]["status"] == "done" and states["003-card-numbers"]["changed"] == 1
        status, view = stack.request("GET", f"/v1/members/{member['id']}", None, key)
        assert status == 200 and len(view["cardNo"]) == 12
        found = stack.request("GET", f"/v1/members/lookup?cardNo={view['cardNo']}", None, key)
        assert found[0] == 200 and found[1]["id"] == member["id"]
    finally:
        next(second, None)
