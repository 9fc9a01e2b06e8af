"""Cold start per function, as `make build` packages it (sam build, then bytecode compiled into the artifact).

For each function: the median wall time of a fresh Python process that imports the handler module from
the function's folder and the layer, and creates the DynamoDB client every function uses; beside it, in
the same run, the floor: a fresh process that only imports boto3 and creates one DynamoDB client. boto3
comes from the same place for both (on Lambda the runtime provides it). Each process runs isolated (-I,
no user site), with the environment the template gives the function. Also the package size (function
folder + layer), and the same import without the precompiled bytecode, to show what shipping it saves.
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

RUNS = 7
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


def wall(paths: list[str], statement: str) -> float:
    """Median milliseconds of a fresh isolated process putting `paths` first on sys.path and running `statement`
    (-B: nothing compiled at import is written back, as on Lambda's read-only /var/task)."""
    code = f"import sys; sys.path[:0] = {paths!r}; {statement}"
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-B", "-c", code], env=ENV, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def size_mb(*folders: Path) -> float:
    return sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file()) / 1_000_000


def without_bytecode(folder: Path, into: Path) -> Path:
    shutil.copytree(folder, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def run() -> list[str]:
    with tempfile.TemporaryDirectory() as scratch:
        built = build(Path(scratch) / "build")
        layer = built / "LoyaltyLayer" / "python"
        sizes = {f.logical_id: size_mb(built / f.logical_id, layer) for f in TEMPLATE.functions()}
        runnable_here(layer)
        bare_layer = without_bytecode(layer, Path(scratch) / "bare-layer")
        floor = wall([BOTO3_HOME], FLOOR)
        rows = [
            "| function | import + client, ms (.pyc shipped) | x floor | without .pyc, ms | MB (function + layer) |",
            "|---|---|---|---|---|",
        ]
        for function in TEMPLATE.functions():
            folder = built / function.logical_id
            bare = without_bytecode(folder, Path(scratch) / f"bare-{function.logical_id}")
            warm = wall([str(folder), str(layer), BOTO3_HOME], HANDLER)
            cold = wall([str(bare), str(bare_layer), BOTO3_HOME], HANDLER)
            size = sizes[function.logical_id]
            rows.append(f"| {function.logical_id} | {warm:.0f} | {warm / floor:.2f} | {cold:.0f} | {size:.1f} |")
        rows.append(f"| floor: boto3 + one DynamoDB client | {floor:.0f} | 1.00 | | |")
        return rows


if __name__ == "__main__":
    print(f"\n2. Cold start (median of {RUNS} fresh processes; the floor measured in the same run)\n")
    print("\n".join(run()))
