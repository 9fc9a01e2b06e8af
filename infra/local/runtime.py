"""Run the template's Lambda handlers in this process, one invocation at a time, as Lambda would call them."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from infra.local.template import ACCOUNT, REGION, Function, Resolver


class InvocationLock:
    """One invocation at a time across the stack, and a request's first: an invocation for an HTTP request
    (foreground) goes before every background one waiting (a poller's batch, a schedule), so a busy stack's
    queues slow its API only by the one background invocation running (D-122)."""

    def __init__(self) -> None:
        self._free = threading.Condition()
        self._held = False
        self.foreground_waiting = 0

    def acquire(self, foreground: bool) -> None:
        with self._free:
            if foreground:
                self.foreground_waiting += 1
                self._free.wait_for(lambda: not self._held)
                self.foreground_waiting -= 1
            else:
                self._free.wait_for(lambda: not self._held and not self.foreground_waiting)
            self._held = True

    def release(self) -> None:
        with self._free:
            self._held = False
            self._free.notify_all()


_invocations = InvocationLock()
_requests_in_flight = 0
_requests_lock = threading.Lock()


class ServingRequest:
    """Marks the time an HTTP request is being served (the gateway enters it for each request)."""

    def __enter__(self) -> None:
        global _requests_in_flight
        with _requests_lock:
            _requests_in_flight += 1

    def __exit__(self, *_: object) -> None:
        global _requests_in_flight
        with _requests_lock:
            _requests_in_flight -= 1


def serving_requests() -> bool:
    """Whether an HTTP request is being served: pollers then take one record per invocation (a batch is at
    most BatchSize records, so fewer is what Lambda may give too) and let the request through sooner."""
    return _requests_in_flight > 0


class Doorbell:
    """A poller sleeps on its doorbell while its source is empty, until something may have put work there
    (a message sent to its queue, a write to the table its stream follows: the emulator's hook rings it) or
    IDLE_SECONDS pass. An idle stack costs next to nothing, and a busy one does not have every poller look at
    every queue after every call (D-117)."""

    def __init__(self) -> None:
        self._rung = threading.Condition()
        self.generation = 0

    def ring(self) -> None:
        with self._rung:
            self.generation += 1
            self._rung.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Until it rang after `seen` (a generation read before looking), or `timeout` seconds."""
        with self._rung:
            self._rung.wait_for(lambda: self.generation != seen, timeout)


_doorbells: dict[str, Doorbell] = {}
_doorbells_lock = threading.Lock()


def doorbell(name: str) -> Doorbell:
    """The doorbell of a source: `queue:<name>`, or `streams` (every table stream)."""
    with _doorbells_lock:
        return _doorbells.setdefault(name, Doorbell())


def ring(name: str) -> None:
    """Ring a source's doorbell, if a poller listens at it."""
    with _doorbells_lock:
        bell = _doorbells.get(name)
    if bell is not None:
        bell.ring()


IDLE_SECONDS = 2.0  # the longest a poller sleeps unrung: how late it sees a message sent from another process


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class LocalFunction:
    def __init__(self, spec: Function) -> None:
        self.spec = spec
        self._handler: Callable[[dict, Any], Any] | None = None

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def invoke(self, event: dict, *, foreground: bool = False) -> Any:
        """One invocation at a time across the whole stack, so handlers never interleave (as separate
        Lambda sandboxes would not share memory); `foreground` (an HTTP request's) before background ones."""
        _invocations.acquire(foreground)
        try:
            os.environ["AWS_LAMBDA_FUNCTION_NAME"] = self.name
            handler = self._load()
            context = LambdaContext(
                self.name,
                512,
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}",
                str(uuid.uuid4()),
                time.monotonic() + self.spec.timeout,
            )
            return handler(event, context)
        finally:
            _invocations.release()

    def _load(self) -> Callable[[dict, Any], Any]:
        if self._handler is None:
            module_name, function_name = self.spec.handler.rsplit(".", 1)
            path = self.spec.code_dir / f"{module_name.replace('.', '/')}.py"
            module = _import_file(f"lambda_{self.name}_{module_name}", path)
            self._handler = getattr(module, function_name)
        return self._handler


def _import_file(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, f"cannot import {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def configure_environment(
    functions: list[Function],
    resolver: Resolver,
    endpoint: str | None,
    layer_dirs: list[Path],
    dynamodb_endpoint: str | None = None,
) -> None:
    """The functions share one process, so they share one environment: the union of theirs (the template
    gives them the same table, bus and queues), plus the emulator's endpoints and the layer on sys.path."""
    for function in functions:
        for key, value in function.environment.items():
            os.environ[key] = str(resolver(value))
    os.environ.update(
        {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            # B105: the emulator takes any
            "AWS_SECRET_ACCESS_KEY": "local",  # nosec B105
            "LOYALTY_LOCAL_WEBHOOKS": "1",  # the demo's webhook receiver is the stack's own http (D-124)
        }
    )
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
    if dynamodb_endpoint:  # boto3's per-service endpoints: DynamoDB and its streams on another engine
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
        os.environ["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = dynamodb_endpoint
    os.environ.pop("AWS_PROFILE", None)
    for directory in layer_dirs:
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
