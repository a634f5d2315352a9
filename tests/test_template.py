"""What an infra team checks in template.yaml before `sam deploy`: the contract, least privilege,
DLQs and alarms, encryption, a clean cfn-lint, and each deployment mode (static egress none /
new VPC / existing subnets, CloudFront off / on) with its conditions resolved."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfn_flip import load_yaml
from smsrelay.config import Settings
from smsrelay.vendors import VENDOR_IDS
from smsrelay_local.stack import Template
from smsrelay_local.stack.language_extensions import expand

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
VENDORS: list[str] = Template(TEMPLATE_PATH).ref("Vendors")  # the template's one list of vendors

# logical id -> (CodeUri, {event type: [(method, path) for Api/HttpApi | queue logical id for SQS | None]})
FUNCTIONS: dict[str, tuple[str, dict[str, list[Any]]]] = {
    "SendFunction": (
        "functions/send/",
        {"SQS": ["SendRequestsQueue"], "Api": [("post", "/messages")]},
    ),
    "DispatchFunction": ("functions/dispatch/", {"SQS": ["DispatchQueue", "PriorityDispatchQueue"]}),
    "PollFunction": ("functions/poll/", {"ScheduleV2": [None]}),
    "SweepFunction": ("functions/sweep/", {"ScheduleV2": [None]}),
    "StatusApiFunction": (
        "functions/api/",
        {
            "Api": [
                ("get", "/messages/{message_id}"),
                ("get", "/requests/{request_id}"),
                ("get", "/requests/{request_id}/rejections"),
                ("get", "/suppressions"),
                ("put", "/suppressions/{number}"),
                ("delete", "/suppressions/{number}"),
            ]
        },
    ),
    # design.md: POST /callbacks/{vendor}/{token}, santo and smsadmin GET too (routed for every
    # vendor: one loop makes them); on the callback API, one code path for every vendor.
    **{
        f"Callback{vendor}Function": (
            "functions/callback/",
            {
                "HttpApi": [
                    ("post", f"/callbacks/{vendor}/{{token}}"),
                    ("get", f"/callbacks/{vendor}/{{token}}"),
                ]
            },
        )
        for vendor in VENDORS
    },
}
VENDOR_CALLING = {"DispatchFunction", "PollFunction"}  # the functions that call vendor HTTP APIs
MAY_CALL_VENDORS = VENDOR_CALLING | {"SendFunction"}  # send, with DirectDispatch on
# the functions a caller or a vendor waits on: SnapStart (a parameter) applies to them
LATENCY_BOUND = {"SendFunction", "StatusApiFunction", *(f"Callback{v}Function" for v in VENDORS)}
# function -> {queue: batch size}; a code in the priority lane is never batched behind another chunk
SQS_BATCH_SIZE = {
    "SendFunction": {"SendRequestsQueue": 10},
    "DispatchFunction": {"DispatchQueue": 5, "PriorityDispatchQueue": 1},
}

GLOBAL_ENV = {
    "TABLE_NAME",
    "BULK_BUCKET",
    "DISPATCH_QUEUE_URL",
    "PRIORITY_QUEUE_URL",
    "SEND_QUEUE_URL",
    "EVENT_BUS_NAME",
    "DEFAULT_VENDOR",
    "DEFAULT_REGION",
    "ROUTING_RULES",
    "VENDOR_SECRET_PREFIX",
    "RETENTION_DAYS",
    "REPORT_WINDOW_HOURS",
    "DISPATCH_LEASE_S",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
PARAMETERS = {
    "Vendors",
    "VendorSecretPrefix",
    "DefaultVendor",
    "RoutingRules",
    "PollRateMinutes",
    "RetentionDays",
    "ReportWindowHours",
    "LogLevel",
    "LogRetentionDays",
    "AlarmEmail",
    "QueueAgeAlarmSeconds",
    "EventBusName",
    "SendSources",
    "SendAccountIds",
    "StaticEgress",
    "EgressVpcCidr",
    "EgressSubnetIds",
    "EgressSecurityGroupIds",
    "CallbackCloudFront",
    "CallbackRateLimit",
    "CallbackBurstLimit",
    "CallbackWebAclArn",
    "ApiWebAclArn",
}
# Settings an infra team sets: template parameter -> the environment variable config.Settings reads.
SETTING_PARAMETERS = {
    "OptOutKeywords": "OPT_OUT_KEYWORDS",
    "DefaultTimezone": "DEFAULT_TIMEZONE",
    "MaxAttempts": "MAX_ATTEMPTS",
    "RetryBaseDelaySeconds": "RETRY_BASE_DELAY_S",
    "HealthErrorThreshold": "HEALTH_ERROR_THRESHOLD",
    "HealthMinCalls": "HEALTH_MIN_CALLS",
    "HealthWindowSeconds": "HEALTH_WINDOW_S",
    "HealthCooldownSeconds": "HEALTH_COOLDOWN_S",
    "SecretsMaxAgeSeconds": "SECRETS_MAX_AGE_S",
    "RetentionDays": "RETENTION_DAYS",
    "ReportWindowHours": "REPORT_WINDOW_HOURS",
    "PriorityMaxRecipients": "PRIORITY_MAX_RECIPIENTS",
    "DirectDispatch": "DIRECT_DISPATCH",
}
# The modes an infra team picks between (parameter sets); every optional resource is on in one.
MODES: dict[str, dict[str, str]] = {
    "defaults": {},
    "new-vpc": {"StaticEgress": "new-vpc"},
    "existing-subnets": {
        "StaticEgress": "existing-subnets",
        "EgressSubnetIds": "subnet-0a1b2c3d4e5f60718,subnet-0f1e2d3c4b5a69788",
        "EgressSecurityGroupIds": "sg-0a1b2c3d4e5f60718",
    },
    "cloudfront": {"CallbackCloudFront": "true"},
    "existing-secrets": {"VendorSecretPrefix": "acme/sms/"},
    "cloudfront-waf": {
        "CallbackCloudFront": "true",
        "CallbackWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/callbacks/0a1b",
        "ApiWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/api/0a1b",
        "SendSources": "orders,billing",
        "SendAccountIds": "111122223333,444455556666",
    },
}
CLOUDFRONT_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CLOUDFRONT_ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
# AWS services that hold data: no Allow statement may use a wildcard action or resource on them.
DATA_SERVICES = {"dynamodb", "sqs", "sns", "secretsmanager", "events", "s3", "kms", "lambda", "scheduler"}
POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy",
    "SQSSendMessagePolicy",
    "SQSPollerPolicy",
    "EventBridgePutEventsPolicy",
    "AWSSecretsManagerGetSecretValuePolicy",
    "S3CrudPolicy",
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """template.yaml as CloudFormation reads it after AWS::LanguageExtensions (its loops expanded)."""
    return expand(load_yaml(TEMPLATE_PATH.read_text()), {"Vendors": VENDORS})


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == type_}


def ref_name(value: Any) -> str | None:
    """The logical id behind {"Ref": X} or {"Fn::GetAtt": [X, attr]} (or "X.attr")."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).split(".")[0]
    return None


def function_prop(template: dict[str, Any], name: str, key: str) -> Any:
    props = template["Resources"][name]["Properties"]
    return props.get(key, template["Globals"]["Function"].get(key))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: dict[str, Any]):
    """Every IAM statement written in the template: inline function policies and IAM/queue policies."""
    for name, res in resources(template, "AWS::Serverless::Function").items():
        for policy in res["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                for statement in policy["Statement"]:
                    yield name, statement
    for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
        for name, res in resources(template, type_).items():
            props = res["Properties"]
            docs = [props.get("PolicyDocument")] + [p["PolicyDocument"] for p in props.get("Policies", [])]
            for doc in filter(None, docs):
                for statement in doc["Statement"]:
                    yield name, statement


@functools.cache
def mode(name: str) -> Template:
    """template.yaml with a mode's parameters, conditions resolved (the local stack's reader)."""
    resolved = Template(TEMPLATE_PATH, parameters=MODES[name])
    resolved.check_rules()
    return resolved


def cfn_lint_bin() -> str:
    candidate = Path(sys.executable).parent / "cfn-lint"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("cfn-lint")
    if not found:
        pytest.skip("cfn-lint is not installed")
    return found


# --------------------------------------------------------------------------- contract


def test_vendors_are_the_package_s_adapters():
    """The template's list and the adapters found in smsrelay/vendors/ are the same vendors."""
    assert sorted(VENDORS) == list(VENDOR_IDS)
    raw = load_yaml(TEMPLATE_PATH.read_text())
    assert raw["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]  # in that order


def test_functions_exist_with_their_code_and_build(template, tmp_path):
    functions = resources(template, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, (code_uri, _) in FUNCTIONS.items():
        res = functions[name]
        assert res["Properties"]["CodeUri"] == code_uri
        assert res["Metadata"]["BuildMethod"] == "makefile"
        # sam build runs `make build-<LogicalId>` in the code dir with ARTIFACTS_DIR set
        artifacts = tmp_path / name
        artifacts.mkdir()
        run = subprocess.run(
            ["make", "-C", str(ROOT / code_uri), f"build-{name}", f"ARTIFACTS_DIR={artifacts}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, f"{code_uri}Makefile: build-{name}: {run.stderr}"
        assert (tmp_path / name / "app.py").is_file(), name


def test_globals_runtime_layer_env(template):
    fn = template["Globals"]["Function"]
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["arm64"]
    assert fn["Tracing"] == "Active"
    assert fn["Handler"] == "app.handler"
    assert [ref_name(layer) for layer in fn["Layers"]] == ["SharedLayer"]
    env = fn["Environment"]["Variables"]
    assert set(env) >= GLOBAL_ENV
    assert env["POWERTOOLS_SERVICE_NAME"] == env["POWERTOOLS_METRICS_NAMESPACE"] == "smsrelay"
    assert ref_name(env["POWERTOOLS_LOG_LEVEL"]) == "LogLevel"
    assert int(env["DISPATCH_LEASE_S"]) == function_prop(template, "DispatchFunction", "Timeout")
    # each vendor's secret is <prefix><vendor>: the stack's own, or the given existing ones
    assert env["VENDOR_SECRET_PREFIX"] == {
        "Fn::If": [
            "CreateVendorSecrets",
            {"Fn::Sub": "${AWS::StackName}/vendor-settings/"},
            {"Ref": "VendorSecretPrefix"},
        ]
    }


def test_shared_layer_builds_with_makefile(template):
    layer = template["Resources"]["SharedLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/shared"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    makefile = (ROOT / "layers/shared/Makefile").read_text()
    assert re.search(r"^build-SharedLayer:", makefile, re.M)
    for flag in ("--platform manylinux2014_aarch64", "--implementation cp", "--python-version 3.12"):
        assert flag in makefile
    assert "--only-binary=:all:" in makefile
    assert "$(ARTIFACTS_DIR)/python" in makefile
    requirements = {
        re.split(r"[\[<>=]", line)[0].strip().lower()
        for line in (ROOT / "layers/shared/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert requirements == {"aws-lambda-powertools", "pydantic", "requests", "phonenumbers", "tzdata"}


def test_events_match_the_contract(template):
    for name, (_, expected) in FUNCTIONS.items():
        events = template["Resources"][name]["Properties"]["Events"].values()
        by_type: dict[str, list[Any]] = {}
        for event in events:
            props = event["Properties"]
            if event["Type"] == "Api":
                assert ref_name(props["RestApiId"]) == "Api"
                item: Any = (props["Method"].lower(), props["Path"])
            elif event["Type"] == "HttpApi":
                assert ref_name(props["ApiId"]) == "CallbackApi"
                item = (props["Method"].lower(), props["Path"])
            elif event["Type"] == "SQS":
                item = ref_name(props["Queue"])
            else:
                item = None
            by_type.setdefault(event["Type"], []).append(item)
        assert {k: sorted(v, key=str) for k, v in by_type.items()} == {
            k: sorted(v, key=str) for k, v in expected.items()
        }, name


def test_sqs_event_sources_report_batch_item_failures(template):
    for name, sizes in SQS_BATCH_SIZE.items():
        sqs = [e for e in template["Resources"][name]["Properties"]["Events"].values() if e["Type"] == "SQS"]
        assert {ref_name(e["Properties"]["Queue"]): e["Properties"]["BatchSize"] for e in sqs} == sizes
        for event in sqs:
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_bulk_and_priority_lanes_have_their_own_concurrency(template):
    """Bulk chunks cannot take every dispatch invocation (and so every vendor connection): each
    lane's mapping has its own cap, a parameter."""
    events = template["Resources"]["DispatchFunction"]["Properties"]["Events"]
    caps = {
        ref_name(e["Properties"]["Queue"]): ref_name(e["Properties"]["ScalingConfig"]["MaximumConcurrency"])
        for e in events.values()
    }
    assert caps == {
        "DispatchQueue": "DispatchMaxConcurrency",
        "PriorityDispatchQueue": "PriorityDispatchMaxConcurrency",
    }


def test_schedules_retry_and_dead_letter(template):
    for name in ("PollFunction", "SweepFunction"):
        events = template["Resources"][name]["Properties"]["Events"].values()
        (schedule,) = [e["Properties"] for e in events if e["Type"] == "ScheduleV2"]
        assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert ref_name(schedule["DeadLetterConfig"]["Arn"]) in resources(template, "AWS::SQS::Queue")
        # the function's own async failures land in a DLQ too
        assert function_prop(template, name, "DeadLetterQueue")["Type"] == "SQS"
    poll = next(iter(template["Resources"]["PollFunction"]["Properties"]["Events"].values()))
    expression = poll["Properties"]["ScheduleExpression"]["Fn::If"]
    assert expression[1] == "rate(1 minute)"
    assert "${PollRateMinutes}" in expression[2]["Fn::Sub"]


def test_signed_api_is_iam_and_callbacks_have_their_own_http_api(template):
    api = template["Resources"]["Api"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    callback_api = template["Resources"]["CallbackApi"]
    assert callback_api["Type"] == "AWS::Serverless::HttpApi"
    assert "Auth" not in callback_api["Properties"]  # vendors cannot sign: the path token is the key
    for name in FUNCTIONS:
        for event in template["Resources"][name]["Properties"]["Events"].values():
            props = event["Properties"]
            if event["Type"] == "Api":
                assert not props["Path"].startswith("/callbacks/"), name
                assert props.get("Auth", {}).get("Authorizer", "AWS_IAM") == "AWS_IAM", name
            elif event["Type"] == "HttpApi":
                assert props["Path"].startswith("/callbacks/"), name
                assert "Auth" not in props, name
                # payload v2: rawQueryString keeps smsadmin's GB2312 percent-encoding
                assert props["PayloadFormatVersion"] == "2.0", name


def test_callback_routes_are_throttled_apart_from_the_signed_api(template):
    (method_settings,) = template["Resources"]["Api"]["Properties"]["MethodSettings"]
    assert (method_settings["ResourcePath"], method_settings["HttpMethod"]) == ("/*", "*")
    assert ref_name(method_settings["ThrottlingRateLimit"]) == "ApiRateLimit"
    assert ref_name(method_settings["ThrottlingBurstLimit"]) == "ApiBurstLimit"
    default = template["Resources"]["CallbackApi"]["Properties"]["DefaultRouteSettings"]
    assert ref_name(default["ThrottlingRateLimit"]) == "CallbackRateLimit"
    assert ref_name(default["ThrottlingBurstLimit"]) == "CallbackBurstLimit"
    routes = 0
    for name in FUNCTIONS:
        for event in template["Resources"][name]["Properties"]["Events"].values():
            if event["Type"] == "HttpApi":  # each route its own bucket, set on the route itself
                settings = event["Properties"]["RouteSettings"]
                assert ref_name(settings["ThrottlingRateLimit"]) == "CallbackRateLimit", name
                assert ref_name(settings["ThrottlingBurstLimit"]) == "CallbackBurstLimit", name
                routes += 1
    assert routes == 2 * len(VENDORS)
    # The callback API logs route keys, never paths: a path carries the token.
    log_format = template["Resources"]["CallbackApi"]["Properties"]["AccessLogSettings"]["Format"]
    assert "$context.routeKey" in log_format and "$context.path" not in log_format


# --------------------------------------------------------------------------- storage and queues


def test_tables_encrypted_recoverable_expiring(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert set(tables) == {"Table"}  # the request item is the idempotency record
    for res in tables.values():
        props = res["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["TimeToLiveSpecification"]["Enabled"] is True
    main = tables["Table"]["Properties"]
    assert main["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert main["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    gsis = {g["IndexName"]: g for g in main["GlobalSecondaryIndexes"]}
    # Reports find their message by key (reference items), not through an index.
    assert set(gsis) == {"by_state"}
    assert [k["AttributeName"] for k in gsis["by_state"]["KeySchema"]] == ["gpk", "gsk"]
    assert gsis["by_state"]["Projection"]["ProjectionType"] == "ALL"
    assert tables["Table"].get("DeletionPolicy") == "Retain"


def test_queues_redrive_to_dlq_and_outlast_their_consumer(template):
    queues = resources(template, "AWS::SQS::Queue")
    dlqs = {
        ref_name(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    consumers = {
        ref_name(e["Properties"]["Queue"]): name
        for name in FUNCTIONS
        for e in template["Resources"][name]["Properties"]["Events"].values()
        if e["Type"] == "SQS"
    }
    assert set(consumers) == {"SendRequestsQueue", "DispatchQueue", "PriorityDispatchQueue"}
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, name
        if name in dlqs:
            assert props["MessageRetentionPeriod"] == 1209600, name
            continue
        if name not in consumers:
            assert name.endswith("DLQ"), f"{name}: neither a consumed queue nor a DLQ"
            continue
        redrive = props["RedrivePolicy"]
        assert ref_name(redrive["deadLetterTargetArn"]) in queues
        assert redrive["maxReceiveCount"] == 5
        timeout = function_prop(template, consumers[name], "Timeout")
        assert props["VisibilityTimeout"] >= 6 * timeout, name


def test_send_entry_points_bus_rule_and_topic(template):
    rules = resources(template, "AWS::Events::Rule")
    upload = rules.pop("BulkUploadRule")
    assert rules
    for rule in [*rules.values(), upload]:
        props = rule["Properties"]
        (target,) = props["Targets"]
        assert ref_name(target["Arn"]) == "SendRequestsQueue"
        # the whole event reaches the queue: its id (or the object's version) names the request
        assert "InputPath" not in target and "InputTransformer" not in target
        assert ref_name(target["DeadLetterConfig"]["Arn"]) == "SendRequestsDLQ"
    for rule in rules.values():
        assert rule["Properties"]["EventPattern"]["detail-type"] == ["Send SMS"]
    pattern = upload["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.s3"] and pattern["detail-type"] == ["Object Created"]
    assert ref_name(pattern["detail"]["bucket"]["name"][0]) == "BulkBucket"
    assert pattern["detail"]["object"]["key"] == [{"prefix": "bulk/"}]
    bucket = template["Resources"]["BulkBucket"]["Properties"]
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert any(ref_name(r["Properties"].get("EventBusName")) == "EventBus" for r in rules.values())
    # the default bus carries every team's events: only SendSources start sends, and only when given
    default_rule = rules["SendSmsDefaultBusRule"]
    assert "EventBusName" not in default_rule["Properties"]
    assert default_rule["Condition"] == "WithSendSources"
    assert ref_name(default_rule["Properties"]["EventPattern"]["source"]) == "SendSources"
    assert template["Resources"]["EventBus"]["Properties"]["Name"] == {
        "Fn::If": ["NamedEventBus", {"Ref": "EventBusName"}, {"Ref": "AWS::StackName"}]
    }
    (sub,) = [
        s
        for s in resources(template, "AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "sqs"
    ]
    assert ref_name(sub["Properties"]["TopicArn"]) == "SendTopic"
    assert ref_name(sub["Properties"]["Endpoint"]) == "SendRequestsQueue"
    assert sub["Properties"]["RawMessageDelivery"] is False  # the envelope's MessageId names the request
    (policy,) = resources(template, "AWS::SQS::QueuePolicy").values()
    principals = {s["Principal"]["Service"] for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert principals == {"events.amazonaws.com", "sns.amazonaws.com"}
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]


def test_one_secret_per_vendor_or_existing_ones_by_prefix(template):
    assert template["Parameters"]["VendorSecretPrefix"]["Default"] == ""
    for vendor in VENDORS:
        secret = template["Resources"][f"Vendor{vendor}Secret"]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        assert secret["Condition"] == "CreateVendorSecrets"
        assert secret["Properties"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}/vendor-settings/{vendor}"}
    # given a prefix, the stack makes none and every function reads <prefix><vendor>
    given = mode("existing-secrets")
    assert not given.of_type("AWS::SecretsManager::Secret")
    assert {s.env["VENDOR_SECRET_PREFIX"] for s in given.functions()} == {"acme/sms/"}
    assert {s.env["VENDOR_SECRET_PREFIX"] for s in mode("defaults").functions()} == {
        "smsrelay-local/vendor-settings/"
    }


# --------------------------------------------------------------------------- least privilege


def test_policies_are_scoped_templates_or_exact_statements(template):
    own_policies = resources(template, "AWS::IAM::ManagedPolicy")
    for name in FUNCTIONS:
        for policy in template["Resources"][name]["Properties"].get("Policies", []):
            assert isinstance(policy, dict), f"{name}: managed policy {policy!r}"
            if "Statement" in policy:
                continue
            if "Ref" in policy:  # one of the template's own managed policies (exact statements)
                assert policy["Ref"] in own_policies, f"{name}: {policy}"
                continue
            (kind,) = policy
            assert kind in POLICY_TEMPLATES, f"{name}: {kind}"
            assert all(v not in ("*", "") for v in policy[kind].values()), f"{name}: {policy}"


def test_no_wildcard_on_data_services(template):
    for name, statement in statements(template):
        if statement.get("Effect") != "Allow":
            continue
        actions = as_list(statement.get("Action", []))
        assert "*" not in actions, name
        data_actions = [a for a in actions if isinstance(a, str) and a.split(":")[0] in DATA_SERVICES]
        for action in data_actions:
            assert not action.endswith(":*"), f"{name}: {action}"
        if data_actions:
            assert "*" not in as_list(statement.get("Resource", [])), f"{name}: {statement}"
            assert "NotResource" not in statement and "NotAction" not in statement, name


def test_sqs_consumers_are_fenced_to_their_queue(template):
    """SAM's SQS event adds AWSLambdaSQSQueueExecutionRole (Resource "*"); a Deny keeps each consumer
    to its own queue."""
    for name in SQS_BATCH_SIZE:
        props = template["Resources"][name]["Properties"]
        queues = sorted(
            ref_name(e["Properties"]["Queue"]) for e in props["Events"].values() if e["Type"] == "SQS"
        )
        denies = [
            s
            for p in props["Policies"]
            if isinstance(p, dict) and "Statement" in p
            for s in p["Statement"]
            if s["Effect"] == "Deny"
        ]
        fenced = [
            sorted(ref_name(r) for r in s["NotResource"])
            if isinstance(s.get("NotResource"), list)
            else [ref_name(s.get("NotResource"))]
            for s in denies
            if "sqs:ReceiveMessage" in s["Action"]
        ]
        assert queues in fenced, name


def test_callbacks_read_only_their_own_secret(template):
    for vendor in VENDORS:
        policies = template["Resources"][f"Callback{vendor}Function"]["Properties"]["Policies"]
        secrets = [
            p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
            for p in policies
            if "AWSSecretsManagerGetSecretValuePolicy" in p
        ]
        own = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${VendorSecretPrefix}"
        assert secrets == [
            {
                "Fn::If": [
                    "CreateVendorSecrets",
                    {"Ref": f"Vendor{vendor}Secret"},
                    {"Fn::Sub": f"{own}{vendor}-??????"},  # Secrets Manager adds 6 characters
                ]
            }
        ]
    status_policies = template["Resources"]["StatusApiFunction"]["Properties"]["Policies"]
    assert status_policies == [{"Ref": "StatusApiTableAccess"}]  # no secret, no queue, no bus


def _doc(template: dict[str, Any], policy: str) -> list[dict[str, Any]]:
    return template["Resources"][policy]["Properties"]["PolicyDocument"]["Statement"]


def test_callbacks_and_status_api_touch_the_table_only_as_they_must(template):
    """The internet-facing receivers and the read API: no Scan, no batch writes; the status API
    writes suppression items (S#) only, a receiver deletes applied early reports (E#) only."""
    for vendor in VENDORS:
        policies = template["Resources"][f"Callback{vendor}Function"]["Properties"]["Policies"]
        assert {"Ref": "CallbackTableAccess"} in policies
        assert not any("DynamoDBCrudPolicy" in p for p in policies if isinstance(p, dict))
    for policy, writes, deletes_under in (
        ("CallbackTableAccess", {"PutItem", "UpdateItem", "ConditionCheckItem", "DeleteItem"}, "E#*"),
        ("StatusApiTableAccess", {"PutItem", "DeleteItem"}, "S#*"),
    ):
        allowed: set[str] = set()
        for statement in _doc(template, policy):
            assert statement["Effect"] == "Allow"
            actions = {a.split(":", 1)[1] for a in as_list(statement["Action"])}
            allowed |= actions
            written = actions - {"GetItem", "BatchGetItem", "Query"}
            if not written:
                continue
            resource = statement["Resource"]
            assert ref_name(resource) == "Table", f"{policy}: writes only the table, not its indexes"
            if "DeleteItem" in actions or policy == "StatusApiTableAccess":
                keys = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                assert keys == [deletes_under], policy
        assert allowed == {"GetItem", "BatchGetItem", "Query"} | writes, policy


# --------------------------------------------------------------------------- alarms and outputs


def _alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    props = alarm["Properties"]
    if "MetricName" in props:
        return [props]
    return [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]


def _dims(metric: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}


def test_every_dlq_has_an_alarm(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    watched = {
        ref_name(_dims(m).get("QueueName"))
        for a in alarms.values()
        for m in _alarm_metrics(a)
        if m["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    queues = resources(template, "AWS::SQS::Queue")
    dlqs = {
        ref_name(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    dlqs |= {name for name in queues if name.endswith("DLQ")}
    assert dlqs >= {"SendRequestsDLQ", "DispatchDLQ", "PriorityDispatchDLQ", "ScheduleDLQ"}
    assert dlqs <= watched


def test_operational_alarms_reach_the_alarm_topic(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        assert [ref_name(a) for a in alarm["Properties"]["AlarmActions"]] == ["AlarmTopic"], name
    errors = {
        ref_name(_dims(m)["FunctionName"])
        for a in alarms.values()
        for m in _alarm_metrics(a)
        if m["MetricName"] == "Errors"
    }
    assert errors >= {"SendFunction", "DispatchFunction", "PollFunction"}
    # The callback API serves the callbacks only: its 4xx/5xx (HTTP API metric names) are theirs.
    callback_metrics = {
        m["MetricName"]: _dims(m)
        for a in alarms.values()
        for m in _alarm_metrics(a)
        if m["Namespace"] == "AWS/ApiGateway"
    }
    assert set(callback_metrics) == {"4xx", "5xx"}
    for dims in callback_metrics.values():
        assert ref_name(dims["ApiId"]) == "CallbackApi" and dims["Stage"] == "$default"
    # Balances in each vendor's own unit: one alarm per vendor on the 0/1 metric poll emits
    # against the vendor's balance_alarm_below setting (tests/core/test_poll.py checks the metric).
    resolved = mode("defaults")
    balances = {}
    for lid in resolved.of_type("AWS::CloudWatch::Alarm"):
        props = resolved.resolve(resolved.props(lid))
        if props["Namespace"] == "smsrelay" and props["MetricName"] == "VendorBalanceLow":
            balances[_dims(props)["vendor"]] = (
                props["Statistic"],
                props["ComparisonOperator"],
                props["Threshold"],
                json.dumps(props["AlarmActions"]),
            )
    assert set(balances) == set(VENDORS)
    assert set(balances.values()) == {
        ("Maximum", "GreaterThanOrEqualToThreshold", 1, json.dumps([resolved.resolve({"Ref": "AlarmTopic"})]))
    }
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert ref_name(subscription["Properties"]["Endpoint"]) == "AlarmEmail"


def test_every_consumed_queue_has_an_oldest_message_age_alarm(template):
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    aged = {
        ref_name(_dims(m)["QueueName"]): alarm["Properties"]
        for alarm in alarms.values()
        for m in _alarm_metrics(alarm)
        if m["MetricName"] == "ApproximateAgeOfOldestMessage"
    }
    consumed = {
        ref_name(e["Properties"]["Queue"])
        for name in FUNCTIONS
        for e in template["Resources"][name]["Properties"]["Events"].values()
        if e["Type"] == "SQS"
    }
    assert consumed <= set(aged)
    for props in aged.values():
        assert ref_name(props["Threshold"]) == "QueueAgeAlarmSeconds"
        assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_parameters_and_outputs(template):
    assert set(template["Parameters"]) >= PARAMETERS
    outputs = template["Outputs"]
    assert "ApiUrl" in outputs
    for vendor in VENDORS:
        url = outputs[f"{vendor}CallbackUrl"]["Value"]["Fn::If"]
        assert url[0] == "WithCallbackCloudFront"
        assert url[1]["Fn::Sub"] == f"https://${{CallbackDistribution.DomainName}}/callbacks/{vendor}/<token>"
        assert url[2]["Fn::Sub"].startswith("https://${CallbackApi}.execute-api.")
        assert url[2]["Fn::Sub"].endswith(f"/callbacks/{vendor}/<token>")
        http = outputs[f"{vendor}CallbackHttpUrl"]
        assert http["Condition"] == "WithCallbackCloudFront"
        assert (
            http["Value"]["Fn::Sub"]
            == f"http://${{CallbackDistribution.DomainName}}/callbacks/{vendor}/<token>"
        )
    # smsrelay setup writes <vendor>'s secret under this name
    assert mode("defaults").outputs()["VendorSecretNames"] == "smsrelay-local/vendor-settings/<vendor>"
    assert mode("existing-secrets").outputs()["VendorSecretNames"] == "acme/sms/<vendor>"
    assert ref_name(outputs["SenderPolicyArn"]["Value"]) == "SenderPolicy"
    # sam build resolves an output's name like a Ref: one named after a list parameter breaks it.
    lists = {n for n, spec in template["Parameters"].items() if spec["Type"] == "CommaDelimitedList"}
    assert not set(outputs) & lists
    for name in (
        "SendRequestsQueueUrl",
        "SendRequestsQueueArn",
        "DispatchQueueArn",
        "PriorityDispatchQueueArn",
        "EventBusName",
        "EventBusArn",
    ):
        assert name in outputs


# --------------------------------------------------------------------------- what an infra team sets


def test_settings_are_parameters_with_the_codes_defaults(template):
    """Each setting an infra team sets is a parameter mapped to the variable config.Settings reads,
    and its default is the code's own (so the README's table of defaults cannot drift)."""
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    for parameter, variable in SETTING_PARAMETERS.items():
        assert ref_name(env[variable]) == parameter, variable
        default = str(template["Parameters"][parameter]["Default"])
        assert Settings.from_env({variable: default}) == Settings(), f"{parameter} default {default!r}"


def test_readme_lists_every_parameter_with_its_default(template):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, spec in template["Parameters"].items():
        default = str(spec.get("Default"))
        shown = f"`{default}`" if default else "(empty)"
        assert f"| `{name}` | {shown} |" in readme, f"README: no row for {name} with default {shown}"


def test_every_parameter_is_in_one_group(template):
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(template["Parameters"])


def test_function_environment_fits_lambdas_4_kb(template):
    """With every free-text parameter at its MaxLength and a long stack name; 400 bytes are kept for
    the longer names of a real account (queue URL suffixes, secret ARN suffixes) and more variables."""
    longest = {
        name: "x" * spec["MaxLength"]
        for name, spec in template["Parameters"].items()
        if spec.get("Type") == "String" and "MaxLength" in spec
    }
    resolved = Template(TEMPLATE_PATH, parameters=longest, stack_name="s" * 40)
    for spec in resolved.functions():
        size = sum(len(k) + len(v) for k, v in spec.env.items())
        assert size + 400 <= 4096, f"{spec.logical_id}: {size} bytes of environment"


def test_every_function_logs_to_its_own_group_with_the_retention_parameter(template):
    log_groups = resources(template, "AWS::Logs::LogGroup")
    used = set()
    for name in FUNCTIONS:
        group = ref_name(template["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"])
        assert group in log_groups, name
        used.add(group)
    assert len(used) == len(FUNCTIONS)
    for name, group in log_groups.items():
        assert ref_name(group["Properties"]["RetentionInDays"]) == "LogRetentionDays", name
        assert "${AWS::StackName}" in group["Properties"]["LogGroupName"]["Fn::Sub"], name


def test_two_stacks_in_one_account_never_share_a_name(template):
    """Every named resource takes its name from the stack (or from a parameter); SAM's schedules
    would be named after their logical id, so they omit the name."""
    name_props = {t: p for t, p in Template._NAME_PROPS.items()} | {
        "AWS::IAM::ManagedPolicy": "ManagedPolicyName"
    }
    every_option = {**MODES["cloudfront-waf"], "ApiAccessLogs": "true"}
    one = Template(TEMPLATE_PATH, parameters=every_option, stack_name="team-a")
    other = Template(TEMPLATE_PATH, parameters=every_option, stack_name="team-b")
    named = 0
    for lid, res in one.resources.items():
        prop = name_props.get(res["Type"])
        if prop and prop in res.get("Properties", {}):
            named += 1
            assert one.name_of(lid) != other.name_of(lid), lid
    assert named >= 15  # bus, layer, both APIs' names, secrets, log groups
    assert one.name_of("EventBus") == "team-a"  # EventBusName empty: the stack's name
    for name in ("PollFunction", "SweepFunction"):
        (schedule,) = [
            e
            for e in template["Resources"][name]["Properties"]["Events"].values()
            if e["Type"] == "ScheduleV2"
        ]
        assert schedule["Properties"]["OmitName"] is True, name


def test_sender_policy_sends_by_every_entry_point_and_reads_status(template):
    statements = _doc(template, "SenderPolicy")
    by_action = {s["Action"]: s for s in statements}
    assert set(by_action) == {
        "execute-api:Invoke",
        "sqs:SendMessage",
        "sns:Publish",
        "events:PutEvents",
        "lambda:InvokeFunction",
        "s3:PutObject",
    }
    routes = [r["Fn::Sub"].split("${Api}/v1/", 1)[1] for r in by_action["execute-api:Invoke"]["Resource"]]
    assert routes == ["POST/messages", "GET/messages/*", "GET/requests/*"]  # not the suppression list
    assert ref_name(by_action["sqs:SendMessage"]["Resource"]) == "SendRequestsQueue"
    assert ref_name(by_action["sns:Publish"]["Resource"]) == "SendTopic"
    assert ref_name(by_action["lambda:InvokeFunction"]["Resource"]) == "SendFunction"
    assert by_action["s3:PutObject"]["Resource"] == {"Fn::Sub": "${BulkBucket.Arn}/bulk/*"}
    events = by_action["events:PutEvents"]
    assert ref_name(events["Resource"]) == "EventBus"
    assert events["Condition"] == {"StringEquals": {"events:detail-type": "Send SMS"}}


# --------------------------------------------------------------------------- modes


def _vpc_config(resolved: Template, name: str) -> dict[str, Any] | None:
    return resolved.resolve(resolved.props(name)).get("VpcConfig")


def test_direct_dispatch_puts_send_behind_the_static_egress_too() -> None:
    """With DirectDispatch on, send calls vendors: behind the same addresses as dispatch."""
    for egress in ("none", "new-vpc"):
        resolved = Template(TEMPLATE_PATH, parameters={"StaticEgress": egress, "DirectDispatch": "true"})
        in_vpc = {f for f in resolved.of_type("AWS::Serverless::Function") if _vpc_config(resolved, f)}
        assert in_vpc == (set() if egress == "none" else MAY_CALL_VENDORS)
        if egress != "none":
            assert _vpc_config(resolved, "SendFunction") == _vpc_config(resolved, "DispatchFunction")


@pytest.mark.parametrize("on", ["true", "false"])
def test_snapstart_is_a_switch_for_the_functions_callers_wait_on(on: str) -> None:
    resolved = Template(TEMPLATE_PATH, parameters={"SnapStart": on})
    for function in resolved.of_type("AWS::Serverless::Function"):
        props = resolved.resolve(resolved.props(function))
        snap = props.get("SnapStart")
        if function in LATENCY_BOUND:
            # the routes invoke the alias: SnapStart only serves published versions
            assert props["AutoPublishAlias"] == "live", function
            assert snap == ({"ApplyOn": "PublishedVersions"} if on == "true" else None), function
        else:
            assert snap is None and "AutoPublishAlias" not in props, function


@pytest.mark.parametrize("name", list(MODES))
def test_static_egress(name: str) -> None:
    """Off: no network resources, no function in a VPC. new-vpc: two AZs, a NAT gateway with its own
    Elastic IP each, private subnets routed through the NAT of their AZ, the EIPs in the Outputs.
    existing-subnets: the given subnets and security groups. Only the vendor-calling functions
    (dispatch, poll) ever join; the ones that never call a vendor stay outside."""
    resolved = mode(name)
    egress = MODES[name].get("StaticEgress", "none")
    functions = resolved.of_type("AWS::Serverless::Function")
    in_vpc = {f for f in functions if _vpc_config(resolved, f)}
    ec2 = [lid for lid in resolved.resources if resolved.type_of(lid).startswith("AWS::EC2::")]
    outputs = resolved.outputs()
    assert outputs["EgressMode"] == egress
    if egress == "none":
        assert in_vpc == set() and ec2 == []
        assert "EgressIps" not in outputs and "EgressSubnets" not in outputs
        return
    assert in_vpc == VENDOR_CALLING
    configs = {json.dumps(_vpc_config(resolved, f), sort_keys=True) for f in in_vpc}
    assert len(configs) == 1  # dispatch and poll leave through the same addresses
    config = _vpc_config(resolved, "DispatchFunction")
    if egress == "existing-subnets":
        assert ec2 == []
        assert config == {
            "SubnetIds": MODES[name]["EgressSubnetIds"].split(","),
            "SecurityGroupIds": [MODES[name]["EgressSecurityGroupIds"]],
        }
        assert outputs["EgressSubnets"] == MODES[name]["EgressSubnetIds"]
        assert "EgressIps" not in outputs
        return
    types = [resolved.type_of(lid) for lid in ec2]
    assert types.count("AWS::EC2::NatGateway") == 2 and types.count("AWS::EC2::EIP") == 2
    assert types.count("AWS::EC2::VPC") == 1 and types.count("AWS::EC2::Subnet") == 4
    props = {lid: resolved.resolve(resolved.props(lid)) for lid in ec2}
    private = [props[ref] for ref in config["SubnetIds"] for ref in [_lid(resolved, ref)]]
    assert len({s["AvailabilityZone"] for s in private}) == 2
    cidrs = [p["CidrBlock"] for lid, p in props.items() if resolved.type_of(lid) == "AWS::EC2::Subnet"]
    assert len(set(cidrs)) == 4 and all(c.endswith("/24") for c in cidrs)
    assert not any(p.get("MapPublicIpOnLaunch") for p in props.values() if "MapPublicIpOnLaunch" in p)
    for az in "AB":  # each private subnet leaves through the NAT (and EIP) of its own AZ
        route = props[f"EgressPrivateDefaultRoute{az}"]
        assert route["DestinationCidrBlock"] == "0.0.0.0/0"
        assert route["NatGatewayId"] == resolved.name_of(f"EgressNatGateway{az}")
        nat = props[f"EgressNatGateway{az}"]
        assert nat["SubnetId"] == resolved.name_of(f"EgressPublicSubnet{az}")
        assert (
            props[f"EgressPublicSubnet{az}"]["AvailabilityZone"]
            == props[f"EgressPrivateSubnet{az}"]["AvailabilityZone"]
        )
        association = props[f"EgressPrivateSubnet{az}Routes"]
        assert association["RouteTableId"] == resolved.name_of(f"EgressPrivateRouteTable{az}")
    group = props["EgressSecurityGroup"]
    assert "SecurityGroupIngress" not in group  # nothing comes in
    assert props["EgressDynamoDbEndpoint"]["VpcEndpointType"] == "Gateway"  # no NAT charge for the table
    eips = resolved.raw["Outputs"]["EgressIps"]
    assert eips["Condition"] == "CreateEgressVpc"
    assert [ref_name(r) for r in eips["Value"]["Fn::Join"][1]] == ["EgressNatEipA", "EgressNatEipB"]


def _lid(resolved: Template, physical: str) -> str:
    return next(lid for lid in resolved.resources if resolved.name_of(lid) == physical)


@pytest.mark.parametrize("name", list(MODES))
def test_callback_cloudfront(name: str) -> None:
    """On: HTTP and HTTPS, no caching, every method, header (but Host) and query string to the
    callback API; both URL forms in the Outputs. Off: no distribution, the API's own URL."""
    resolved = mode(name)
    outputs = resolved.outputs()
    on = MODES[name].get("CallbackCloudFront") == "true"
    assert ("CallbackDistribution" in resolved.resources) is on
    for vendor in VENDORS:
        host = "local.cloudfront.net" if on else "local.execute-api.us-east-1.amazonaws.com"
        assert outputs[f"{vendor}CallbackUrl"] == f"https://{host}/callbacks/{vendor}/<token>"
        assert outputs.get(f"{vendor}CallbackHttpUrl") == (
            f"http://local.cloudfront.net/callbacks/{vendor}/<token>" if on else None
        )
    if not on:
        return
    config = resolved.resolve(resolved.props("CallbackDistribution"))["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["DomainName"] == "local.execute-api.us-east-1.amazonaws.com"  # the callback API
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] == "allow-all"  # port 80 and 443
    assert set(behaviour["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    assert behaviour["CachePolicyId"] == CLOUDFRONT_CACHING_DISABLED
    assert behaviour["OriginRequestPolicyId"] == CLOUDFRONT_ALL_VIEWER_EXCEPT_HOST
    assert "CacheBehaviors" not in config  # one behaviour for everything
    web_acl = MODES[name].get("CallbackWebAclArn")
    assert config.get("WebACLId") == web_acl


@pytest.mark.parametrize("name", list(MODES))
def test_guards_per_mode(name: str) -> None:
    """WAF on the signed API's stage, the bus policy for other accounts and the default-bus rule
    exist exactly when their parameters are given."""
    resolved = mode(name)
    given = MODES[name]
    assert ("ApiWebAclAssociation" in resolved.resources) is bool(given.get("ApiWebAclArn"))
    if "ApiWebAclAssociation" in resolved.resources:
        association = resolved.resolve(resolved.props("ApiWebAclAssociation"))
        assert association["ResourceArn"].endswith("::/restapis/local/stages/v1")
        assert association["WebACLArn"] == given["ApiWebAclArn"]
    assert ("SendSmsDefaultBusRule" in resolved.resources) is bool(given.get("SendSources"))
    if given.get("SendSources"):
        pattern = resolved.resolve(resolved.props("SendSmsDefaultBusRule"))["EventPattern"]
        assert pattern == {"source": given["SendSources"].split(","), "detail-type": ["Send SMS"]}
    policy = resolved.resolve(resolved.props("SendRequestsQueuePolicy"))["PolicyDocument"]["Statement"][0]
    expected_rules = 2 if given.get("SendSources") else 1
    assert len(policy["Condition"]["ArnEquals"]["aws:SourceArn"]) == expected_rules
    assert ("SendAccountsBusPolicy" in resolved.resources) is bool(given.get("SendAccountIds"))
    if given.get("SendAccountIds"):
        statement = resolved.resolve(resolved.props("SendAccountsBusPolicy"))["Statement"]
        assert statement["Principal"] == {"AWS": given["SendAccountIds"].split(",")}
        assert statement["Action"] == "events:PutEvents"
        assert statement["Condition"] == {"StringEquals": {"events:detail-type": "Send SMS"}}


def test_rules_name_the_fix() -> None:
    with pytest.raises(Exception, match="DefaultVendor must be one of Vendors"):
        Template(TEMPLATE_PATH, parameters={"Vendors": "kxt3,intl"}).check_rules()  # sms57 left out
    with pytest.raises(Exception, match="needs EgressSubnetIds"):
        Template(TEMPLATE_PATH, parameters={"StaticEgress": "existing-subnets"}).check_rules()
    with pytest.raises(Exception, match="set CallbackCloudFront=true"):
        Template(
            TEMPLATE_PATH, parameters={"CallbackWebAclArn": MODES["cloudfront-waf"]["CallbackWebAclArn"]}
        ).check_rules()


# --------------------------------------------------------------------------- IAM as deployed (after the SAM transform)

SAM_PYTHON = ROOT / ".venv-sam/bin/python"


@functools.cache
def deployed(name: str, tmp_dir: str) -> Template:
    """The SAM-transformed template of a mode (the roles SAM generates), conditions resolved."""
    result = subprocess.run(
        [str(SAM_PYTHON), str(ROOT / "tests/sam_transform.py"), str(TEMPLATE_PATH), json.dumps(MODES[name])],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path = Path(tmp_dir) / f"{name}.json"
    path.write_text(result.stdout)
    return Template(path, parameters=MODES[name])


def role_statements(resolved: Template, function: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(Allow/Deny statements, AWS managed policy ARNs) of a function's role, resolved."""
    role = resolved.raw["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    props = resolved.resolve(resolved.props(role))
    found: list[dict[str, Any]] = []
    for policy in props.get("Policies", []):
        found.extend(as_list(policy["PolicyDocument"]["Statement"]))
    aws_managed = []
    for arn in props.get("ManagedPolicyArns", []):
        own = next(
            (lid for lid in resolved.of_type("AWS::IAM::ManagedPolicy") if resolved.name_of(lid) == arn), None
        )
        if own:
            found.extend(as_list(resolved.resolve(resolved.props(own))["PolicyDocument"]["Statement"]))
        else:
            aws_managed.append(arn.rsplit("/", 1)[-1])
    return found, aws_managed


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="make sam-venv first")
@pytest.mark.parametrize("name", ["defaults", "new-vpc", "cloudfront-waf", "existing-secrets"])
def test_deployed_roles(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    resolved = deployed(name, str(tmp_path_factory.getbasetemp()))
    lambdas = resolved.of_type("AWS::Lambda::Function")
    assert set(lambdas) >= set(FUNCTIONS)
    table = resolved.attribute("Table", "Arn")
    egress = MODES[name].get("StaticEgress", "none") != "none"
    for function in FUNCTIONS:
        statements_, managed = role_statements(resolved, function)
        allows = [s for s in statements_ if s["Effect"] == "Allow"]
        actions = {a for s in allows for a in as_list(s["Action"])}
        # The VPC access policy (ENIs) is attached only to the functions that may join the VPC.
        assert ("AWSLambdaVPCAccessExecutionRole" in managed) is (function in MAY_CALL_VENDORS), function
        assert {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"} <= set(managed), function
        if egress and function in VENDOR_CALLING:
            assert resolved.resolve(resolved.props(function))["VpcConfig"]["SubnetIds"]
        secrets = {
            json.dumps(s["Resource"])
            for s in allows
            if "secretsmanager:GetSecretValue" in as_list(s["Action"])
        }
        prefix = MODES[name].get("VendorSecretPrefix") or "smsrelay-local/vendor-settings/"
        arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
        if function in ("SendFunction", "DispatchFunction", "PollFunction"):  # every vendor's secret
            assert secrets == {json.dumps(f"{arn}{prefix}*")}, function
        if not function.startswith("Callback") and function != "StatusApiFunction":
            continue
        if function == "StatusApiFunction":
            assert secrets == set() and not any(a.startswith(("events:", "sqs:")) for a in actions)
        else:  # its own vendor's secret only
            vendor = function.removeprefix("Callback").removesuffix("Function")
            own = (
                resolved.attribute(f"Vendor{vendor}Secret", None)
                if f"Vendor{vendor}Secret" in resolved.resources
                else f"{arn}{prefix}{vendor}-??????"
            )
            assert secrets == {json.dumps(own)}, function
            assert {a for a in actions if a.startswith("events:")} == {"events:PutEvents"}
        assert not {"dynamodb:Scan", "dynamodb:BatchWriteItem", "dynamodb:DeleteTable"} & actions, function
        for statement in allows:
            for action in as_list(statement["Action"]):
                if action in ("dynamodb:PutItem", "dynamodb:DeleteItem") and function == "StatusApiFunction":
                    assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
                        "S#*"
                    ]
                if action == "dynamodb:DeleteItem" and function != "StatusApiFunction":
                    assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
                        "E#*"
                    ]
                if action.startswith("dynamodb:") and action not in (
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                ):
                    assert as_list(statement["Resource"]) == [table], (function, action)


# --------------------------------------------------------------------------- linters


@pytest.mark.slow
def test_cfn_lint_passes():
    result = subprocess.run(
        [cfn_lint_bin(), str(TEMPLATE_PATH)], capture_output=True, text=True, cwd=ROOT, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_cfn_lint_really_checks_sam_resources(tmp_path):
    """Guards against a lint that silently checks nothing (e.g. a SAM template it cannot read)."""
    broken = TEMPLATE_PATH.read_text().replace(
        "VisibilityTimeout: 720", "VisibilityTimeout: !Ref NoSuchThing"
    )
    broken = broken.replace("      Timeout: 120 #", "      Timeoutt: 120 #", 1)
    path = tmp_path / "template.yaml"
    path.write_text(broken)
    result = subprocess.run([cfn_lint_bin(), str(path)], capture_output=True, text=True, timeout=180)
    assert result.returncode != 0
    assert "NoSuchThing" in result.stdout and "Timeoutt" in result.stdout


@pytest.mark.skipif(not (ROOT / ".venv-sam/bin/sam").exists(), reason="make sam-venv first")
def test_sam_validate_lint():
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    env.update(SAM_CLI_TELEMETRY="0", SAM_CLI_DISABLE_UPDATE_CHECK="1")
    result = subprocess.run(
        [str(ROOT / ".venv-sam/bin/sam"), "validate", "--lint", "--template-file", str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
