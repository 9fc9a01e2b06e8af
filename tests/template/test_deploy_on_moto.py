"""Deployability (issue 5, item 7): template.yaml through the SAM transform (samtranslator, offline, in the
tools virtualenv) to plain CloudFormation, created on moto's CloudFormation.

moto's CloudFormation has no support for four of the types the transform emits; they are named here, so a
new unsupported type fails this test until someone looks at it. The schedules among them are created
through moto's Scheduler API with the stack's real function and role ARNs, so they are checked too.
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
    "AWS::ApiGatewayV2::Stage",
    "AWS::Scheduler::Schedule",
    "AWS::SQS::QueuePolicy",
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


def _for_moto(template: dict) -> dict:
    """moto resolves `Ref` of an event bus to its object, not its name; `GetAtt Name` is the same value."""
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


@pytest.mark.template
def test_the_transformed_template_creates_every_resource_on_moto(cloudformation):
    resources = cloudformation["Resources"]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="loyalty-artifacts")
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
        for name, resource in resources.items():
            if resource["Type"] in ("AWS::Lambda::Function", "AWS::Lambda::LayerVersion"):
                s3.put_object(Bucket="loyalty-artifacts", Key=f"{name}.zip", Body=archive.getvalue())
        stacks = boto3.client("cloudformation", region_name="us-east-1")
        stacks.create_stack(
            StackName="loyalty",
            TemplateBody=json.dumps(_for_moto(cloudformation)),
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

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert set(resources) - set(created) == unsupported
    types = {r["Type"] for r in resources.values()}
    assert {"AWS::Lambda::Function", "AWS::DynamoDB::Table", "AWS::Lambda::EventSourceMapping"} <= types
    assert sum(r["Type"] == "AWS::Lambda::Function" for r in resources.values()) == 17
    assert schedules == {"expiry-sweep-hourly", "tier-sweep-hourly", "reconcile-nightly"}


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
