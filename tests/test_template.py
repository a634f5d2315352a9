"""What an infra team checks in template.yaml before `sam deploy`: the contract, least privilege,
DLQs and alarms, encryption, and a clean cfn-lint."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfn_flip import load_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
VENDORS = ("sms57", "kxt3", "smsadmin", "intl", "santo")

# logical id -> (CodeUri, {event type: [(method, path) for Api | queue logical id for SQS | None]})
FUNCTIONS: dict[str, tuple[str, dict[str, list[Any]]]] = {
    "SendFunction": (
        "functions/send/",
        {"SQS": ["SendRequestsQueue"], "Api": [("post", "/messages")]},
    ),
    "DispatchFunction": ("functions/dispatch/", {"SQS": ["DispatchQueue"]}),
    "PollFunction": ("functions/poll/", {"ScheduleV2": [None]}),
    "SweepFunction": ("functions/sweep/", {"ScheduleV2": [None]}),
    "StatusApiFunction": (
        "functions/api/",
        {
            "Api": [
                ("get", "/messages/{message_id}"),
                ("get", "/requests/{request_id}"),
                ("get", "/suppressions"),
                ("put", "/suppressions/{number}"),
                ("delete", "/suppressions/{number}"),
            ]
        },
    ),
    **{
        f"Callback{vendor.capitalize()}Function": (
            f"functions/callback_{vendor}/",
            {
                "Api": [("post", f"/callbacks/{vendor}/{{token}}")]
                + ([("get", f"/callbacks/{vendor}/{{token}}")] if vendor == "santo" else [])
            },
        )
        for vendor in VENDORS
    },
}
SQS_BATCH_SIZE = {"SendFunction": 10, "DispatchFunction": 5}

GLOBAL_ENV = {
    "TABLE_NAME",
    "IDEMPOTENCY_TABLE_NAME",
    "DISPATCH_QUEUE_URL",
    "SEND_QUEUE_URL",
    "EVENT_BUS_NAME",
    "DEFAULT_VENDOR",
    "DEFAULT_REGION",
    "ROUTING_RULES",
    "VENDOR_SECRETS",
    "RETENTION_DAYS",
    "REPORT_WINDOW_HOURS",
    "DISPATCH_LEASE_S",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
PARAMETERS = {
    "DefaultVendor",
    "RoutingRules",
    "PollRateMinutes",
    "RetentionDays",
    "ReportWindowHours",
    "LogLevel",
    "AlarmEmail",
    "BalanceAlarmThreshold",
    "EventBusName",
    *(f"{vendor.capitalize()}SecretArn" for vendor in VENDORS),
}
# AWS services that hold data: no Allow statement may use a wildcard action or resource on them.
DATA_SERVICES = {"dynamodb", "sqs", "sns", "secretsmanager", "events", "s3", "kms", "lambda", "scheduler"}
POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy",
    "DynamoDBReadPolicy",
    "SQSSendMessagePolicy",
    "SQSPollerPolicy",
    "EventBridgePutEventsPolicy",
    "AWSSecretsManagerGetSecretValuePolicy",
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_yaml(TEMPLATE_PATH.read_text())


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


def cfn_lint_bin() -> str:
    candidate = Path(sys.executable).parent / "cfn-lint"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("cfn-lint")
    if not found:
        pytest.skip("cfn-lint is not installed")
    return found


# --------------------------------------------------------------------------- contract


def test_functions_exist_with_their_code_and_build(template):
    functions = resources(template, "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, (code_uri, _) in FUNCTIONS.items():
        res = functions[name]
        assert res["Properties"]["CodeUri"] == code_uri
        assert res["Metadata"]["BuildMethod"] == "makefile"
        makefile = (ROOT / code_uri / "Makefile").read_text()
        assert re.search(rf"^build-{name}:", makefile, re.M), f"{code_uri}Makefile lacks build-{name}"
        assert "$(ARTIFACTS_DIR)" in makefile


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
    secrets_json = env["VENDOR_SECRETS"]["Fn::Sub"][0]
    for vendor in VENDORS:
        assert f'"{vendor}":"${{' in secrets_json


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
            elif event["Type"] == "SQS":
                item = ref_name(props["Queue"])
            else:
                item = None
            by_type.setdefault(event["Type"], []).append(item)
        assert {k: sorted(v, key=str) for k, v in by_type.items()} == {
            k: sorted(v, key=str) for k, v in expected.items()
        }, name


def test_sqs_event_sources_report_batch_item_failures(template):
    for name, batch_size in SQS_BATCH_SIZE.items():
        sqs = [e for e in template["Resources"][name]["Properties"]["Events"].values() if e["Type"] == "SQS"]
        assert len(sqs) == 1
        assert sqs[0]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert sqs[0]["Properties"]["BatchSize"] == batch_size


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


def test_api_auth_iam_except_callbacks(template):
    api = template["Resources"]["Api"]["Properties"]
    assert api["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    for name in FUNCTIONS:
        for event in template["Resources"][name]["Properties"]["Events"].values():
            if event["Type"] != "Api":
                continue
            auth = event["Properties"].get("Auth", {})
            if event["Properties"]["Path"].startswith("/callbacks/"):
                assert auth.get("Authorizer") == "NONE", name
            else:
                assert auth.get("Authorizer", "AWS_IAM") == "AWS_IAM", name


# --------------------------------------------------------------------------- storage and queues


def test_tables_encrypted_recoverable_expiring(template):
    tables = resources(template, "AWS::DynamoDB::Table")
    assert set(tables) == {"Table", "IdempotencyTable"}
    for res in tables.values():
        props = res["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["TimeToLiveSpecification"]["Enabled"] is True
    main = tables["Table"]["Properties"]
    assert main["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert (
        tables["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "expiration"
    )
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
    assert set(consumers) == {"SendRequestsQueue", "DispatchQueue"}
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
    assert rules
    for rule in rules.values():
        props = rule["Properties"]
        assert props["EventPattern"]["detail-type"] == ["Send SMS"]
        (target,) = props["Targets"]
        assert ref_name(target["Arn"]) == "SendRequestsQueue"
        assert target["InputPath"] == "$.detail"
        assert ref_name(target["DeadLetterConfig"]["Arn"]) == "SendRequestsDLQ"
    assert any(ref_name(r["Properties"].get("EventBusName")) == "EventBus" for r in rules.values())
    assert ref_name(template["Resources"]["EventBus"]["Properties"]["Name"]) == "EventBusName"
    (sub,) = [
        s
        for s in resources(template, "AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "sqs"
    ]
    assert ref_name(sub["Properties"]["TopicArn"]) == "SendTopic"
    assert ref_name(sub["Properties"]["Endpoint"]) == "SendRequestsQueue"
    assert sub["Properties"]["RawMessageDelivery"] is True
    (policy,) = resources(template, "AWS::SQS::QueuePolicy").values()
    principals = {s["Principal"]["Service"] for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert principals == {"events.amazonaws.com", "sns.amazonaws.com"}
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]


def test_one_secret_per_vendor_or_an_existing_arn(template):
    for vendor in VENDORS:
        cap = vendor.capitalize()
        secret = template["Resources"][f"{cap}Secret"]
        assert secret["Type"] == "AWS::SecretsManager::Secret"
        assert secret["Condition"] == f"Create{cap}Secret"
        assert template["Parameters"][f"{cap}SecretArn"]["Default"] == ""


# --------------------------------------------------------------------------- least privilege


def test_policies_are_scoped_templates_or_exact_statements(template):
    for name in FUNCTIONS:
        for policy in template["Resources"][name]["Properties"].get("Policies", []):
            assert isinstance(policy, dict), f"{name}: managed policy {policy!r}"
            if "Statement" in policy:
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
        (queue,) = [
            ref_name(e["Properties"]["Queue"]) for e in props["Events"].values() if e["Type"] == "SQS"
        ]
        denies = [
            s
            for p in props["Policies"]
            if isinstance(p, dict) and "Statement" in p
            for s in p["Statement"]
            if s["Effect"] == "Deny"
        ]
        assert any(
            ref_name(s.get("NotResource")) == queue and "sqs:ReceiveMessage" in s["Action"] for s in denies
        ), name


def test_callbacks_read_only_their_own_secret(template):
    for vendor in VENDORS:
        policies = template["Resources"][f"Callback{vendor.capitalize()}Function"]["Properties"]["Policies"]
        secrets = [
            p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
            for p in policies
            if "AWSSecretsManagerGetSecretValuePolicy" in p
        ]
        assert len(secrets) == 1
        assert secrets[0]["Fn::If"][0] == f"Create{vendor.capitalize()}Secret"
    status_policies = template["Resources"]["StatusApiFunction"]["Properties"]["Policies"]
    assert [next(iter(p)) for p in status_policies] == ["DynamoDBCrudPolicy"]  # the suppression list


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
    assert dlqs >= {"SendRequestsDLQ", "DispatchDLQ", "ScheduleDLQ"}
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
    assert errors >= {"DispatchFunction", "PollFunction"}
    api_metrics = {
        m["MetricName"]
        for a in alarms.values()
        for m in _alarm_metrics(a)
        if m["Namespace"] == "AWS/ApiGateway"
    }
    assert api_metrics >= {"4XXError", "5XXError"}
    callback_resources = {
        _dims(m)["Resource"]
        for a in alarms.values()
        for m in _alarm_metrics(a)
        if m["Namespace"] == "AWS/ApiGateway"
    }
    assert callback_resources == {f"/callbacks/{v}/{{token}}" for v in VENDORS}
    balances = {
        _dims(m)["vendor"]
        for a in alarms.values()
        for m in _alarm_metrics(a)
        if m["Namespace"] == "smsrelay" and m["MetricName"] == "VendorBalance"
    }
    assert balances == set(VENDORS)
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert ref_name(subscription["Properties"]["Endpoint"]) == "AlarmEmail"


def test_parameters_and_outputs(template):
    assert set(template["Parameters"]) >= PARAMETERS
    outputs = template["Outputs"]
    assert "ApiUrl" in outputs
    for vendor in VENDORS:
        url = outputs[f"{vendor.capitalize()}CallbackUrl"]["Value"]["Fn::Sub"]
        assert url.startswith("https://${Api}.execute-api.")
        assert url.endswith(f"/callbacks/{vendor}/<token>")
        assert f"{vendor.capitalize()}SecretArn" in outputs
    for name in (
        "SendRequestsQueueUrl",
        "SendRequestsQueueArn",
        "DispatchQueueArn",
        "EventBusName",
        "EventBusArn",
    ):
        assert name in outputs


# --------------------------------------------------------------------------- linters


def test_cfn_lint_passes():
    result = subprocess.run(
        [cfn_lint_bin(), str(TEMPLATE_PATH)], capture_output=True, text=True, cwd=ROOT, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr


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
