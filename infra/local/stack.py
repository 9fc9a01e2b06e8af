"""Assemble the local stack from template.yaml: emulator, resources, functions, HTTP API, pollers, schedules."""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime

from infra.local import dynamodb_local
from infra.local.emulator import Emulator, provision
from infra.local.gateway import Authorizer, Gateway, serve
from infra.local.runtime import LocalFunction, configure_environment
from infra.local.template import Template

ROOT = Path(__file__).resolve().parents[2]
# Swagger UI's files, from the npm package swagger-ui-dist (`make run` puts them here): served by the stack
# itself, so the docs page needs no network.
SWAGGER_UI_DIR = Path(os.environ.get("LOYALTY_SWAGGER_UI", ROOT / ".local" / "swagger-ui"))
SWAGGER_UI_FILES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
DOCS_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Loyalty API</title>
<link rel="icon" href="/docs/favicon-32x32.png"><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>"""
DOCS_MISSING = """<!doctype html><html><head><meta charset="utf-8"><title>Loyalty API</title></head><body>
<p>Swagger UI is not installed: <code>make run</code> installs it. The document is at
<a href="/openapi.json">/openapi.json</a>.</p></body></html>"""


def received_webhook(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """A webhook POST as the local receiver keeps it: its body, and whether its signature is the demo
    program's (what a receiver checks: HMAC-SHA256 of `<timestamp>.<body>` with the shared secret)."""
    from infra.local.seed import DEMO_WEBHOOK_SECRET
    from loyalty.services.messages.senders import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

    named = {name.lower(): value for name, value in headers.items()}
    stamp = named.get(TIMESTAMP_HEADER.lower(), "")
    verified = named.get(SIGNATURE_HEADER.lower()) == "sha256=" + signature(DEMO_WEBHOOK_SECRET, stamp, body)
    try:
        payload = dict(json.loads(body))
    except ValueError:
        payload = {"unreadable": body.decode(errors="replace")}
    return {"signatureVerified": verified, "idempotencyKey": named.get("idempotency-key"), "payload": payload}


def local_clock(body: bytes | None) -> tuple[int, str, bytes]:
    """`GET /_local/clock` tells the stack's time; `POST` moves it forward (D-108): `{"advance": "P1DT2H"}`
    (an ISO 8601 duration, or seconds) or `{"to": "2027-01-01T00:30:00+08:00"}`. Every function and schedule
    of the stack reads this clock; schedules that fell due in the jump fire once, on the scheduler's next tick."""
    from pydantic import TypeAdapter, ValidationError

    from loyalty import clock

    def answer(status: int, payload: dict[str, Any]) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(payload).encode()

    if body is not None:
        try:
            asked = json.loads(body or b"{}")
            if not isinstance(asked, dict) or len(asked.keys() & {"advance", "to"}) != 1:
                raise ValueError('send {"advance": <ISO 8601 duration or seconds>} or {"to": <time with offset>}')
            if "advance" in asked:
                clock.advance(TypeAdapter(timedelta).validate_python(asked["advance"]))
            else:
                clock.move_to(TypeAdapter(AwareDatetime).validate_python(asked["to"]))
        except (ValueError, ValidationError) as error:
            message = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            return answer(422, {"message": message})
    now = clock.SystemClock().now()
    return answer(200, {"now": now.isoformat(), "offsetSeconds": int(clock.offset().total_seconds())})


class LocalStack:
    def __init__(
        self,
        template_path: Path = ROOT / "template.yaml",
        host: str = "127.0.0.1",
        port: int = 3000,
        layer_dirs: list[Path] | None = None,
        openapi_path: Path = ROOT / "docs" / "openapi.json",
        engine: str = "moto",
    ) -> None:
        self.template = Template(template_path)
        self.host, self.port = host, port
        self.layer_dirs = layer_dirs or [ROOT / "layers" / "loyalty"]
        self.openapi_path = openapi_path
        self.engine = engine
        self._dynamodb_local: Any = None
        dynamodb_endpoint = None
        if engine == "dynamodb-local":
            self._dynamodb_local, dynamodb_endpoint = dynamodb_local.start(dynamodb_local.home(), host)
        elif engine != "moto":
            raise ValueError(f"unknown engine {engine!r} (moto or dynamodb-local)")
        self.emulator = Emulator(host, dynamodb_endpoint=dynamodb_endpoint).start()
        self.pollers: list[Any] = []
        self.scheduler: Any = None
        self._server: Any = None
        self.webhooks: list[dict[str, Any]] = []  # what the demo program's webhook sent here (/_local/webhook)
        self.data: Path | None = None  # where the table is kept between runs, if it is
        self.table_name = ""

    def start(
        self, seed: bool = True, data: Path | None = None, earlier: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """`data`: the file of an earlier run's table (kept when the stack stops): loaded, and the migrations
        that run has not had started; `earlier` is that run's state file (its demo keys still open the
        loaded table). Without it the table starts fresh, seeded, with every migration marked done."""
        resolver = provision(self.template, self.emulator.client)
        specs = self.template.functions()
        configure_environment(specs, resolver, self.emulator.endpoint, self.layer_dirs, self.emulator.dynamodb_endpoint)
        # Imported only now: the layer is on sys.path and boto3 sees the emulator from here on.
        from infra.local.pollers import QueuePoller, StreamPoller
        from infra.local.scheduler import OneTimeSchedules, Scheduler

        functions = {spec.logical_id: LocalFunction(spec) for spec in specs}
        routes = [route for spec in specs for route in spec.routes]
        from loyalty.clock import SystemClock

        authorizers = {
            name: Authorizer(
                functions[self.template.authorizer_function(name)],
                self.template.identity_headers(name),
                self.template.reauthorize_seconds(name),
                lambda: SystemClock().now().timestamp(),  # the stack's clock: moving it ends cached answers
            )
            for name in {route.authorizer for route in routes if route.authorizer}
        }
        sqs, streams = self.emulator.client("sqs"), self.emulator.client("dynamodbstreams")
        for spec in specs:
            for source in spec.queues:
                queue = resolver.physical[source.queue]
                self.pollers.append(QueuePoller(source, functions[spec.logical_id], sqs, queue["Ref"], queue["Arn"]))
            for stream in spec.streams:
                on_failure = resolver.physical[stream.on_failure_queue]["Ref"] if stream.on_failure_queue else None
                self.pollers.append(
                    StreamPoller(
                        stream,
                        functions[spec.logical_id],
                        streams,
                        resolver.physical[stream.table]["StreamArn"],
                        sqs,
                        on_failure,
                    )
                )
        self.scheduler = Scheduler(
            {s.name: (s, functions[spec.logical_id]) for spec in specs for s in spec.schedules},
            tick_seconds=1.0,
            one_time=OneTimeSchedules(self.emulator.client("scheduler"), sqs),
        )
        gateway = Gateway(routes, functions, authorizers, self._local_routes)
        self._server = serve(gateway, self.host, self.port)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="http", daemon=True).start()
        for poller in self.pollers:
            poller.start()
        self.scheduler.start()
        keys: dict[str, str] = {}
        key_ids: dict[str, str] = {}
        tenant = program = None
        base = f"http://{self.host}:{self.port}"
        table = resolver.ref(next(iter(self.template.of_type("AWS::DynamoDB::Table"))))
        self.data, self.table_name = data, table
        from loyalty.services.migrations.runner import migration_runner

        if data is not None and data.exists():
            from infra.local.data import load

            load(self.emulator.client("dynamodb"), table, data)
            migration_runner().start_pending()  # what this code brings forward, through its queue
            earlier = earlier or {}
            keys, key_ids = earlier.get("apiKeys", {}), earlier.get("apiKeyIds", {})
            tenant, program = earlier.get("tenant"), earlier.get("programCode")
        else:
            migration_runner().baseline()  # a table this code created holds nothing older
            if seed:
                from infra.local.seed import PROGRAM, TENANT, seed_demo_messages, seed_demo_tenant

                (keys, key_ids), tenant, program = seed_demo_tenant(), TENANT, PROGRAM
                seed_demo_messages(f"{base}/_local/webhook", key_ids)
        return {
            "baseUrl": base,
            "openapiUrl": f"{base}/openapi.json",
            "docsUrl": f"{base}/docs",
            "outboxUrl": f"{base}/_local/outbox",
            "engine": self.engine,
            "emulatorEndpoint": self.emulator.endpoint,
            "dynamodbEndpoint": self.emulator.endpoint_for("dynamodb"),
            "tenant": tenant,
            "programCode": program,
            "apiKeys": keys,
            "apiKeyIds": key_ids,
            "tableName": table,
            "queues": {name: resolver.physical[name]["Ref"] for name in self.template.of_type("AWS::SQS::Queue")},
            "eventBus": next((resolver.ref(n) for n in self.template.of_type("AWS::Events::EventBus")), None),
            "schedules": sorted(self.scheduler.schedules),
            "routes": sorted(route.route_key for route in routes),
        }

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        if self.scheduler:
            self.scheduler.stop()
        if self._server:
            self._server.shutdown()
        if self.data is not None:  # kept for the next run (make run KEEP=1)
            from infra.local.data import save

            save(self.emulator.client("dynamodb"), self.table_name, self.data)
        self.emulator.stop()
        if self._dynamodb_local:
            self._dynamodb_local.terminate()
            self._dynamodb_local.wait(timeout=10)

    def _local_routes(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes] | None:
        """Routes of the local stack itself: the API description, running a schedule now, its clock, the
        demo webhook's receiver and what messages went out."""
        if method == "GET" and path == "/openapi.json" and self.openapi_path.exists():
            return 200, "application/json", self.openapi_path.read_bytes()
        if method == "GET" and path == "/docs":
            installed = (SWAGGER_UI_DIR / "swagger-ui-bundle.js").exists()
            return 200, "text/html; charset=utf-8", (DOCS_PAGE if installed else DOCS_MISSING).encode()
        name = path.removeprefix("/docs/")
        if method == "GET" and path.startswith("/docs/") and name in SWAGGER_UI_FILES:
            asset = SWAGGER_UI_DIR / name
            if asset.exists():
                return 200, SWAGGER_UI_FILES[name], asset.read_bytes()
        if path.startswith("/_local/schedules/") and method == "POST":
            name = path.rsplit("/", 1)[1]
            if name not in self.scheduler.schedules:
                return 404, "application/json", json.dumps({"message": f"no schedule {name}"}).encode()
            result = self.scheduler.trigger(name)
            return 200, "application/json", json.dumps({"schedule": name, "result": result}, default=str).encode()
        if path == "/_local/clock" and method in ("GET", "POST"):
            return local_clock(body if method == "POST" else None)
        if path == "/_local/tenants" and method == "POST":
            return self._new_tenant(body)
        if path == "/_local/migrations" and method in ("GET", "POST"):
            from loyalty.services.migrations.runner import migration_runner

            runner = migration_runner()
            running = runner.start_pending() if method == "POST" else None
            answer = {"running": running, "migrations": runner.status()}
            return 200, "application/json", json.dumps(answer, default=str).encode()
        if path == "/_local/health":
            return 200, "application/json", b'{"status":"ok"}'
        if path == "/_local/webhook" and method == "POST":
            self.webhooks.append(received_webhook(body, headers or {}))
            return 200, "application/json", b'{"received":true}'
        if path == "/_local/outbox" and method == "GET":
            return 200, "application/json", json.dumps(self.outbox(), ensure_ascii=False).encode()
        return None

    def _new_tenant(self, body: bytes) -> tuple[int, str, bytes]:
        """`POST /_local/tenants {"tenant": "acme"}`: another tenant seeded like the demo (its program DEMO, its
        own keys), for trying several brands on one stack; the end-to-end suite makes one per module."""
        import re

        from infra.local.seed import PROGRAM, seed_demo_messages, seed_demo_tenant
        from loyalty.domain.errors import Conflict

        try:
            tenant = json.loads(body or b"{}").get("tenant", "")
        except (ValueError, AttributeError):
            tenant = ""
        if not re.fullmatch(r"[a-z][a-z0-9-]{1,31}", tenant or ""):
            message = {"message": 'send {"tenant": "<2 to 32 lower-case letters, digits and dashes>"}'}
            return 422, "application/json", json.dumps(message).encode()
        try:
            keys, key_ids = seed_demo_tenant(tenant)
        except Conflict:
            return 409, "application/json", json.dumps({"message": f"tenant {tenant} exists"}).encode()
        seed_demo_messages(f"http://{self.host}:{self.port}/_local/webhook", key_ids, tenant)
        made = {"tenant": tenant, "programCode": PROGRAM, "apiKeys": keys, "apiKeyIds": key_ids}
        return 201, "application/json", json.dumps(made).encode()

    def outbox(self) -> dict[str, list[dict[str, Any]]]:
        """What the messages "sent": SMS and email as the emulator recorded them (SNS, SES), and what the
        demo's webhook POSTed to this stack."""
        from moto.ses.models import ses_backends
        from moto.sns.models import sns_backends

        from infra.local.template import ACCOUNT, REGION

        sms = [
            {"messageId": message_id, "phoneNumber": phone, "message": text}
            for message_id, (phone, text) in sns_backends[ACCOUNT][REGION].sms_messages.items()
        ]
        email = [
            {
                "messageId": m.id,
                "source": m.source,
                "destinations": m.destinations,
                "subject": m.subject,
                "body": m.body,
            }
            for m in ses_backends[ACCOUNT][REGION].sent_messages
        ]
        return {"sms": sms, "email": email, "webhook": self.webhooks}
