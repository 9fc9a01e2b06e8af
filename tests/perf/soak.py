"""`make bench`: the local stack under steady traffic. Starts `python -m infra.local` as `make run` does and
drives it over HTTP with one keep-alive connection for a fixed number of mixed requests (not for a fixed
time), then prints the stack's resident memory after 2,000 and after every request, and the median latency
of register / post order / redeem / claim over the first and the last 1,000 requests (issue 11).

`python -m tests.perf.soak [--requests 20000] [--engine moto|dynamodb-local]`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.e2e.conftest import KeepAlive, start_stack

MEASURED = ("register", "post order", "redeem", "claim")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Client(KeepAlive):
    def timed(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any, float]:
        started = time.perf_counter()
        status, payload = self.json(method, path, body, key)
        return status, payload, time.perf_counter() - started


class Traffic:
    """A repeating cycle of ten requests a shop's channels make: register, order, reads, a claim, a coupon
    check and a spend of points a member earned some cycles earlier."""

    def __init__(self, client: Client, info: dict[str, Any]) -> None:
        self.client, self.keys = client, info["apiKeys"]
        self.rule_id = self._big_coupon_rule()
        self.members: list[str] = []

    def _big_coupon_rule(self) -> str:
        """The demo 满100减20 rule with enough stock that every claim of the run succeeds."""
        operator = self.keys["operator"]
        _, rules, _ = self.client.timed("GET", "/v1/admin/coupon-rules", operator)
        rule_id = str(next(r["ruleId"] for r in rules["items"] if r["status"] == "listed"))
        restock = {"quantity": 1_000_000, "reason": "soak benchmark"}
        status, _, _ = self.client.timed("POST", f"/v1/admin/coupon-rules/{rule_id}/restocks", operator, restock)
        assert status == 201, status
        return rule_id

    def cycle(self, n: int) -> Iterator[tuple[str, int, float]]:
        pos, mini = self.keys["pos"], self.keys["miniProgram"]
        phone = f"139{n:08d}"
        status, member, t = self.client.timed("POST", "/v1/members", pos, {"programCode": "DEMO", "phone": phone})
        yield "register", status, t
        member_id = member["id"]
        self.members.append(member_id)
        line = {"lineNo": 1, "sku": "TD0001", "quantity": "1", "receivable": "120", "paid": "120"}
        order = {
            "programCode": "DEMO",
            "orderNo": f"SOAK-{n}",
            "member": {"id": member_id},
            "storeCode": "SH001",
            "orderedAt": "2026-11-22T12:00:00+08:00",
            "lines": [{**line, "pointsAmount": "120"}],
        }
        yield "post order", *self._status(self.client.timed("POST", "/v1/orders", pos, order))
        yield "get member", *self._status(self.client.timed("GET", f"/v1/members/{member_id}", pos))
        claimed = self.client.timed("POST", f"/v1/members/{member_id}/coupons", mini, {"ruleId": self.rule_id})
        yield "claim", *self._status(claimed)
        earlier = self.members[max(0, len(self.members) - 5)]  # its order has been accrued by now
        spend = {"pointGroupCode": "points", "points": 10, "purpose": "gift"}
        yield "redeem", *self._status(self.client.timed("POST", f"/v1/members/{earlier}/redemptions", pos, spend))
        yield "get order", *self._status(self.client.timed("GET", f"/v1/orders/SOAK-{n}", pos))
        yield "list coupons", *self._status(self.client.timed("GET", f"/v1/members/{member_id}/coupons", pos))
        code = claimed[1]["code"] if claimed[0] == 201 else "0000000000000000"
        check = {"codes": [code], "orderNo": f"SOAK-{n}", "storeCode": "SH001", "orderAmount": "120"}
        yield "validate coupon", *self._status(self.client.timed("POST", "/v1/coupons/validate", pos, check))
        yield "point records", *self._status(self.client.timed("GET", f"/v1/members/{earlier}/point-records", pos))
        yield "lookup", *self._status(self.client.timed("GET", f"/v1/members/lookup?phone={phone}", pos))

    @staticmethod
    def _status(answer: tuple[int, Any, float]) -> tuple[int, float]:
        return answer[0], answer[2]


@contextmanager
def running_stack(engine: str) -> Iterator[Any]:
    with tempfile.TemporaryDirectory() as tmp:
        yield from start_stack(Path(tmp), "--engine", engine)


def run(requests: int, engine: str) -> dict[str, Any]:
    with running_stack(engine) as stack:
        client = Client(stack.base)
        traffic = Traffic(client, stack.info)
        indexed: list[tuple[int, str, float]] = []
        statuses: dict[tuple[str, int], int] = defaultdict(int)
        memory: dict[int, float] = {0: rss_mb(stack.pid)}
        done, n, started = 0, 0, time.monotonic()
        while done < requests:
            for op, status, seconds in traffic.cycle(n):
                indexed.append((done, op, seconds))
                statuses[(op, status)] += 1
                done += 1
                if done in (1_000, 2_000, 5_000, 10_000) or done == requests:
                    memory[done] = rss_mb(stack.pid)
                if done >= requests:
                    break
            n += 1
        elapsed = time.monotonic() - started

    def median_ms(op: str, first: bool) -> float:
        window = [s for i, o, s in indexed if o == op and (i < 1_000 if first else i >= requests - 1_000)]
        return statistics.median(window) * 1000 if window else float("nan")

    return {
        "engine": engine,
        "requests": requests,
        "seconds": elapsed,
        "memory": memory,
        "latency": {op: (median_ms(op, True), median_ms(op, False)) for op in MEASURED},
        "statuses": dict(statuses),
    }


def report(result: dict[str, Any]) -> str:
    memory, requests = result["memory"], result["requests"]
    lines = [
        f"## Local stack under traffic: {requests} mixed requests on {result['engine']} "
        f"({result['seconds']:.0f} s, one keep-alive connection)",
        "",
        "| after requests | stack resident memory (MB) |",
        "|---|---|",
        *(f"| {n} | {mb:.0f} |" for n, mb in sorted(memory.items())),
        "",
    ]
    if 2_000 in memory and requests > 2_000:
        ratio = memory[requests] / memory[2_000]
        lines.append(f"Memory after {requests} / after 2000: {ratio:.2f}x (target < 1.5x, and < 600 MB).")
        lines.append("")
    lines += ["| operation | median ms, first 1000 | median ms, last 1000 | last / first |", "|---|---|---|---|"]
    for op, (first, last) in result["latency"].items():
        lines.append(f"| {op} | {first:.1f} | {last:.1f} | {last / first:.2f}x |")
    answers = ", ".join(f"{op} {status}: {count}" for (op, status), count in sorted(result["statuses"].items()))
    lines += ["", f"Answers: {answers}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--engine", choices=["moto", "dynamodb-local"], default="moto")
    args = parser.parse_args()
    print(report(run(args.requests, args.engine)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
