"""Cold start per function, as `make build` packages it (sam build, then bytecode compiled into the artifact).

For each function: the median wall time of a fresh Python process that imports the handler module from
the function's folder and the layer, and creates the DynamoDB client every function uses; beside it, in
the same run, the floor: a fresh process that only imports boto3 and creates one DynamoDB client. boto3
comes from the same place for both (on Lambda the runtime provides it). Also each function's library floor:
a fresh process loading just the libraries that function's import loads (boto3, pydantic, the Powertools
utilities it uses), so that what the project's own modules add is a figure of its own. Each process runs isolated (-I,
no user site), with the environment the template gives the function. Also the package size (function
folder + layer), and the same import without the precompiled bytecode, to show what shipping it saves.

And the first request: the same fresh process then handles the function's sample event (events/), against
one emulator the bench starts with the template's resources; less the import, that is what the first
request costs, so that nothing can move cost from the import to the first request unseen (issue 11).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import ROOT, TEMPLATE

RUNS = int(os.environ.get("COLD_START_RUNS", "11"))
TOOLS = ROOT / ".venv-tools" / "bin"
BOTO3_HOME = str(Path(__import__("boto3").__file__).resolve().parents[1])  # the site-packages holding boto3
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "cold",
    "AWS_SECRET_ACCESS_KEY": "cold",
    "TABLE_NAME": "loyalty",
    "EVENT_BUS_NAME": "loyalty",
    "POWERTOOLS_SERVICE_NAME": "loyalty",
    "POWERTOOLS_METRICS_NAMESPACE": "Loyalty",
}
FLOOR = "import boto3; boto3.client('dynamodb')"
HANDLER = "import app; from loyalty.store.table import dynamodb_client; dynamodb_client()"
FIRST_REQUEST = """
import json, types
event = json.load(open({event!r}))
context = types.SimpleNamespace(function_name="cold", memory_limit_in_mb=512, aws_request_id="cold",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:cold",
    get_remaining_time_in_millis=lambda: 30000)
try:
    app.lambda_handler(event, context)
except Exception:  # a sample that refers to nothing in the emulator fails after doing the first request's work
    pass
"""
SAMPLE_EVENTS = {  # the request each function's first invocation handles
    "AuthorizerFunction": "authorizer.json",
    "RegisterMemberFunction": "register_member.json",
    "MembersFunction": "members_get.json",
    "AdminConfigFunction": "admin_config_create_tier.json",
    "PublishEventsFunction": "publish_events.json",
    "IngestOrderFunction": "ingest_order.json",
    "AccruePointsFunction": "accrue_points.json",
    "RedeemPointsFunction": "redeem_points.json",
    "ExpirySweepFunction": "expiry_sweep_bucket.json",
    "TierSweepFunction": "tier_sweep.json",
    "ReconcileFunction": "reconcile.json",
    "RecordBehaviourFunction": "record_behaviour.json",
    "ProcessReturnFunction": "process_return.json",
    "CouponAdminFunction": "coupon_admin_dashboard.json",
    "CouponsFunction": "coupons_claim.json",
    "VerifyCouponFunction": "verify_coupon_redeem.json",
    "IssueCouponsFunction": "issue_coupons.json",
    "RunBulkJobsFunction": "run_bulk_jobs.json",
    "MessagesFunction": "messages_create_template.json",
    "CampaignsFunction": "campaigns_member_registered.json",
    "MigrationsFunction": "migrations_page.json",
}
LIBRARIES = [  # (module whose presence after the import shows the function uses it, what loading it costs)
    ("pydantic", "import pydantic"),
    ("aws_lambda_powertools.logging", "from aws_lambda_powertools import Logger; Logger()"),
    ("aws_lambda_powertools.metrics", "from aws_lambda_powertools import Metrics; Metrics()"),
    (
        "aws_lambda_powertools.event_handler",
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver; "
        "APIGatewayHttpResolver(enable_validation=True)",
    ),
    (
        "aws_lambda_powertools.utilities.batch",
        "from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType; "
        "BatchProcessor(event_type=EventType.SQS)",
    ),
    ("aws_lambda_powertools.utilities.idempotency", "import aws_lambda_powertools.utilities.idempotency"),
]


def build(into: Path) -> Path:
    """`make build`'s artifact: sam build, then bytecode compiled in (unchecked hashes: zip mtimes don't matter)."""
    result = subprocess.run(
        [str(TOOLS / "sam"), "build", "--build-dir", str(into), "--cache-dir", str(into.parent / "cache")],
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    compile_bytecode(into)
    return into


def runnable_here(layer: Path) -> None:
    """The artifact is for arm64 (template); put this machine's build of the same pydantic_core beside the
    arm64 one so it imports here. Everything else in the package is pure Python."""
    import pydantic_core

    native = next(Path(pydantic_core.__file__).parent.glob("_pydantic_core.*.so"))
    shutil.copy2(native, layer / "pydantic_core" / native.name)


def compile_bytecode(build_dir: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(build_dir)],
        check=True,
    )


Case = tuple[list[str], str]  # (folders put first on sys.path, statement run)


def emulated_environment() -> dict[str, str]:
    """An emulator holding the template's resources (and the demo tenant), and the environment that points a
    function's process at it: what a first request needs to find its table, queues and bus."""
    from infra.local.emulator import Emulator, provision
    from infra.local.runtime import configure_environment
    from infra.local.seed import seed_demo_tenant

    emulator = Emulator().start()
    resolver = provision(TEMPLATE, emulator.client)
    configure_environment(TEMPLATE.functions(), resolver, emulator.endpoint, [ROOT / "layers" / "loyalty"])
    seed_demo_tenant()
    names = {k for f in TEMPLATE.functions() for k in f.environment} | {"AWS_ENDPOINT_URL"}
    return {**ENV, **{k: os.environ[k] for k in names if k in os.environ}, "POWERTOOLS_LOG_LEVEL": "ERROR"}


def walls(cases: dict[str, Case]) -> dict[str, float]:
    """Median milliseconds of fresh isolated processes, one per case and round (-B: nothing compiled at import
    is written back, as on Lambda's read-only /var/task). The rounds interleave the cases, so a machine that
    slows down for a while slows every case alike and the ratios hold."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(RUNS):
        for name, (paths, statement) in cases.items():
            started = time.perf_counter()
            code = f"import sys; sys.path[:0] = {paths!r}\n{statement}"
            subprocess.run(
                [sys.executable, "-I", "-B", "-c", code],
                env=ENV,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def libraries_of(paths: list[str]) -> tuple[str, ...]:
    """Which of LIBRARIES the handler module loads, asked of a fresh process."""
    probe = f"import sys; sys.path[:0] = {paths!r}; {HANDLER}; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-I", "-B", "-c", probe], env=ENV, check=True, capture_output=True)
    modules = set(loaded.stdout.decode().split())
    return tuple(module for module, _ in LIBRARIES if module in modules)


def size_mb(*folders: Path) -> float:
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file()) / 1_000_000


def without_bytecode(folder: Path, into: Path) -> Path:
    shutil.copytree(folder, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def run() -> list[str]:
    ENV.update(emulated_environment())
    with tempfile.TemporaryDirectory() as scratch:
        built = build(Path(scratch) / "build")
        layer = built / "LoyaltyLayer" / "python"
        sizes = {f.logical_id: size_mb(built / f.logical_id, layer) for f in TEMPLATE.functions()}
        runnable_here(layer)
        bare_layer = without_bytecode(layer, Path(scratch) / "bare-layer")
        cases: dict[str, Case] = {"floor": ([BOTO3_HOME], FLOOR)}
        uses: dict[str, tuple[str, ...]] = {}
        for function in TEMPLATE.functions():
            name, folder = function.logical_id, built / function.logical_id
            bare = without_bytecode(folder, Path(scratch) / f"bare-{name}")
            cases[name] = ([str(folder), str(layer), BOTO3_HOME], HANDLER)
            event = str(ROOT / "events" / SAMPLE_EVENTS[name])
            cases[f"{name} first request"] = (cases[name][0], f"{HANDLER}\n{FIRST_REQUEST.format(event=event)}")
            cases[f"{name} without .pyc"] = ([str(bare), str(bare_layer), BOTO3_HOME], HANDLER)
            uses[name] = libraries_of(cases[name][0])
            loads = "; ".join(statement for module, statement in LIBRARIES if module in uses[name])
            cases[f"libraries {uses[name]}"] = ([str(layer), BOTO3_HOME], f"{FLOOR}; {loads}")
        ms = walls(cases)
        floor = ms["floor"]
        rows = [
            "| function | import + client, ms (.pyc shipped) | x floor | its libraries alone, ms | ours, ms "
            "| first request, ms | without .pyc, ms | MB (function + layer) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for function in TEMPLATE.functions():
            name = function.logical_id
            handler, libraries = ms[name], ms[f"libraries {uses[name]}"]
            rows.append(
                f"| {name} | {handler:.0f} | {handler / floor:.2f} | {libraries:.0f} ({libraries / floor:.2f}x) "
                f"| {handler - libraries:.0f} | {ms[f'{name} first request'] - handler:.0f} "
                f"| {ms[f'{name} without .pyc']:.0f} | {sizes[name]:.1f} |"
            )
        rows.append(f"| floor: boto3 + one DynamoDB client | {floor:.0f} | 1.00 | | | | | |")
        return rows


if __name__ == "__main__":
    print(f"\n2. Cold start (median of {RUNS} rounds of fresh processes, all cases in each round)\n")
    print("\n".join(run()))
