"""Test helpers: run the template's handlers in-process on moto, with events from events/."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from infra.local.runtime import LocalFunction
from infra.local.template import REGION, Resolver, Template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Template(ROOT / "template.yaml")
EVENTS = ROOT / "events"


def reset_process_state() -> None:
    """Forget clients, settings and cached services between tests, as a fresh Lambda sandbox would: every
    lru_cache of the route modules (each function's services), the clients and the settings."""
    import importlib
    import pkgutil

    import loyalty.api.routes as routes
    import loyalty.api.sweep_function as sweep_function
    import loyalty.clock as clock
    import loyalty.services.events as events
    import loyalty.services.idempotency as idempotency
    import loyalty.services.messages.senders as senders
    import loyalty.services.queues as queues
    import loyalty.settings as settings
    import loyalty.store.table as table

    cached = [
        table.dynamodb_client,
        events._events_client,
        settings.get_settings,
        senders.senders,
        queues.sqs,
        *sweep_function.CACHED,
    ]
    for info in pkgutil.iter_modules(routes.__path__):
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        cached += [value for value in vars(module).values() if hasattr(value, "cache_clear")]
    for function in cached:
        function.cache_clear()
    idempotency._layers.clear()
    clock.reset()  # a test that moved the system clock moved it for itself only


@contextmanager
def emulated_account() -> Iterator[Resolver]:
    """A fresh moto account holding template.yaml's resources, the environment its functions get, and no
    cached clients or services; yields the resolver of the resources' physical names."""
    import boto3
    from moto import mock_aws

    from infra.local.emulator import provision
    from infra.local.runtime import configure_environment

    with mock_aws():
        resolver = provision(TEMPLATE, lambda service: boto3.client(service, region_name=REGION))
        configure_environment(TEMPLATE.functions(), resolver, None, [])
        reset_process_state()
        try:
            yield resolver
        finally:
            reset_process_state()


def fresh_table(endpoint: str) -> tuple[str, Any]:
    """A new table shaped like template.yaml's LoyaltyTable at `endpoint`; returns its name and a client."""
    import boto3

    name = f"loyalty-{uuid.uuid4().hex[:12]}"
    props = Resolver(TEMPLATE, {})(TEMPLATE.of_type("AWS::DynamoDB::Table")["LoyaltyTable"]["Properties"])
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    client.create_table(
        TableName=name,
        **{k: props[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")},
    )
    return name, client


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    principal: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    """An API Gateway v2 event for `method path`, built on the sample in events/ (the gateway's shape)."""
    event = copy.deepcopy(load_event("members_get.json"))
    event["routeKey"] = f"{method} {path}"
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    event["pathParameters"] = None
    event["headers"].update(headers or {})
    event["body"] = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
    event["requestContext"]["authorizer"] = {"lambda": principal if principal is not None else {"tenant": ""}}
    return event


class Api:
    """Calls routes the way the gateway would: the function serving the route from template.yaml."""

    def __init__(self) -> None:
        self.functions = {spec.logical_id: LocalFunction(spec) for spec in TEMPLATE.functions()}
        self.routes = sorted((r for spec in TEMPLATE.functions() for r in spec.routes), key=lambda r: r.specificity)

    def function_for(self, method: str, path: str) -> LocalFunction:
        for route in self.routes:
            if route.method in (method, "ANY") and route.pattern.match(path):
                return self.functions[route.function]
        raise AssertionError(f"template.yaml serves no route for {method} {path}")

    def call(self, method: str, path: str, principal: dict[str, str] | None, **kwargs: Any) -> tuple[int, Any]:
        status, body, _ = self.exchange(method, path, principal, **kwargs)
        return status, body

    def exchange(
        self, method: str, path: str, principal: dict[str, str] | None, **kwargs: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """As `call`, with the answer's headers (lower-cased names)."""
        response = self.function_for(method, path).invoke(http_event(method, path, principal=principal, **kwargs))
        body = response.get("body")
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        return response["statusCode"], json.loads(body) if body else None, headers


def principal(tenant: str = "demo", role: str = "channel", channel: str = "POS") -> dict[str, str]:
    return {
        "tenant": tenant,
        "role": role,
        "channel": channel if role == "channel" else "operator",
        "keyId": TEST_OPERATOR_KEY,
    }


TEST_OPERATOR_KEY, TEST_APPROVER_KEY = "01TESTKEY00000000000000000", "01APPROVERKEY0000000000000"


def operator_keys_on_record(tenant: str = "demo") -> None:
    """The test principals' key ids as active operator keys of the tenant (an approver must be one, D-120):
    tests call routes with a principal, not through the authorizer, so no key was issued for them."""
    from loyalty.api.principal import Principal
    from loyalty.services.auth import key_record
    from loyalty.store.table import Table

    ids = (TEST_OPERATOR_KEY, TEST_APPROVER_KEY, "01BENCHAPPROVER00000000000")
    created = "2026-01-01T00:00:00+00:00"
    Table().put_many(
        [key_record(Principal(tenant, "operator", "operator", i), "test operator", created, "") for i in ids]
    )


POS = principal()
MINI = principal(channel="MINI_PROGRAM")
OPERATOR = principal(role="operator")
OTHER_TENANT_POS = principal(tenant="other")
OTHER_TENANT_OPERATOR = principal(tenant="other", role="operator")


SHANGHAI = timezone(timedelta(hours=8))  # the demo program's time zone


def order_body(
    number: str, amount: int, *, days_ago: int = 1, quantity: int = 1, member: dict[str, str] | None = None
) -> dict[str, Any]:
    """A one-line order at the demo's offline store SH001, `days_ago` days before now (Shanghai time, on the
    system clock, which a test may have moved)."""
    from loyalty.clock import SystemClock

    when = (SystemClock().now().astimezone(SHANGHAI) - timedelta(days=days_ago)).replace(microsecond=0).isoformat()
    line = {
        "lineNo": 1,
        "sku": "TD0001",
        "quantity": str(quantity),
        "receivable": str(amount),
        "paid": str(amount),
        "pointsAmount": str(amount),
    }
    return {
        "programCode": "DEMO",
        "orderNo": number,
        "member": member or {"phone": "13800138000"},
        "storeCode": "SH001",
        "orderedAt": when,
        "lines": [line],
    }


def forget_answers(tenant: str) -> int:
    """Delete Powertools' idempotency records, as a call that raised after its commit does; returns how many."""
    import boto3

    from loyalty.settings import get_settings
    from loyalty.store import keys

    dynamodb, table = boto3.client("dynamodb", region_name=REGION), get_settings().table_name
    records = dynamodb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.idempotency(tenant)}},
    )["Items"]
    for record in records:
        dynamodb.delete_item(TableName=table, Key={"PK": record["PK"], "SK": record["SK"]})
    return len(records)


SNACK_DOUBLE = {  # a point rule on a product category: 2 points per yuan on 小食 (TD0001's category)
    "code": "snack-double",
    "name": "小食2倍积分",
    "pointGroupCode": "points",
    "awardMode": "amount",
    "unit": "1",
    "pointsPerUnit": 2,
    "countsTowardUpgrade": True,
    "costCenterCode": "marketing",
    "productScope": {"categoryCodes": ["SNACK"]},
    "validity": {"type": "fixedPeriod", "days": 365},
}


def with_points_budget(campaign: dict[str, Any], points: int = 10_000_000) -> dict[str, Any]:
    """A campaign that gives points has a points budget (issue 25); a test that is not about the budget gets
    one it cannot spend. A budget the test set is kept."""
    gives = any(e.get("type") in ("grantPoints", "orderPoints") for e in campaign.get("effects", []))
    limits = campaign.get("limits", {})
    if not gives or limits.get("budget", {}).get("points") is not None:
        return campaign
    return {**campaign, "limits": {**limits, "budget": {**limits.get("budget", {}), "points": points}}}
