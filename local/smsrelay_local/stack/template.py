"""Read template.yaml: parameters, conditions, intrinsic functions, functions and their events.

The local stack builds everything from this parse, so the template stays the only list of
functions, routes, queues, schedules and environment variables.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cfn_flip

from .language_extensions import LanguageExtensionError, expand, uses_language_extensions

ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK_NAME = "smsrelay-local"
_NO_VALUE = object()  # AWS::NoValue: the key or item disappears
_SUB_VAR = re.compile(r"\$\{([^}]+)\}")


class TemplateError(ValueError):
    """The template uses something the local stack cannot emulate."""


@dataclass(frozen=True)
class ApiRoute:
    function_id: str
    event_id: str
    path: str  # as in the template, e.g. /callbacks/sms57/{token}
    method: str  # upper case; ANY for every method
    iam_auth: bool
    kind: str = "rest"  # "rest" (Api event, REST v1 proxy events) or "http" (HttpApi event)
    payload_version: str = "1.0"  # what the function gets: 1.0 (REST shape) or 2.0 (HTTP API v2)


@dataclass(frozen=True)
class SqsMapping:
    function_id: str
    event_id: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    max_concurrency: int | None
    enabled: bool = True


@dataclass(frozen=True)
class Schedule:
    function_id: str
    event_id: str
    expression: str  # rate(...) or cron(...)
    input: str | None
    enabled: bool
    kind: str  # Schedule (EventBridge rule) or ScheduleV2 (EventBridge Scheduler)


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout_s: int
    memory_mb: int
    env: dict[str, str]
    reserved_concurrency: int | None = None
    routes: list[ApiRoute] = field(default_factory=list)
    sqs: list[SqsMapping] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    unsupported_events: list[str] = field(default_factory=list)

    @property
    def short_name(self) -> str:
        """`PollFunction` -> `poll`, `Callbacksms57Function` -> `callbacksms57`."""
        return self.logical_id.removesuffix("Function").lower()


class Template:
    """One parsed template with its parameter values; resolves intrinsics to local names/ARNs/URLs."""

    def __init__(
        self,
        path: str | Path,
        *,
        parameters: dict[str, str] | None = None,
        region: str = DEFAULT_REGION,
        stack_name: str = DEFAULT_STACK_NAME,
        sqs_endpoint: str = "http://127.0.0.1:5000",
    ) -> None:
        self.path = Path(path).resolve()
        self.root = self.path.parent
        self.raw: dict[str, Any] = cfn_flip.load_yaml(self.path.read_text(encoding="utf-8"))
        self.region = region
        self.stack_name = stack_name
        self.sqs_endpoint = sqs_endpoint.rstrip("/")
        self.parameters = self._parameter_values(parameters or {})
        self._list_parameters = {
            name
            for name, spec in (self.raw.get("Parameters", {}) or {}).items()
            if str(spec.get("Type", "")) == "CommaDelimitedList"
            or str(spec.get("Type", "")).startswith("List<")
        }
        if uses_language_extensions(self.raw):  # Fn::ForEach loops, as CloudFormation expands them
            values = {name: self.ref(name) for name in self.parameters}
            try:
                self.raw = expand(self.raw, values)
            except LanguageExtensionError as exc:
                raise TemplateError(str(exc)) from exc
        self.conditions_raw: dict[str, Any] = self.raw.get("Conditions", {}) or {}
        self._conditions: dict[str, bool] = {}
        all_resources: dict[str, Any] = self.raw.get("Resources", {}) or {}
        # Resources whose Condition is false do not exist (as in CloudFormation).
        self.resources: dict[str, dict[str, Any]] = {
            lid: res
            for lid, res in all_resources.items()
            if "Condition" not in res or self.condition(res["Condition"])
        }
        #: attribute overrides learnt when creating resources (e.g. a secret's real ARN)
        self.physical: dict[str, dict[str, str]] = {}
        self._names: dict[str, str] = {}

    # ------------------------------------------------------------------ parameters and conditions
    def _parameter_values(self, overrides: dict[str, str]) -> dict[str, str]:
        declared: dict[str, Any] = self.raw.get("Parameters", {}) or {}
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(sorted(unknown))}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                values[name] = str(overrides[name])
            elif "Default" in spec:
                values[name] = _scalar(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} has no Default: pass it with --param {name}=VALUE")
        return values

    def check_rules(self) -> None:
        """The template's Rules, as CloudFormation checks them before touching anything."""
        for name, rule in (self.raw.get("Rules", {}) or {}).items():
            if "RuleCondition" in rule and not self._rule_fn(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not self._rule_fn(assertion["Assert"]):
                    why = assertion.get("AssertDescription") or f"rule {name} does not hold"
                    raise TemplateError(f"template rule {name}: {why}")

    def _rule_fn(self, value: Any) -> Any:
        """Rule intrinsics: Ref, Fn::Equals/Not/And/Or, Fn::Contains, Fn::EachMemberEquals/In."""
        if isinstance(value, list):
            return [self._rule_fn(v) for v in value]
        if not isinstance(value, dict) or len(value) != 1:
            return value
        ((key, arg),) = value.items()
        if key == "Ref":
            return self.ref(arg)
        args = self._rule_fn(arg)
        if key == "Fn::Equals":
            return _scalar(args[0]) == _scalar(args[1])
        if key == "Fn::Not":
            return not args[0]
        if key == "Fn::And":
            return all(args)
        if key == "Fn::Or":
            return any(args)
        if key == "Fn::Contains":
            return _scalar(args[1]) in [_scalar(v) for v in args[0]]
        if key == "Fn::EachMemberEquals":
            return all(_scalar(v) == _scalar(args[1]) for v in args[0])
        if key == "Fn::EachMemberIn":
            return all(_scalar(v) in [_scalar(x) for x in args[1]] for v in args[0])
        raise TemplateError(f"{key} in Rules is not supported by the local stack")

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self.conditions_raw:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(self.conditions_raw[name]))
        return self._conditions[name]

    # ------------------------------------------------------------------ names and attributes
    def type_of(self, logical_id: str) -> str:
        return self.resources[logical_id]["Type"]

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {}) or {}

    def of_type(self, *types: str) -> list[str]:
        return [lid for lid, res in self.resources.items() if res["Type"] in types]

    _NAME_PROPS: ClassVar[dict[str, str]] = {
        "AWS::DynamoDB::Table": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Events::EventBus": "Name",
        "AWS::Events::Rule": "Name",
        "AWS::SNS::Topic": "TopicName",
        "AWS::SecretsManager::Secret": "Name",
        "AWS::Serverless::Function": "FunctionName",
        "AWS::Serverless::LayerVersion": "LayerName",
        "AWS::Serverless::Api": "Name",
        "AWS::Serverless::HttpApi": "Name",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::S3::Bucket": "BucketName",
    }

    def name_of(self, logical_id: str) -> str:
        """The physical name: the template's name property, else `<stack>-<LogicalId>` like CloudFormation."""
        if logical_id not in self._names:
            rtype = self.type_of(logical_id)
            prop = self._NAME_PROPS.get(rtype)
            given = self.props(logical_id).get(prop) if prop else None
            name = str(self.resolve(given)) if given is not None else f"{self.stack_name}-{logical_id}"
            if rtype == "AWS::S3::Bucket" and given is None:
                name = name.lower()  # bucket names are lower case
            if rtype == "AWS::SQS::Queue" and self.props(logical_id).get("FifoQueue") and given is None:
                name += ".fifo"
            self._names[logical_id] = name
        return self._names[logical_id]

    def attribute(self, logical_id: str, attr: str | None) -> str:
        """Ref (attr None) or Fn::GetAtt of a resource, as the emulated resource knows it."""
        key = attr or "Ref"
        known = self.physical.get(logical_id, {})
        if key in known:
            return known[key]
        if logical_id not in self.resources:
            # SAM's implicit resources (ServerlessRestApi, <Fn>Role, ...) have no local counterpart.
            return {"Ref": logical_id}.get(key, f"arn:aws:local:{self.region}:{ACCOUNT_ID}:{logical_id}")
        rtype = self.type_of(logical_id)
        name = self.name_of(logical_id)
        r, a = self.region, ACCOUNT_ID
        table: dict[str, dict[str, str]] = {
            "AWS::DynamoDB::Table": {
                "Ref": name,
                "Arn": f"arn:aws:dynamodb:{r}:{a}:table/{name}",
                "StreamArn": f"arn:aws:dynamodb:{r}:{a}:table/{name}/stream/local",
            },
            "AWS::SQS::Queue": {
                "Ref": f"{self.sqs_endpoint}/{a}/{name}",
                "QueueUrl": f"{self.sqs_endpoint}/{a}/{name}",
                "Arn": f"arn:aws:sqs:{r}:{a}:{name}",
                "QueueName": name,
            },
            "AWS::Events::EventBus": {
                "Ref": name,
                "Name": name,
                "Arn": f"arn:aws:events:{r}:{a}:event-bus/{name}",
            },
            "AWS::SNS::Topic": {
                "Ref": f"arn:aws:sns:{r}:{a}:{name}",
                "TopicArn": f"arn:aws:sns:{r}:{a}:{name}",
                "TopicName": name,
            },
            "AWS::SecretsManager::Secret": {
                "Ref": f"arn:aws:secretsmanager:{r}:{a}:secret:{name}",
                "Id": f"arn:aws:secretsmanager:{r}:{a}:secret:{name}",
            },
            "AWS::Serverless::Function": {"Ref": name, "Arn": f"arn:aws:lambda:{r}:{a}:function:{name}"},
            "AWS::Serverless::LayerVersion": {"Ref": f"arn:aws:lambda:{r}:{a}:layer:{name}:1"},
            "AWS::Serverless::Api": {"Ref": "local", "RootResourceId": "local"},
            "AWS::Serverless::HttpApi": {
                "Ref": "local",
                "ApiEndpoint": f"https://local.execute-api.{r}.amazonaws.com",
            },
            # Locally the API server itself plays the distribution (see LocalStack.outputs).
            "AWS::CloudFront::Distribution": {
                "Ref": "local",
                "DomainName": "local.cloudfront.net",
                "Id": "local",
            },
            # No public address locally (Ref): outputs that show one are left out.
            "AWS::EC2::EIP": {"AllocationId": f"eipalloc-{logical_id}"},
            "AWS::Logs::LogGroup": {"Ref": name, "Arn": f"arn:aws:logs:{r}:{a}:log-group:{name}:*"},
            "AWS::S3::Bucket": {
                "Ref": name,
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
            },
        }
        if rtype == "AWS::Events::Rule":
            bus = self.props(logical_id).get("EventBusName")
            bus_name = self.bus_name(self.resolve(bus)) if bus else "default"
            path = f"rule/{name}" if bus_name == "default" else f"rule/{bus_name}/{name}"
            table[rtype] = {"Ref": name, "Arn": f"arn:aws:events:{r}:{a}:{path}"}
        values = table.get(rtype, {"Ref": name, "Arn": f"arn:aws:local:{r}:{a}:{logical_id}"})
        if key not in values:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attr} ({rtype}) is not emulated locally")
        return values[key]

    @staticmethod
    def bus_name(value: str) -> str:
        """An EventBusName property may hold a name or an ARN."""
        return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value

    def _pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{self.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
            "AWS::NotificationARNs": [],
        }.get(name)

    def ref(self, name: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.parameters:
            value = self.parameters[name]
            return value.split(",") if name in self._list_parameters else value
        return self.attribute(name, None)

    # ------------------------------------------------------------------ intrinsic functions
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._fn(key, arg)
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v)
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _fn(self, key: str, arg: Any) -> Any:
        if key == "Fn::GetAtt":
            logical_id, attr = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.attribute(logical_id, self.resolve(attr))
        if key == "Fn::Sub":
            template, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return self._sub(template, variables)
        if key == "Fn::If":
            cond, yes, no = arg
            return self.resolve(yes if self.condition(cond) else no)
        if key == "Fn::Equals":
            a, b = (self.resolve(x) for x in arg)
            return _scalar(a) == _scalar(b)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(x) for x in arg)
        if key == "Fn::Or":
            return any(self.resolve(x) for x in arg)
        if key == "Fn::Join":
            sep, items = arg
            return str(sep).join(_scalar(x) for x in self.resolve(items))
        if key == "Fn::Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if key == "Fn::Split":
            sep, text = self.resolve(arg)
            return str(text).split(sep)
        if key == "Fn::FindInMap":  # with LanguageExtensions' optional {DefaultValue: ...}
            mapping, top, second = (_scalar(v) for v in self.resolve(arg[:3]))
            try:
                return self.raw["Mappings"][mapping][top][second]
            except KeyError:
                if len(arg) > 3 and "DefaultValue" in arg[3]:
                    return self.resolve(arg[3]["DefaultValue"])
                raise TemplateError(f"Fn::FindInMap: no {mapping}.{top}.{second} in Mappings") from None
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if key == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        if key == "Fn::GetAZs":
            return [f"{self.region}{z}" for z in "abc"]
        if key == "Fn::Cidr":
            block, count, host_bits = self.resolve(arg)
            network = ipaddress.ip_network(str(block), strict=False)
            subnets = network.subnets(new_prefix=network.max_prefixlen - int(host_bits))
            return [str(next(subnets)) for _ in range(int(count))]
        raise TemplateError(f"{key} is not supported by the local stack")

    def _sub(self, template: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} stays literal
                return "${" + name[1:] + "}"
            if name in variables:
                return _scalar(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attr = name.split(".", 1)
                return self.attribute(logical_id, attr)
            return _scalar(self.ref(name))

        return _SUB_VAR.sub(one, template)

    # ------------------------------------------------------------------ functions
    def functions(self) -> list[FunctionSpec]:
        globals_fn: dict[str, Any] = (self.raw.get("Globals", {}) or {}).get("Function", {}) or {}
        globals_api: dict[str, Any] = (self.raw.get("Globals", {}) or {}).get("Api", {}) or {}
        specs = []
        for lid in self.of_type("AWS::Serverless::Function"):
            props = _merge_globals(globals_fn, self.props(lid))
            code_uri = self.resolve(props.get("CodeUri"))
            if not isinstance(code_uri, str):
                raise TemplateError(f"{lid}: CodeUri must be a local directory")
            env_raw = (props.get("Environment") or {}).get("Variables") or {}
            env = {k: _scalar(v) for k, v in self.resolve(env_raw).items()}
            reserved = props.get("ReservedConcurrentExecutions")
            spec = FunctionSpec(
                logical_id=lid,
                name=self.name_of(lid),
                arn=self.attribute(lid, "Arn"),
                code_dir=(self.root / code_uri).resolve(),
                handler=str(self.resolve(props.get("Handler", "app.handler"))),
                timeout_s=int(self.resolve(props.get("Timeout", 3))),
                memory_mb=int(self.resolve(props.get("MemorySize", 128))),
                env=env,
                reserved_concurrency=int(self.resolve(reserved)) if reserved is not None else None,
            )
            for event_id, event in (props.get("Events") or {}).items():
                self._add_event(spec, event_id, event, globals_api)
            specs.append(spec)
        return specs

    def _add_event(self, spec: FunctionSpec, event_id: str, event: dict[str, Any], globals_api: dict) -> None:
        etype = event.get("Type")
        eprops = event.get("Properties", {}) or {}
        if etype == "Api":
            auth = self.resolve(eprops.get("Auth", {}) or {})
            authorizer = auth.get("Authorizer") or self._default_authorizer(
                eprops.get("RestApiId"), globals_api
            )
            spec.routes.append(
                ApiRoute(
                    function_id=spec.logical_id,
                    event_id=event_id,
                    path=str(self.resolve(eprops["Path"])),
                    method=str(self.resolve(eprops["Method"])).upper(),
                    iam_auth=authorizer == "AWS_IAM",
                )
            )
        elif etype == "HttpApi":
            auth = self.resolve(eprops.get("Auth", {}) or {})
            spec.routes.append(
                ApiRoute(
                    function_id=spec.logical_id,
                    event_id=event_id,
                    path=str(self.resolve(eprops.get("Path", "/{proxy+}"))),
                    method=str(self.resolve(eprops.get("Method", "ANY"))).upper(),
                    iam_auth=auth.get("Authorizer") == "AWS_IAM",
                    kind="http",
                    payload_version=str(self.resolve(eprops.get("PayloadFormatVersion", "2.0"))),
                )
            )
        elif etype == "SQS":
            scaling = self.resolve(eprops.get("ScalingConfig", {}) or {})
            enabled = self.resolve(eprops.get("Enabled", True))
            spec.sqs.append(
                SqsMapping(
                    function_id=spec.logical_id,
                    event_id=event_id,
                    queue_arn=str(self.resolve(eprops["Queue"])),
                    batch_size=int(self.resolve(eprops.get("BatchSize", 10))),
                    report_failures="ReportBatchItemFailures"
                    in (self.resolve(eprops.get("FunctionResponseTypes")) or []),
                    max_concurrency=int(scaling["MaximumConcurrency"])
                    if "MaximumConcurrency" in scaling
                    else None,
                    enabled=str(enabled).lower() != "false",
                )
            )
        elif etype in ("Schedule", "ScheduleV2"):
            expr_key = "Schedule" if etype == "Schedule" else "ScheduleExpression"
            state = str(self.resolve(eprops.get("State", "ENABLED"))).upper()
            enabled = (
                str(self.resolve(eprops.get("Enabled", True))).lower() != "false" and state != "DISABLED"
            )
            given = self.resolve(eprops.get("Input"))
            spec.schedules.append(
                Schedule(
                    function_id=spec.logical_id,
                    event_id=event_id,
                    expression=str(self.resolve(eprops[expr_key])),
                    input=given if isinstance(given, str) or given is None else json.dumps(given),
                    enabled=enabled,
                    kind=etype,
                )
            )
        else:
            spec.unsupported_events.append(f"{event_id} ({etype})")

    def _default_authorizer(self, rest_api_id: Any, globals_api: dict[str, Any]) -> str | None:
        api_props: dict[str, Any] = {}
        if isinstance(rest_api_id, dict) and "Ref" in rest_api_id and rest_api_id["Ref"] in self.resources:
            api_props = self.props(rest_api_id["Ref"])
        merged = _merge_globals(globals_api, api_props)
        return (self.resolve(merged.get("Auth", {}) or {})).get("DefaultAuthorizer")

    def outputs(self) -> dict[str, str]:
        """The template's Outputs whose condition holds, resolved; unresolvable ones are left out."""
        values: dict[str, str] = {}
        for name, output in (self.raw.get("Outputs", {}) or {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            try:
                value = self.resolve(output.get("Value"))
            except TemplateError:
                continue  # e.g. an attribute only a deployed resource has
            if value is not _NO_VALUE:
                values[name] = _scalar(value)
        return values

    def stage_name(self) -> str:
        for lid in self.of_type("AWS::Serverless::Api"):
            stage = self.props(lid).get("StageName")
            if stage:
                return str(self.resolve(stage))
        return "Prod"  # SAM's implicit API


def _merge_globals(globals_props: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """SAM's Globals merge: maps merge key by key, lists are prepended, scalars are overridden."""
    merged = dict(globals_props)
    for key, value in props.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = _merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + value
        else:
            merged[key] = value
    return merged


def _is_intrinsic(value: dict[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
