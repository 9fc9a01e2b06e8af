"""The embedded AWS emulator: moto on 127.0.0.1, answering one request at a time, and the resources of
template.yaml created in it.

One request at a time gives DynamoDB's per-request atomicity: moto's threaded server can lose updates
when transactions overlap (see ../shared/probe-notes.md), which would make the local stack lie about races.

The stack's own AWS calls (handlers, pollers) do not go through a socket: moto's server closes every
connection after one answer, so each call was a new TCP connection, and under steady traffic the closed
ones in TIME_WAIT used up the loopback's ports until calls hung (D-046). They are answered in this
process by the same application, under the same lock; other processes still reach it over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.handlers import BUILTIN_HANDLERS
from moto.core.botocore_stubber import MockRawResponse
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import Client

from infra.local import moto_bounds
from infra.local.runtime import ring
from infra.local.template import ACCOUNT, REGION, Resolver, Template


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: object, **kwargs: object) -> None:
        return  # one line per AWS call would drown the functions' own logs


DYNAMODB_SERVICES = ("dynamodb", "dynamodbstreams")


class _OneAtATime:
    """A WSGI application answering one request at a time, whoever asks (a socket or this process)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app, self.lock = app, threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))  # the whole answer is made under the lock


bus_routes: list[tuple[frozenset[str] | None, list[str]]] = []  # (detail types a rule takes, its queues)
TABLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
QUEUE_SENDS = {"SendMessage", "SendMessageBatch", "ChangeMessageVisibility"}


def _note_work(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Before a call of this process: what its success may give a poller to do (D-117)."""
    service, operation = model.service_model.service_name, model.name
    if service == "dynamodb" and operation in TABLE_WRITES:
        context["loyalty_rings"] = "streams"
    elif service == "sqs" and operation in QUEUE_SENDS:
        context["loyalty_rings"] = "queue:" + str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
    elif service == "events" and operation == "PutEvents":  # the queues the rules send these events to
        kinds = {entry.get("DetailType") for entry in params.get("Entries", [])}
        context["loyalty_rings"] = [
            f"queue:{queue}" for types, queues in bus_routes if types is None or types & kinds for queue in queues
        ]


def _ring_for_work(context: dict[str, Any], **_: Any) -> None:
    """After it: ring the doorbell of the poller concerned, which looks now rather than at its next idle
    timeout. Whichever engine answered (the emulator, DynamoDB Local)."""
    rings = context.get("loyalty_rings")
    for name in [rings] if isinstance(rings, str) else rings or []:
        ring(name)


class Emulator:
    """moto for every service, or for all but DynamoDB and its streams when `dynamodb_endpoint` names
    another engine (DynamoDB Local)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, dynamodb_endpoint: str | None = None) -> None:
        self.dynamodb_endpoint = dynamodb_endpoint
        moto_bounds.install()
        self._app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(host, port, self._app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._in_process: Client | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> Emulator:
        self._thread.start()
        self._in_process = Client(self._app)
        # Every botocore session made from now on asks this first (moto's own in-process mock is hooked in
        # the same way); a request for another endpoint (DynamoDB Local, AWS) goes on as usual.
        BUILTIN_HANDLERS.append(("before-send", self._answer_in_process))
        BUILTIN_HANDLERS.append(("before-parameter-build", _note_work))
        BUILTIN_HANDLERS.append(("after-call", _ring_for_work))
        return self

    def stop(self) -> None:
        self._in_process = None
        self._server.shutdown()

    def _answer_in_process(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        client, url = self._in_process, urlsplit(request.url)
        if client is None or f"{url.scheme}://{url.netloc}" != self.endpoint:
            return None
        body = request.body.read() if hasattr(request.body, "read") else request.body
        answer = client.open(
            url.path or "/",
            base_url=self.endpoint,
            query_string=url.query,
            method=request.method,
            headers={k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
            data=body or b"",
        )
        return AWSResponse(request.url, answer.status_code, dict(answer.headers), MockRawResponse(answer.get_data()))

    def endpoint_for(self, service: str) -> str:
        if self.dynamodb_endpoint and service in DYNAMODB_SERVICES:
            return self.dynamodb_endpoint
        return self.endpoint

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint_for(service),
            region_name=REGION,
            aws_access_key_id="local",
            # B106: the emulator takes any
            aws_secret_access_key="local",  # nosec B106
        )


def provision(template: Template, client: Callable[[str], Any]) -> Resolver:
    """Create the template's tables, queues and buses with `client(service)`; return a resolver for their
    physical names. The tests use it too, so they run on the same resources as the stack."""
    physical: dict[str, dict[str, str]] = {}
    resolver = Resolver(template, physical)
    dynamodb, sqs, events = client("dynamodb"), client("sqs"), client("events")

    for name, resource in template.of_type("AWS::SQS::Queue").items():
        props = resource.get("Properties", {})
        queue_name = props.get("QueueName", name)
        attributes = {
            k: str(v)
            for k, v in props.items()
            if k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")
        }
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        physical[name] = {"Ref": url, "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}", "QueueName": queue_name}
    for name, resource in template.of_type("AWS::SQS::Queue").items():
        redrive = resource.get("Properties", {}).get("RedrivePolicy")
        if redrive:
            sqs.set_queue_attributes(
                QueueUrl=physical[name]["Ref"], Attributes={"RedrivePolicy": json.dumps(resolver(redrive))}
            )

    for name, resource in template.of_type("AWS::Events::EventBus").items():
        bus = resolver(resource["Properties"]["Name"])
        arn = events.create_event_bus(Name=bus)["EventBusArn"]
        physical[name] = {"Ref": bus, "Name": bus, "Arn": arn}

    bus_routes.clear()  # this account's rules (the tests provision one account after another)
    for name, resource in template.of_type("AWS::Events::Rule").items():
        props = resource["Properties"]
        bus = resolver(props.get("EventBusName", "default"))
        rule = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            rule["EventPattern"] = json.dumps(resolver(props["EventPattern"]))
        if "ScheduleExpression" in props:
            rule["ScheduleExpression"] = props["ScheduleExpression"]
        arn = events.put_rule(**rule)["RuleArn"]
        targets = [{"Id": t["Id"], "Arn": resolver(t["Arn"])} for t in props.get("Targets", [])]
        if targets:
            events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
            detail_types = (resolver(props.get("EventPattern")) or {}).get("detail-type")
            queues = [t["Arn"].rsplit(":", 1)[-1] for t in targets if t["Arn"].startswith("arn:aws:sqs:")]
            bus_routes.append((frozenset(detail_types) if detail_types else None, queues))
        physical[name] = {"Ref": name, "Arn": arn}

    for name in template.of_type("AWS::IAM::Role"):  # named, not created: moto enforces no IAM
        physical[name] = {"Ref": name, "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}

    for name, resource in template.of_type("AWS::DynamoDB::Table").items():
        props = resolver(resource["Properties"])
        table = props.get("TableName", name)
        request: dict[str, Any] = {
            k: props[k]
            for k in (
                "AttributeDefinitions",
                "KeySchema",
                "BillingMode",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "StreamSpecification",
            )
            if k in props
        }
        if "StreamSpecification" in request:  # CloudFormation implies what the API must be told
            request["StreamSpecification"] = {"StreamEnabled": True, **request["StreamSpecification"]}
        description = dynamodb.create_table(TableName=table, **request)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification=ttl)
        physical[name] = {
            "Ref": table,
            "Arn": description["TableArn"],
            "StreamArn": description.get("LatestStreamArn", ""),
        }
    return resolver
