"""template.yaml: valid for the tools, consistent with the code, narrow in its permissions."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess

import pytest

from tests.support import EVENTS, ROOT, TEMPLATE

TOOLS = ROOT / ".venv-tools" / "bin"
ENV = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
for _name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    ENV.pop(_name, None)


def tool(*command: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS / command[0]), *command[1:]],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.template
def test_cfn_lint_passes():
    result = tool("cfn-lint", "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.template
def test_sam_validate_and_lint_pass():
    for command in (["sam", "validate"], ["sam", "validate", "--lint"]):
        result = tool(*command)
        assert result.returncode == 0 and "is a valid SAM Template" in result.stdout + result.stderr, result.stderr


@pytest.mark.template
def test_sam_build_packages_every_function_and_the_layer_without_docker(tmp_path):
    build = tmp_path / "build"
    result = tool("sam", "build", "--build-dir", str(build), "--cache-dir", str(tmp_path / "cache"), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for function in TEMPLATE.functions():
        assert (build / function.logical_id / "app.py").exists(), function.logical_id
    layer = build / "LoyaltyLayer" / "python"
    assert (layer / "loyalty" / "api" / "resolver.py").exists()
    assert (layer / "aws_lambda_powertools").is_dir() and (layer / "pydantic").is_dir()
    shutil.rmtree(build)


def _router_routes(function_dir: str) -> set[tuple[str, str]]:
    """The routes of every router the function's app.py imports from loyalty.api.routes (or, for an app that
    builds its router elsewhere, of the routes module named like the function)."""
    tree = ast.parse((ROOT / "functions" / function_dir / "app.py").read_text())
    modules = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("loyalty.api.routes.")
    ]
    modules = modules or [f"loyalty.api.routes.{function_dir}"]
    return {
        (route[1] if isinstance(route[1], str) else route[1][0], _template_path(route[0]))
        for module in modules
        for route in importlib.import_module(str(module)).router._routes
    }


def _template_path(rule: str) -> str:
    return re.sub(r"<(\w+)>", r"{\1}", rule)


def test_every_http_function_serves_exactly_what_the_template_routes_to_it():
    for function in TEMPLATE.functions():
        if not function.routes:
            continue
        served = _router_routes(function.code_dir.name)
        for route in function.routes:
            if "+}" in route.path:  # a catch-all: everything the router serves must sit under it
                prefix = route.path.split("{")[0]
                assert all(path.startswith(prefix) for _, path in served), function.logical_id
            else:
                assert (route.method, route.path) in served, (function.logical_id, route.route_key)
        explicit = {(r.method, r.path) for r in function.routes if "+}" not in r.path}
        if explicit and len(explicit) == len(function.routes):
            assert served == explicit, function.logical_id


def test_docs_openapi_json_is_generated_from_the_code():
    from loyalty.api.openapi import document

    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == document(), "docs/openapi.json is stale: run `make openapi`"


def test_every_request_body_has_an_example():
    """Issue 13's done-when: every route in the document with examples (each union variant has its own)."""
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    schemas = document["components"]["schemas"]

    def has_examples(schema: dict) -> bool:
        if "$ref" in schema:
            return "examples" in schemas[schema["$ref"].split("/")[-1]]
        if "oneOf" in schema:
            return all(has_examples(variant) for variant in schema["oneOf"])
        return "examples" in schema

    missing = [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
        and not has_examples(next(iter(operation["requestBody"]["content"].values()))["schema"])
    ]
    assert missing == []


def test_every_operation_has_a_descriptive_camel_case_id():
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+[A-Za-z]*", op) for op in ids)
    assert {
        "registerMember",
        "getMember",
        "lookupMember",
        "bindIdentity",
        "erasePersonalData",
        "createTier",
        "listTiers",
        "enableStoreGroup",
        "deletePointRule",
    } <= set(ids)


def test_every_function_has_a_sample_event():
    samples = {path.name for path in EVENTS.glob("*.json")}
    for function in TEMPLATE.functions():
        prefix = function.code_dir.name
        assert any(name == f"{prefix}.json" or name.startswith(f"{prefix}_") for name in samples), prefix


def _statements(function: dict) -> list[dict]:
    """A function's own statements: its SAM Policies, or the inline policies of the role it names."""
    properties = function["Properties"]
    if "Role" in properties:
        role = TEMPLATE.resources[properties["Role"]["Fn::GetAtt"][0]]["Properties"]
        return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]
    return [s for policy in properties["Policies"] for s in policy.get("Statement", [])]


def test_each_function_reaches_only_its_keys():
    policies = {name: _statements(r) for name, r in TEMPLATE.of_type("AWS::Serverless::Function").items()}
    for name, statements in policies.items():
        for statement in statements:
            if name == "MigrationsFunction" and statement["Action"] == ["dynamodb:Scan"]:
                continue  # a migration reads every stored item once (D-112); what it writes is scoped below
            if name == "PublishEventsFunction" and statement["Resource"] != {"Fn::GetAtt": ["LoyaltyTable", "Arn"]}:
                continue  # the stream's records, not the table's items
            if any(action.startswith("dynamodb:") for action in statement["Action"]):
                leading = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                expected = {
                    "AuthorizerFunction": ["APIKEY#*", "T#*#APIKEY#*"],  # keys before D-120, and a tenant's
                    "ExpirySweepFunction": ["T#*", "PROGRAMS"],
                    "CampaignsFunction": ["T#*", "PROGRAMS"],  # the daily schedule reads every program
                    "MessagesFunction": ["T#*", "PROGRAMS"],  # the release schedule reads every program
                    "TierSweepFunction": ["T#*", "PROGRAMS"],
                    "ReconcileFunction": ["T#*", "PROGRAMS"],  # a page of programs, then their members
                    # its own run state besides, and the keys issued before D-120 (migration 005)
                    "MigrationsFunction": ["T#*", "MIGRATIONS", "MIGRATION#*", "APIKEY#*"],
                }
                assert leading == expected.get(name, ["T#*"]), name
                assert "dynamodb:Scan" not in statement["Action"] and "dynamodb:*" not in statement["Action"]
    # the authorizer reads a key's secret and marks the day it was used (D-120), nothing else
    assert policies["AuthorizerFunction"][0]["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]


def test_functions_that_walk_the_programs_read_a_page_of_job_marks_in_one_call():
    """A page of programs reads its programs' job marks with BatchGetItem (D-109)."""
    for name in (
        "ExpirySweepFunction",
        "TierSweepFunction",
        "CampaignsFunction",
        "MessagesFunction",
        "ReconcileFunction",
    ):
        statements = _statements(TEMPLATE.resources[name])
        (table,) = [s for s in statements if "dynamodb:Query" in s["Action"]]
        assert {"dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"} <= set(table["Action"]), name


def test_queue_pollers_and_the_stream_reader_are_held_to_their_own_queue_and_stream():
    """SAM gives a function with a queue or stream source AWS's managed policy for it (Resource "*"); these
    functions name a role of their own whose statements name their queue or stream (issue 12)."""
    sources = {"SQS": "Queue", "DynamoDB": "Stream"}
    for name, function in TEMPLATE.of_type("AWS::Serverless::Function").items():
        events = function["Properties"].get("Events", {}).values()
        polled = [e["Properties"][sources[e["Type"]]] for e in events if e["Type"] in sources]
        if not polled:
            continue
        assert "Policies" not in function["Properties"], name
        statements = _statements(function)
        for source in polled:
            reads = [s for s in statements if s["Resource"] == source]
            assert reads and {"sqs:ReceiveMessage", "dynamodb:GetRecords"} & set(reads[0]["Action"]), name
        # An SMS published to a phone number has no resource to name (AWS documents Resource "*" for it).
        assert all(s["Resource"] != "*" or s["Action"] == ["sns:Publish"] for s in statements), name


def test_what_holds_money_or_lost_messages_survives_a_stack_delete():
    """The table: deletion protection, and Retain on delete and on a replacing update (PITR backups do not
    survive a stack delete); every dead-letter queue is kept too (issue 12)."""
    resources = TEMPLATE.resources
    table = resources["LoyaltyTable"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")
    dead_letters = [name for name in TEMPLATE.of_type("AWS::SQS::Queue") if "DeadLetter" in name]
    assert len(dead_letters) == 12
    assert all(
        (resources[n]["DeletionPolicy"], resources[n]["UpdateReplacePolicy"]) == ("Retain",) * 2 for n in dead_letters
    )


def test_every_queue_is_encrypted_and_every_rule_target_has_a_dead_letter_queue():
    """AWS-managed SSE by default; with KmsKeyArn, the customer's key on every queue, the table and the topic."""
    by_default = {"Fn::If": ["UseCustomerKey", {"Ref": "AWS::NoValue"}, True]}
    customer_key = {"Fn::If": ["UseCustomerKey", {"Ref": "KmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    for queue in TEMPLATE.of_type("AWS::SQS::Queue").values():
        assert queue["Properties"]["SqsManagedSseEnabled"] == by_default
        assert queue["Properties"]["KmsMasterKeyId"] == customer_key
    sse = TEMPLATE.resources["LoyaltyTable"]["Properties"]["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["KMSMasterKeyId"] == customer_key
    assert TEMPLATE.resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == customer_key
    for name, rule in TEMPLATE.of_type("AWS::Events::Rule").items():
        for target in rule["Properties"].get("Targets", []):
            assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}, name
            assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400, name
    policy = TEMPLATE.resources["EventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    sources = policy["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == sorted(TEMPLATE.of_type("AWS::Events::Rule"))


def test_throttling_and_concurrency_are_parameters_of_the_stack():
    """Every route throttled (burst and rate), every queue source capped, the authorizer's concurrency kept,
    and how long a revoked key keeps working (the authorizer's cache) a parameter (issue 12)."""
    api = TEMPLATE.resources["HttpApi"]["Properties"]
    assert api["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
    }
    identity = api["Auth"]["Authorizers"]["ApiKeyAuthorizer"]["Identity"]
    assert identity["ReauthorizeEvery"] == {"Ref": "AuthorizerCacheSeconds"}
    authorizer = TEMPLATE.resources["AuthorizerFunction"]["Properties"]
    assert authorizer["ReservedConcurrentExecutions"] == {"Ref": "AuthorizerReservedConcurrency"}
    sources = [
        event["Properties"]
        for function in TEMPLATE.of_type("AWS::Serverless::Function").values()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "SQS"
    ]
    assert len(sources) == 10
    assert all(s["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "QueueMaximumConcurrency"}} for s in sources)


def test_logs_are_kept_for_a_set_time_and_every_request_leaves_an_access_line():
    """One log group for the functions and one access log for the API, both kept LogRetentionDays; the access
    line names request, route, status, latency, source IP and the caller's key id (issue 12)."""
    for name in ("FunctionLogs", "ApiAccessLogs"):
        assert TEMPLATE.resources[name]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert TEMPLATE.document["Globals"]["Function"]["LoggingConfig"] == {"LogGroup": {"Ref": "FunctionLogs"}}
    access = TEMPLATE.resources["HttpApi"]["Properties"]["AccessLogSettings"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    line = json.loads(access["Format"])
    assert {"requestId", "routeKey", "status", "latencyMs", "sourceIp", "keyId"} <= set(line)
    assert line["keyId"] == "$context.authorizer.keyId"  # the authorizer puts keyId in its context


def test_every_schedule_has_a_retry_policy_and_a_dead_letter_queue():
    schedules = [
        (name, event["Properties"])
        for name, function in TEMPLATE.of_type("AWS::Serverless::Function").items()
        for event in function["Properties"].get("Events", {}).values()
        if event["Type"] == "ScheduleV2"
    ]
    assert len(schedules) == 5
    for name, schedule in schedules:
        assert schedule["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}, name
        assert schedule["RetryPolicy"]["MaximumRetryAttempts"] > 0, name


def test_every_function_and_every_dead_letter_queue_has_an_alarm_on_the_stack_topic():
    """A message in a dead-letter queue, a function's errors or throttles, a reconciliation difference: each
    an order held for review: each raises an alarm on AlarmTopic, which is an output of the stack (issue 12)."""
    alarms = TEMPLATE.of_type("AWS::CloudWatch::Alarm").values()
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)
    assert all(a["Properties"]["TreatMissingData"] == "notBreaching" for a in alarms)
    pairs = {
        (stat["MetricStat"]["Metric"]["MetricName"], stat["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"])
        for a in alarms
        for stat in a["Properties"].get("Metrics", [])
        if "MetricStat" in stat
    }
    for function in TEMPLATE.of_type("AWS::Serverless::Function"):
        assert {("Errors", function), ("Throttles", function)} <= pairs, function
    queues = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms
        if a["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert queues == {name for name in TEMPLATE.of_type("AWS::SQS::Queue") if "DeadLetter" in name}
    assert {"ReconciliationDifferences", "OrdersHeld"} <= {a["Properties"].get("MetricName") for a in alarms}
    assert TEMPLATE.document["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


def test_the_accrual_may_read_in_batches_and_find_the_promotions():
    """It reads an order's places in groups and a promotion's counts and budget with BatchGetItem, and the
    approved promotions on GSI2 (D-084, D-088): without these it is denied on AWS, where moto lets it be."""
    (statement,) = [
        s for s in _statements(TEMPLATE.resources["AccruePointsFunction"]) if "dynamodb:Query" in s["Action"]
    ]
    assert {"dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem"} <= set(statement["Action"])
    assert {"Fn::Sub": "${LoyaltyTable.Arn}/index/GSI2"} in statement["Resource"]


def test_the_campaign_function_may_write_a_frozen_list_in_batches_and_schedule_a_launch_but_never_scan():
    """An audience's snapshot writes its members with BatchWriteItem and reads its tenant's member index, not
    the table (D-111); a batch campaign's launch is a one-time schedule sent as CampaignLaunchRole (D-093,
    D-094): moto enforces no IAM."""
    statements = _statements(TEMPLATE.resources["CampaignsFunction"])
    actions = {action for statement in statements for action in statement["Action"]}
    assert {"dynamodb:BatchWriteItem", "scheduler:CreateSchedule", "iam:PassRole"} <= actions
    assert "dynamodb:Scan" not in actions
    launch = TEMPLATE.resources["CampaignLaunchRole"]["Properties"]
    assert launch["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}


def test_the_message_sender_may_publish_sms_send_email_and_back_off_on_its_own_queue():
    """moto enforces no IAM: what MessagesFunction calls must be in its role (issue 15)."""
    statements = _statements(TEMPLATE.resources["MessagesFunction"])
    actions = {action for s in statements for action in s["Action"]}
    assert {"sns:Publish", "sqs:ChangeMessageVisibility", "sqs:SendMessage"} <= actions
    assert {"sts:AssumeRole", "sts:TagSession", "ses:GetEmailIdentity"} <= actions  # email as its tenant (D-125)
    assert {"dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= actions
    tables = next(s for s in statements if "dynamodb:Query" in s["Action"])["Resource"]
    assert {"Fn::Sub": "${LoyaltyTable.Arn}/index/GSI2"} in tables  # the tenant's records by day
    campaigns = _statements(TEMPLATE.resources["CampaignsFunction"])
    assert any(
        s["Resource"] == {"Fn::GetAtt": ["MessageQueue", "Arn"]} and "sqs:SendMessage" in s["Action"] for s in campaigns
    )


def test_no_deployed_function_may_send_webhooks_over_plain_http():
    """D-124: plain http to this machine is the local stack's (its environment sets the flag), never AWS's."""
    text = (ROOT / "template.yaml").read_text()
    assert "LOYALTY_LOCAL_WEBHOOKS" not in text
    assert all("LOYALTY_LOCAL_WEBHOOKS" not in function.environment for function in TEMPLATE.functions())


def test_email_goes_out_only_under_a_session_of_its_tenant():
    """D-125: the messages function may not send email itself; it takes MailSenderRole with a tenant tag, and
    that role sends only from the SES identities tagged with the same tenant."""
    roles = TEMPLATE.of_type("AWS::IAM::Role")
    messages = [s for p in roles["MessagesRole"]["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert not any("ses:SendEmail" in s["Action"] for s in messages)
    sender = roles["MailSenderRole"]["Properties"]
    [trust] = sender["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": {"Fn::GetAtt": ["MessagesRole", "Arn"]}}
    assert trust["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    [send] = sender["Policies"][0]["PolicyDocument"]["Statement"]
    assert send["Action"] == ["ses:SendEmail"]
    assert send["Condition"] == {"StringEquals": {"aws:ResourceTag/tenant": "${aws:PrincipalTag/tenant}"}}


def test_cursors_are_sealed_with_a_secret_generated_per_stack():
    """D-128: the HMAC key comes from a Secrets Manager secret the stack generates, never from the code."""
    text = (ROOT / "template.yaml").read_text()
    assert 'CURSOR_SECRET: !Sub "{{resolve:secretsmanager:${CursorSecret}:SecretString}}"' in text
    secret = TEMPLATE.of_type("AWS::SecretsManager::Secret")["CursorSecret"]["Properties"]
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
