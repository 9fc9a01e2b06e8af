"""Start the local stack as a user would (`python -m infra.local`) and find it through its state file.

One stack per engine for the whole session (of each test worker), started when a module first asks for it,
and a tenant of its own for each module (POST /_local/tenants: seeded like the demo, with its own keys), so
modules share no members, phones or counts, and the suite pays for two stack starts, not two per module.
Times come from the stack's clock (`Stack.now`), which a module may move forward (POST /_local/clock)."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from infra.local import dynamodb_local
from tests.support import ROOT


class Stack:
    def __init__(self, info: dict[str, Any], pid: int) -> None:
        self.info = info
        self.base = info["baseUrl"]
        self.pid = pid

    def now(self) -> datetime:
        """The stack's time (its clock may have been moved forward)."""
        status, clock = self.request("GET", "/_local/clock")
        assert status == 200, clock
        return datetime.fromisoformat(clock["now"])

    def move_clock(self, **body: Any) -> datetime:
        """`advance="P1D"` or `to="<time with offset>"`; returns the new time. Schedules due in the jump fire
        on the scheduler's next tick (within a second)."""
        status, clock = self.request("POST", "/_local/clock", body)
        assert status == 200, clock
        return datetime.fromisoformat(clock["now"])

    def with_tenant(self, tenant: str) -> Stack:
        """The same stack, with a new tenant seeded like the demo: its keys in `info`."""
        status, made = self.request("POST", "/_local/tenants", {"tenant": tenant})
        assert status == 201, made
        return Stack({**self.info, **made}, self.pid)

    def request(
        self, method: str, path: str, body: Any = None, key: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if key:
            request.add_header("authorization", f"Bearer {key}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            payload, status = error.read(), error.code
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            return status, payload.decode()


class KeepAlive:
    """One HTTP/1.1 connection kept open for a sequence of calls, as a channel's integration holds one."""

    def __init__(self, base_url: str, key: str | None = None) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=120)
        self.key = key

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and the raw body."""
        sent = {"content-type": "application/json", **(headers or {})}
        if key or self.key:
            sent["authorization"] = f"Bearer {key or self.key}"
        self.connection.request(
            method, path, body=json.dumps(body).encode() if body is not None else None, headers=sent
        )
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, payload

    def json(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        status, _, payload = self.call(method, path, body, key)
        return status, json.loads(payload) if payload else None


def start_stack(tmp: Path, *extra: str) -> Iterator[Stack]:
    state = tmp / "stack.json"
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'loyalty'}{os.pathsep}{ROOT}"}
    env.pop("AWS_ENDPOINT_URL", None)
    log = (tmp / "stack.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local", "--port", "0", "--state-file", str(state), *extra],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=dynamodb_local.die_with_parent,  # a killed test run leaves no stack
    )
    earlier = state.stat().st_mtime_ns if state.exists() else None  # a stack started on an earlier run's state
    deadline = time.monotonic() + 180  # a fresh clone on a busy 2-core machine starts slowly
    while not state.exists() or state.stat().st_mtime_ns == earlier:
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the local stack did not start:\n" + (tmp / "stack.log").read_text()[-4000:])
        time.sleep(0.1)
    try:
        yield Stack(json.loads(state.read_text()), process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # the stack stops on the first signal; this is for a stuck machine
            process.kill()
            process.wait()
        log.close()


class Stacks:
    """The stack of an engine as `make run` starts it (`--engine`), started when first asked for and kept until
    the engine's modules are done (or the session ends). `moves_clock=True` gives another, whose clock the
    modules that move time share: the shared stacks keep the real time, so no module's dates depend on
    another's."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.started: dict[tuple[str, bool], Stack] = {}
        self.running: dict[tuple[str, bool], Iterator[Stack]] = {}

    def __call__(self, engine: str, moves_clock: bool = False) -> Stack:
        if (engine, moves_clock) not in self.started:
            if engine == "dynamodb-local" and not dynamodb_local.installed(dynamodb_local.home()):
                if os.environ.get("LOYALTY_DYNAMODB_LOCAL"):  # `make test` installed it: missing is a failure
                    pytest.fail(f"DynamoDB Local is not installed at {dynamodb_local.home()}")
                pytest.skip("DynamoDB Local is not installed; `make test` installs it")
            process = start_stack(self.tmp_path_factory.mktemp(f"stack-{engine}"), "--engine", engine)
            self.started[engine, moves_clock] = next(process)
            self.running[engine, moves_clock] = process
        return self.started[engine, moves_clock]

    def stop(self, engine: str | None = None) -> None:
        """Stop the stacks of an engine (all of them: None)."""
        for key in [key for key in self.running if engine in (None, key[0])]:
            self.started.pop(key)
            next(self.running.pop(key), None)


_session: Stacks | None = None


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stacks]:
    global _session
    _session = Stacks(tmp_path_factory)
    yield _session
    _session.stop()
    _session = None


def _engine_group(item: pytest.Item | None) -> str | None:
    mark = item.get_closest_marker("xdist_group") if item else None
    name = str(mark.args[0]) if mark and mark.args else ""
    return name.removeprefix("e2e-") if name in ("e2e-moto", "e2e-dynamodb-local") else None


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Under `--dist loadgroup` an engine's modules run in one worker, one after another: after the last of
    them its stacks stop, so the worker's other tests do not share the two cores with idle stacks (each 5-9%
    of a core, and DynamoDB Local's JVM)."""
    engine = _engine_group(item)
    if _session and getattr(item.config.option, "loadgroup", False) and engine and _engine_group(nextitem) != engine:
        _session.stop(engine)


_tenants = itertools.count(1)


def module_tenant(request: pytest.FixtureRequest) -> str:
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    return f"{name[:24]}-{next(_tenants)}"


def on_engine(engine: str) -> Any:
    """A fixture parameter for an engine, with the xdist group of that engine: each engine's stacks live in one
    test worker, so the two engines' modules run side by side on two cores (`--dist loadgroup`)."""
    return pytest.param(engine, marks=pytest.mark.xdist_group(f"e2e-{engine}"))


ENGINES = [on_engine("moto"), on_engine("dynamodb-local")]
ON_MOTO = pytest.mark.xdist_group("e2e-moto")  # a module that runs on the default engine only


@pytest.fixture(scope="module", params=ENGINES)
def stack(request: pytest.FixtureRequest, stacks: Stacks) -> Stack:
    """The session's stack of each DynamoDB engine (the suite runs on both), with the module's own tenant."""
    return stacks(request.param).with_tenant(module_tenant(request))
