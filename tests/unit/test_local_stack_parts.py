"""The local stack's own logic: reading template.yaml, route precedence, schedules."""

from datetime import UTC, datetime

import pytest

from infra.local.scheduler import Cron, due
from infra.local.template import Resolver, Route
from tests.support import TEMPLATE


def test_every_function_in_the_template_is_found_with_its_routes():
    functions = {f.logical_id: f for f in TEMPLATE.functions()}
    assert {"AuthorizerFunction", "RegisterMemberFunction", "MembersFunction", "AdminConfigFunction"} <= set(functions)
    routes = {r.route_key: r for f in functions.values() for r in f.routes}
    assert routes["POST /v1/members"].function == "RegisterMemberFunction"
    assert routes["POST /v1/members"].authorizer == "ApiKeyAuthorizer"
    assert functions["MembersFunction"].environment["TABLE_NAME"] == {"Ref": "LoyaltyTable"}  # from Globals
    assert TEMPLATE.authorizer_function("ApiKeyAuthorizer") == "AuthorizerFunction"
    assert TEMPLATE.identity_headers("ApiKeyAuthorizer") == ["authorization"]


def test_literal_paths_win_over_parameters_and_parameters_over_greedy_paths():
    routes = sorted(
        [
            Route("ANY", "/v1/{proxy+}", "F3", None),
            Route("GET", "/v1/members/{id}", "F2", None),
            Route("GET", "/v1/members/lookup", "F1", None),
        ],
        key=lambda r: r.specificity,
    )
    assert [r.function for r in routes] == ["F1", "F2", "F3"]
    assert routes[1].pattern.match("/v1/members/42").groupdict() == {"id": "42"}
    assert routes[2].pattern.match("/v1/a/b/c").groupdict() == {"proxy": "a/b/c"}
    assert not routes[1].pattern.match("/v1/members/42/identities")


def test_intrinsics_resolve_to_local_names():
    resolver = Resolver(TEMPLATE, {"LoyaltyTable": {"Ref": "LoyaltyTable", "Arn": "arn:table"}})
    assert resolver({"Ref": "LoyaltyTable"}) == "LoyaltyTable"
    assert resolver({"Fn::GetAtt": ["LoyaltyTable", "Arn"]}) == "arn:table"
    assert resolver({"Fn::Sub": "loyalty-${AWS::StackName}-${LogLevel}"}) == "loyalty-local-INFO"


def test_aws_cron_fields_including_names_ranges_steps_and_question_marks():
    cron = Cron("5 16 ? * MON-FRI *")  # 16:05 on weekdays
    assert cron.matches(datetime(2026, 11, 23, 16, 5))  # a Monday
    assert not cron.matches(datetime(2026, 11, 22, 16, 5))  # a Sunday
    assert Cron("0/15 * * * ? *").matches(datetime(2026, 1, 1, 3, 45))
    assert not Cron("0/15 * * * ? *").matches(datetime(2026, 1, 1, 3, 46))
    with pytest.raises(ValueError):
        Cron("0 0 * * *")


def test_a_daily_schedule_fires_once_at_its_minute_in_its_zone():
    expression = "cron(5 0 * * ? *)"  # 00:05 in Shanghai = 16:05 UTC the day before
    before = datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert due(expression, "Asia/Shanghai", before, datetime(2026, 11, 22, 16, 6, tzinfo=UTC))
    assert not due(expression, "Asia/Shanghai", before, datetime(2026, 11, 22, 16, 4, tzinfo=UTC))
    assert not due(expression, "UTC", before, datetime(2026, 11, 22, 16, 6, tzinfo=UTC))
    assert due("rate(5 minutes)", "UTC", datetime(2026, 1, 1, 0, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 5, tzinfo=UTC))


def test_a_jump_of_the_clock_fires_a_schedule_due_in_it_once_and_costs_its_days_not_its_minutes():
    """The local clock moved a year ahead (D-108): the hourly sweep is due, a yearly one on a day not in the
    jump is not, and the answer takes a walk over 365 days (the minute-by-minute walk took seconds)."""
    import time

    before, after = datetime(2026, 12, 7, 8, 0, tzinfo=UTC), datetime(2027, 12, 7, 8, 0, tzinfo=UTC)
    started = time.perf_counter()
    assert due("cron(5 * * * ? *)", "Asia/Shanghai", before, after)
    assert due("cron(30 19 * * ? *)", "UTC", before, after)
    assert due("rate(5 minutes)", "UTC", before, after)
    assert not due("cron(0 0 1 1 ? 2030)", "UTC", before, after)  # New Year 2030: not in the jump
    assert due("cron(0 0 1 1 ? 2027)", "UTC", before, after)
    assert not due("cron(0 0 29 2 ? *)", "UTC", before, after)  # no 29 February from Dec 2026 to Dec 2027
    assert time.perf_counter() - started < 1  # 365 days of a never-matching cron: day checks, no minutes


def test_the_clock_moves_forward_only_and_ids_follow_it():
    from datetime import timedelta

    from loyalty import clock
    from loyalty.ids import new_ulid

    try:
        before = clock.SystemClock().now()
        moved = clock.advance(timedelta(days=400))
        assert moved - before >= timedelta(days=400)
        assert new_ulid() > new_ulid(int((moved - timedelta(minutes=1)).timestamp() * 1000))  # ids in moved time
        with pytest.raises(ValueError):
            clock.move_to(before)  # back in time: refused
        with pytest.raises(ValueError):
            clock.advance(timedelta(seconds=-1))
        with pytest.raises(ValueError):
            clock.move_to(datetime(2030, 1, 1))  # no offset
    finally:
        clock.reset()


def test_the_stream_poller_delivers_what_follows_a_cancelled_transaction():
    """moto swaps a table's stream for a copy when it rolls back a cancelled transaction; a poller keeping its
    iterator saw a phantom record of the cancelled write and nothing after it."""
    import boto3
    from moto import mock_aws

    from infra.local.pollers import StreamPoller
    from infra.local.template import StreamSource

    class Recorder:
        name = "Recorder"

        def __init__(self) -> None:
            self.keys: list[str] = []

        def invoke(self, event: dict) -> dict:
            self.keys += [r["dynamodb"]["Keys"]["PK"]["S"] for r in event["Records"]]
            return {"batchItemFailures": []}

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        arn = dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        source = StreamSource("Recorder", "t", 10, True, 0, None, ())
        recorder = Recorder()
        poller = StreamPoller(source, recorder, boto3.client("dynamodbstreams", region_name="us-east-1"), arn)
        dynamodb.put_item(TableName="t", Item={"PK": {"S": "a"}})
        poller.poll_once()
        with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {"PK": {"S": "cancelled"}}}},
                    {
                        "Put": {
                            "TableName": "t",
                            "Item": {"PK": {"S": "a"}},
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                ]
            )
        dynamodb.put_item(TableName="t", Item={"PK": {"S": "c"}})
        poller.poll_once()
    assert recorder.keys == ["a", "c"]


def test_a_request_s_invocation_goes_before_waiting_background_ones():
    """D-122: with a background invocation running and both kinds waiting, the request's goes next."""
    import threading
    import time

    from infra.local.runtime import InvocationLock

    lock, order = InvocationLock(), []
    lock.acquire(foreground=False)  # a poller's invocation is running

    def invoke(name: str, foreground: bool) -> None:
        lock.acquire(foreground)
        order.append(name)
        lock.release()

    background = threading.Thread(target=invoke, args=("background", False))
    background.start()
    time.sleep(0.05)  # the poller waits first
    request = threading.Thread(target=invoke, args=("request", True))
    request.start()
    while not lock.foreground_waiting:
        time.sleep(0.01)
    lock.release()
    background.join(5)
    request.join(5)
    assert order == ["request", "background"]
