"""The local stack with 1,000 programs in 50 tenants through its hourly run (issue 24): before, the run's one
invocation planned every program and the stack stopped answering for half an hour; now a member read must
keep answering in under a second (p95) while the programs' runs go through the queues.

    python -m tests.perf.tenants [--tenants 50] [--programs-per-tenant 20] [--minutes 60]

It starts the stack as `make run` does (moto), makes the tenants (POST /_local/tenants: each seeded like the
demo, its program DEMO) and their other programs over the admin API, runs the four scheduled jobs once (the
functions loaded, the programs' marks written), then moves the clock a day on, so that the scheduler fires
them with every program due again, while a keep-alive client reads one member as fast as it answers, until
the queues are empty. It prints the reads' latencies and how long the run took.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3

from tests.e2e.conftest import KeepAlive, start_stack

SCHEDULES = ("expiry-sweep-hourly", "tier-sweep-hourly", "campaign-days-hourly", "messages-release-held")
QUEUES = ("ExpiryQueue", "TierQueue", "CampaignEventQueue", "MessageQueue")


def waiting(sqs: Any, urls: list[str]) -> int:
    """Messages in the queues, visible or in flight."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    return sum(
        int(value)
        for url in urls
        for value in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"].values()
    )


def run(tenants: int, per_tenant: int, minutes: float) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        stacks = start_stack(Path(tmp))
        stack = next(stacks)
        try:
            return measure(stack, tenants, per_tenant, minutes)
        finally:
            next(stacks, None)


def measure(stack: Any, tenants: int, per_tenant: int, minutes: float) -> list[str]:
    started = time.monotonic()
    member_id, reader_key = "", ""
    for n in range(tenants):
        made = stack.with_tenant(f"brand{n:02d}").info
        operator = KeepAlive(stack.base, made["apiKeys"]["operator"])
        for p in range(1, per_tenant):
            body = {"code": f"P{p:02d}", "name": f"计划 {p}", "timeZone": "Asia/Shanghai"}
            assert operator.json("POST", "/v1/admin/programs", body)[0] == 201
        if n == 0:
            reader_key = made["apiKeys"]["pos"]
            pos = KeepAlive(stack.base, reader_key)
            member_id = pos.json("POST", "/v1/members", {"programCode": "DEMO", "phone": "13800138000"})[1]["id"]
    setup = time.monotonic() - started
    sqs = boto3.client(
        "sqs",
        endpoint_url=stack.info["emulatorEndpoint"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # nosec B106: the emulator takes any
    )
    urls = [stack.info["queues"][name] for name in QUEUES]
    latencies: list[float] = []
    stop = threading.Event()

    def read() -> None:
        client = KeepAlive(stack.base, reader_key)
        while not stop.is_set():
            begun = time.perf_counter()
            status, _ = client.json("GET", f"/v1/members/{member_id}")
            latencies.append(time.perf_counter() - begun)
            assert status == 200, status

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(5)  # reads before the run, for the baseline
    before = len(latencies)
    began = time.monotonic()
    for schedule in SCHEDULES:  # every program is due: its first day
        assert stack.request("POST", f"/_local/schedules/{schedule}")[0] == 200
    time.sleep(2)
    left = waiting(sqs, urls)
    while left and time.monotonic() - began < minutes * 60:
        time.sleep(min(60.0, minutes * 60 - (time.monotonic() - began)))
        left = waiting(sqs, urls)
        so_far = sorted(latencies[before:])
        print(f"  {time.monotonic() - began:.0f} s: {left} messages waiting; reads so far p95 "
              f"{so_far[int(0.95 * len(so_far))] * 1000:.0f} ms", flush=True)  # fmt: skip
    took = time.monotonic() - began
    stop.set()
    reader.join()
    during = sorted(latencies[before:])
    idle = sorted(latencies[:before])

    def p(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    ended = "ended" if not left else f"stopped after {minutes} minutes with {left} messages still waiting"
    return [
        f"{tenants} tenants, {tenants * per_tenant:,} programs (set up in {setup:.0f} s); the four jobs' hourly run"
        f" (every program due) {ended}, {took:.0f} s through the queues",
        "",
        "| member reads | count | median, ms | p95, ms | max, ms |",
        "|---|---|---|---|---|",
        f"| before the run | {len(idle)} | {statistics.median(idle) * 1000:.0f} | {p(idle, 0.95):.0f} | "
        f"{idle[-1] * 1000:.0f} |",
        f"| during the run | {len(during)} | {statistics.median(during) * 1000:.0f} | {p(during, 0.95):.0f} | "
        f"{during[-1] * 1000:.0f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--programs-per-tenant", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=60, help="stop measuring after this long")
    args = parser.parse_args()
    print("\n6. The local stack through an hourly run of many programs\n")
    print("\n".join(run(args.tenants, args.programs_per_tenant, args.minutes)))


if __name__ == "__main__":
    main()
