"""Deployability (issue 5, item 7): template.yaml through the SAM transform (samtranslator, offline, in the
tools virtualenv) to plain CloudFormation, created on moto's CloudFormation.

moto's CloudFormation has no support for five of the types the transform emits; they are named here, so a
new unsupported type fails this test until someone looks at it. The schedules and the alarms among them are
created through moto's Scheduler and CloudWatch APIs with the stack's real names and ARNs, so they are
checked too. The stack is created twice: with the defaults, and with a customer-managed key and an alarm
address (the resources under a condition).
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import boto3
import pytest
from moto import mock_aws

from tests.support import ROOT

NOT_IN_MOTO_CLOUDFORMATION = {
    "AWS::ApiGatewayV2::Api",
    "AWS::CloudWatch::Alarm",
    "AWS::ApiGatewayV2::Stage",
    "AWS::Scheduler::Schedule",
    "AWS::SQS::QueuePolicy",
    "AWS::SecretsManager::Secret",  # the cursors' key (D-128): resolved at deploy time, not by moto
}


@pytest.fixture(scope="module")
def cloudformation() -> dict:
    result = subprocess.run(
        [str(ROOT / ".venv-tools" / "bin" / "python"), "-m", "infra.translate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


CUSTOM = {"MigrationsOnDeploy"}  # moto runs a custom resource's function in Docker, which this machine has not


def _for_moto(template: dict) -> dict:
    """moto resolves `Ref` of an event bus to its object, not its name; `GetAtt Name` is the same value. The
    custom resources are left out (CUSTOM): test_migrations.py checks what the deploy asks of its function."""
    resources = {name: r for name, r in template["Resources"].items() if name not in CUSTOM}
    template = {**template, "Resources": resources}
    buses = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Events::EventBus"}

    def swap(node: object) -> object:
        if isinstance(node, dict):
            if set(node) == {"Ref"} and node["Ref"] in buses:
                return {"Fn::GetAtt": [node["Ref"], "Name"]}
            return {key: swap(value) for key, value in node.items()}
        if isinstance(node, list):
            return [swap(value) for value in node]
        return node

    return swap(template)  # type: ignore[return-value]


CONDITIONAL = {"CustomerKeyPolicy": "UseCustomerKey"}


@pytest.mark.template
@pytest.mark.parametrize("customised", [False, True], ids=["defaults", "customer-key-and-alarm-email"])
def test_the_transformed_template_creates_every_resource_on_moto(cloudformation, customised):
    resources = cloudformation["Resources"]
    assert {name: resources[name]["Condition"] for name in CONDITIONAL} == CONDITIONAL
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="loyalty-artifacts")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
        for name, resource in resources.items():
            if resource["Type"] in ("AWS::Lambda::Function", "AWS::Lambda::LayerVersion"):
                s3.put_object(Bucket="loyalty-artifacts", Key=f"{name}.zip", Body=archive.getvalue())
        parameters = []
        if customised:
            key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
            parameters = [
                {"ParameterKey": "KmsKeyArn", "ParameterValue": key},
                {"ParameterKey": "AlarmEmail", "ParameterValue": "oncall@example.com"},
            ]
        stacks = boto3.client("cloudformation", region_name="us-east-1")
        stacks.create_stack(
            StackName="loyalty",
            TemplateBody=json.dumps(_for_moto(cloudformation)),
            Parameters=parameters,
            Capabilities=["CAPABILITY_IAM"],
        )
        stack = stacks.describe_stacks(StackName="loyalty")["Stacks"][0]
        created = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in stacks.list_stack_resources(StackName="loyalty")["StackResourceSummaries"]
            if r["ResourceStatus"] == "CREATE_COMPLETE"
        }
        unsupported = {name for name, r in resources.items() if r["Type"] in NOT_IN_MOTO_CLOUDFORMATION}
        schedules = _create_schedules(resources, created)
        alarms = _create_alarms(resources, created)
        if customised:
            key_users = boto3.client("iam", region_name="us-east-1").list_entities_for_policy(
                PolicyArn=created["CustomerKeyPolicy"]
            )["PolicyRoles"]
            queue_key = boto3.client("sqs", region_name="us-east-1").get_queue_attributes(
                QueueUrl=created["OrderQueue"], AttributeNames=["All"]
            )["Attributes"]["KmsMasterKeyId"]
        subscribers = boto3.client("sns", region_name="us-east-1").list_subscriptions()["Subscriptions"]

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    skipped = set() if customised else set(CONDITIONAL)
    assert set(resources) - set(created) == unsupported | skipped | CUSTOM
    types = {r["Type"] for r in resources.values()}
    assert {"AWS::Lambda::Function", "AWS::DynamoDB::Table", "AWS::Lambda::EventSourceMapping"} <= types
    assert sum(r["Type"] == "AWS::Lambda::Function" for r in resources.values()) == 21
    assert schedules == {
        "expiry-sweep-hourly",
        "tier-sweep-hourly",
        "reconcile-nightly",
        "campaign-days-hourly",
        "messages-release-held",
    }
    assert len(alarms) == 21 + 12 + 2  # every function, every dead-letter queue, reconciliation, held orders
    assert [s["Endpoint"] for s in subscribers] == (["oncall@example.com"] if customised else [])
    if customised:  # the queues are under the key (moto's table ignores SSESpecification: test_template.py)
        assert queue_key == key
        assert len(key_users) == 21


def _resolve(node: object, created: dict[str, str]) -> object:
    """The alarms' intrinsics: Ref of a function = its name, of the topic = its ARN, a queue's QueueName."""
    if isinstance(node, dict):
        if set(node) == {"Ref"}:
            return created[node["Ref"]]
        if set(node) == {"Fn::GetAtt"} and node["Fn::GetAtt"][1] == "QueueName":
            return created[node["Fn::GetAtt"][0]].rsplit("/", 1)[-1]
        return {key: _resolve(value, created) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(value, created) for value in node]
    return node


def _create_alarms(resources: dict, created: dict[str, str]) -> set[str]:
    """Each alarm through the CloudWatch API (botocore checks its shape), named by its logical id."""
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    for name, resource in resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            cloudwatch.put_metric_alarm(AlarmName=name, **_resolve(resource["Properties"], created))  # type: ignore[arg-type]
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    topic = created["AlarmTopic"]
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms)
    return {alarm["AlarmName"] for alarm in alarms}


def _create_schedules(resources: dict, created: dict[str, str]) -> set[str]:
    """Each schedule through the Scheduler API, its target and role resolved to what the stack created."""
    functions = boto3.client("lambda", region_name="us-east-1")
    roles = boto3.client("iam", region_name="us-east-1")
    scheduler = boto3.client("scheduler", region_name="us-east-1")
    for resource in resources.values():
        if resource["Type"] != "AWS::Scheduler::Schedule":
            continue
        properties = resource["Properties"]
        function = created[properties["Target"]["Arn"]["Fn::GetAtt"][0]]
        role = created[properties["Target"]["RoleArn"]["Fn::GetAtt"][0]]
        scheduler.create_schedule(
            Name=properties["Name"],
            ScheduleExpression=properties["ScheduleExpression"],
            FlexibleTimeWindow=properties["FlexibleTimeWindow"],
            Target={
                "Arn": functions.get_function(FunctionName=function)["Configuration"]["FunctionArn"],
                "RoleArn": roles.get_role(RoleName=role)["Role"]["Arn"],
            },
        )
    return {schedule["Name"] for schedule in scheduler.list_schedules()["Schedules"]}


@pytest.mark.template
def test_no_role_of_the_transformed_template_gets_a_queue_or_stream_managed_policy(cloudformation):
    """What SAM adds for a queue or stream source (Resource "*") is in no role: the pollers and the stream
    reader have roles of their own (issue 12). The other functions keep SAM's logs and X-Ray policies."""
    roles = {name: r["Properties"] for name, r in cloudformation["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    granted = json.dumps([role.get("ManagedPolicyArns", []) for role in roles.values()])
    assert "AWSLambdaSQSQueueExecutionRole" not in granted and "AWSLambdaDynamoDBExecutionRole" not in granted
    pollers = {"AccruePointsRole", "ProcessReturnRole", "IssueCouponsRole", "ExpirySweepRole", "TierSweepRole"}
    for name in pollers | {"PublishEventsRole"}:
        assert roles[name]["ManagedPolicyArns"] == [{"Ref": "FunctionRuntimePolicy"}], name
