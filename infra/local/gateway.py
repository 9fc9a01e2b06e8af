"""An HTTP API (API Gateway v2) in front of the local functions: routes and authorizer from the template,
payload format 2.0 events in, Lambda proxy responses out."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from infra.local.runtime import LocalFunction, ServingRequest
from infra.local.template import ACCOUNT, Route

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's own limit
NO_CONTENT = (204, 304)  # answers that carry no body (RFC 9110 §6.4.1)
Extra = Callable[[str, str, bytes, dict[str, str]], tuple[int, str, bytes] | None]  # local-only routes (docs, ...)


@dataclass
class Authorizer:
    """An HTTP API's Lambda authorizer: its function, the headers that identify a caller, and how long an
    answer is cached per identity (`ReauthorizeEvery`), on the stack's clock: a revoked key works that long
    at most, here as on AWS, and moving the clock past it ends it (D-120)."""

    function: LocalFunction
    identity: list[str]
    cache_seconds: int = 0
    now: Callable[[], float] = time.time
    answers: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = field(default_factory=dict)

    def authorize(self, event: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        identity = tuple(headers[name] for name in self.identity)
        cached = self.answers.get(identity)
        if cached and cached[0] > self.now():
            return cached[1]
        answer = self.function.invoke(_authorizer_event(event), foreground=True)
        if self.cache_seconds:
            if len(self.answers) >= 10_000:  # bounded: the oldest answer goes first
                self.answers.pop(next(iter(self.answers)))
            self.answers[identity] = (self.now() + self.cache_seconds, answer)
        return answer


class Gateway:
    def __init__(
        self,
        routes: list[Route],
        functions: dict[str, LocalFunction],
        authorizers: dict[str, Authorizer],
        extra: Extra | None = None,
    ) -> None:
        self.routes = sorted(routes, key=lambda route: route.specificity)
        self.functions = functions
        self.authorizers = authorizers
        self.extra = extra

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(target)
        path = unquote(url.path)
        if self.extra:
            local = self.extra(method, path, body, headers)
            if local:
                status, content_type, payload = local
                return status, {"content-type": content_type}, payload
        if len(body) > MAX_PAYLOAD_BYTES:
            return _message(413, "Request Entity Too Large")
        matched = self._match(method, path)
        if matched is None:
            return _message(404, "Not Found")
        route, path_parameters = matched
        event = _event(route, method, path, url.query, headers, body, path_parameters)
        if route.authorizer:
            authorizer = self.authorizers[route.authorizer]
            if any(not headers.get(name) for name in authorizer.identity):
                return _message(401, "Unauthorized")
            decision = authorizer.authorize(event, headers)
            if not decision.get("isAuthorized"):
                return _message(403, "Forbidden")
            event["requestContext"]["authorizer"] = {"lambda": decision.get("context", {})}
        result = self.functions[route.function].invoke(event, foreground=True)
        return _response(result)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            if route.method in (method, "ANY"):
                found = route.pattern.match(path)
                if found:
                    return route, found.groupdict()
        return None


def _event(
    route: Route,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    path_parameters: dict[str, str],
) -> dict[str, Any]:
    now = datetime.now(UTC)
    query_parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        query_parameters[key] = f"{query_parameters[key]},{value}" if key in query_parameters else value
    text_body: str | None
    try:
        text_body, is_base64 = (body.decode("utf-8"), False) if body else (None, False)
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode(), True
    return {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": query,
        "cookies": [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()] or None,
        "headers": headers,
        "queryStringParameters": query_parameters or None,
        "pathParameters": path_parameters or None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(time.time() * 1000),
        },
        "body": text_body,
        "isBase64Encoded": is_base64,
    }


def _authorizer_event(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:us-east-1:{ACCOUNT}:local/$default/{event['routeKey'].replace(' ', '')}",
        "identitySource": [event["headers"].get("authorization", "")],
        "routeKey": event["routeKey"],
        "rawPath": event["rawPath"],
        "rawQueryString": event["rawQueryString"],
        "headers": event["headers"],
        "queryStringParameters": event["queryStringParameters"],
        "pathParameters": event["pathParameters"],
        "requestContext": event["requestContext"],
    }


def _response(result: Any) -> tuple[int, dict[str, str], bytes]:
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return int(result["statusCode"]), headers, payload


def _message(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()


def serve(gateway: Gateway, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes: with Nagle's algorithm on, a keep-alive client's delayed
        # ACK held each answer ~40 ms.
        disable_nagle_algorithm = True

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                with ServingRequest():
                    status, response_headers, payload = gateway.handle(self.command, self.path, headers, body)
            except Exception as error:  # a handler crash is a 500, as Lambda would report it
                status, response_headers, payload = _message(500, f"Internal Server Error: {type(error).__name__}")
            self.send_response(status)
            for key, value in response_headers.items():
                if key not in ("content-length", "connection"):
                    self.send_header(key, value)
            if status in NO_CONTENT:  # no body and no length, or a keep-alive client misreads what follows
                self.end_headers()
                return
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def __getattr__(self, name: str) -> Any:
            """Every method goes to the routes (an unknown one is a 404 there, as on API Gateway), not a 501."""
            if name.startswith("do_"):
                return self._any
            raise AttributeError(name)

        def log_message(self, format: str, *args: Any) -> None:
            return  # the functions log; the request line would only repeat them

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
