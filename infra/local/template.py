"""Read template.yaml: CloudFormation tags, the functions and their event sources, and intrinsic values
resolved to the local emulator's physical names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "local"


class _CfnLoader(yaml.SafeLoader):
    """YAML with the short forms of intrinsic functions (!Ref, !GetAtt, !Sub, ...) as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


@dataclass(frozen=True)
class Route:
    method: str  # GET, POST, ... or ANY
    path: str  # as in the template: /v1/members/{memberId}, /v1/admin/{proxy+}
    function: str
    authorizer: str | None  # None = open route

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", self.path)
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex)
        return re.compile(f"^{regex}$")

    @property
    def specificity(self) -> tuple[int, int]:
        """API Gateway prefers literal paths, then parameters, then greedy {proxy+}."""
        return (self.path.count("+}"), self.path.count("{"))


@dataclass(frozen=True)
class QueueSource:
    function: str
    queue: str  # logical id of the queue
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class StreamSource:
    function: str
    table: str  # logical id of the table whose stream it reads
    batch_size: int
    report_batch_item_failures: bool
    maximum_retry_attempts: int
    on_failure_queue: str | None  # logical id of the SQS destination for records that keep failing
    filters: tuple[str, ...]  # event-filter patterns (JSON); a record passes if any matches


@dataclass(frozen=True)
class ScheduleSource:
    function: str
    name: str
    expression: str  # cron(...) or rate(...)
    timezone: str
    enabled: bool
    input: str | None


@dataclass
class Function:
    logical_id: str
    code_dir: Path
    handler: str  # module.function, e.g. app.lambda_handler
    environment: dict[str, Any]
    timeout: int
    routes: list[Route] = field(default_factory=list)
    queues: list[QueueSource] = field(default_factory=list)
    streams: list[StreamSource] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)


class Template:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.root = path.parent
        # B506: a safe loader
        self.document: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506  # nosec B506
        self.resources: dict[str, dict[str, Any]] = self.document["Resources"]
        self.parameters = {name: spec.get("Default") for name, spec in self.document.get("Parameters", {}).items()}

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}

    def functions(self) -> list[Function]:
        defaults = self.document.get("Globals", {}).get("Function", {})
        functions = []
        for name, resource in self.of_type("AWS::Serverless::Function").items():
            props = {**defaults, **resource["Properties"]}
            environment = {
                **defaults.get("Environment", {}).get("Variables", {}),
                **resource["Properties"].get("Environment", {}).get("Variables", {}),
            }
            function = Function(
                name, self.root / props["CodeUri"], props["Handler"], environment, int(props.get("Timeout", 3))
            )
            for event in (props.get("Events") or {}).values():
                self._add_event(function, event)
            functions.append(function)
        return functions

    def _add_event(self, function: Function, event: dict[str, Any]) -> None:
        kind, props = event["Type"], event.get("Properties", {})
        if kind == "HttpApi":
            api = self.resources[props["ApiId"]["Ref"]] if "ApiId" in props else {}
            default = api.get("Properties", {}).get("Auth", {}).get("DefaultAuthorizer")
            chosen = props.get("Auth", {}).get("Authorizer", default)
            function.routes.append(
                Route(
                    props["Method"].upper(),
                    props["Path"],
                    function.logical_id,
                    None if chosen in (None, "NONE") else chosen,
                )
            )
        elif kind == "SQS":
            queue = props["Queue"]["Fn::GetAtt"][0]
            function.queues.append(
                QueueSource(
                    function.logical_id,
                    queue,
                    int(props.get("BatchSize", 10)),
                    "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                )
            )
        elif kind == "DynamoDB":
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            function.streams.append(
                StreamSource(
                    function.logical_id,
                    props["Stream"]["Fn::GetAtt"][0],
                    int(props.get("BatchSize", 100)),
                    "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    int(props.get("MaximumRetryAttempts", 3)),
                    destination["Fn::GetAtt"][0] if destination else None,
                    tuple(f["Pattern"] for f in props.get("FilterCriteria", {}).get("Filters", [])),
                )
            )
        elif kind in ("Schedule", "ScheduleV2"):
            name = props.get("Name") or f"{function.logical_id}-{len(function.schedules)}"
            enabled = props.get("Enabled", props.get("State", "ENABLED") == "ENABLED")
            function.schedules.append(
                ScheduleSource(
                    function.logical_id,
                    name,
                    props["Schedule" if kind == "Schedule" else "ScheduleExpression"],
                    props.get("ScheduleExpressionTimezone", "UTC"),
                    bool(enabled),
                    props.get("Input"),
                )
            )

    def authorizer_function(self, name: str) -> str:
        """The logical id of the function behind an HTTP API authorizer."""
        for api in self.of_type("AWS::Serverless::HttpApi").values():
            spec = api["Properties"].get("Auth", {}).get("Authorizers", {}).get(name)
            if spec:
                return spec["FunctionArn"]["Fn::GetAtt"][0]
        raise KeyError(f"no authorizer {name}")

    def reauthorize_seconds(self, name: str) -> int:
        """How long API Gateway caches an authorizer's answer per identity (`ReauthorizeEvery`, a number or a
        parameter's default; 0: no cache)."""
        for api in self.of_type("AWS::Serverless::HttpApi").values():
            spec = api["Properties"].get("Auth", {}).get("Authorizers", {}).get(name)
            if spec:
                every = spec.get("Identity", {}).get("ReauthorizeEvery", 0)
                return int(self.parameters[every["Ref"]] if isinstance(every, dict) else every)
        return 0

    def identity_headers(self, name: str) -> list[str]:
        for api in self.of_type("AWS::Serverless::HttpApi").values():
            spec = api["Properties"].get("Auth", {}).get("Authorizers", {}).get(name)
            if spec:
                return [h.lower() for h in spec.get("Identity", {}).get("Headers", [])]
        return []


class Resolver:
    """Intrinsic functions to local values: Ref of a table = its name, of a queue = its URL, and so on."""

    def __init__(self, template: Template, physical: dict[str, dict[str, str]]) -> None:
        self.template = template
        self.physical = physical  # logical id -> {"Ref": ..., "Arn": ..., ...}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.physical[arg[0]][arg[1]]
            if key == "Fn::Sub":
                return self.sub(arg)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        return value

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::Partition": "aws",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.parameters:
            return str(self.template.parameters[name])
        return self.physical.get(name, {}).get("Ref", name)

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return self.physical[logical][attribute]
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)
