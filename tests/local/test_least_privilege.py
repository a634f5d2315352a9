"""The IAM the template grants is enough, and only the functions in the egress VPC call vendors.

Real traffic on the local stack (sends through every vendor, pushes, pulls, opt-out replies, the
status API and the suppression list, a sweep, wrong-token pushes): every AWS call a function makes
is recorded with the function that made it, turned into the IAM action(s) and resource(s) AWS
would authorise, and checked against that function's role as SAM deploys it (tests/sam_transform.py)
with the template's conditions resolved. moto does not enforce IAM; this test does, for the calls
the code really makes. Every vendor HTTP call is recorded too: only dispatch and poll may make one.
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.client
import pytest
import requests
from smsrelay_local.stack import LocalStack, Template, default_template
from smsrelay_local.stack.lambdas import LocalFunction

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam/bin/python"
VENDORS: list[str] = Template(default_template()).ref("Vendors")  # the template's one list
PARAMETERS = {"SendSources": "shop"}
# AWS managed policies SAM attaches, as far as the functions' own calls go (logs/X-Ray aside).
AWS_MANAGED = {
    "AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        }
    ],
}

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("smsrelay_function", default=None)

pytestmark = pytest.mark.skipif(not SAM_PYTHON.exists(), reason="make sam-venv first (the SAM transform)")


class Recorder:
    def __init__(self) -> None:
        self.aws: list[tuple[str, str, str, dict[str, Any]]] = []  # function, service, operation, params
        self.http: list[tuple[str, str]] = []  # function, host:port

    def install(self, patch: pytest.MonkeyPatch) -> None:
        recorder = self
        make_api_call = botocore.client.BaseClient._make_api_call
        invoke = LocalFunction.invoke
        request = requests.Session.request

        def recording_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            function = _current.get()
            if function:
                recorder.aws.append((function, client.meta.service_model.service_name, operation, params))
            return make_api_call(client, operation, params)

        def recording_invoke(fn: LocalFunction, event: Any) -> Any:
            token = _current.set(fn.logical_id)
            try:
                return invoke(fn, event)
            finally:
                _current.reset(token)

        def recording_request(
            session: requests.Session, method: str, url: str, *args: Any, **kwargs: Any
        ) -> Any:
            function = _current.get()
            if function:
                recorder.http.append((function, urlsplit(url).netloc))
            return request(session, method, url, *args, **kwargs)

        patch.setattr(botocore.client.BaseClient, "_make_api_call", recording_call)
        patch.setattr(LocalFunction, "invoke", recording_invoke)
        patch.setattr(requests.Session, "request", recording_request)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Recorder]]:
    recorder = Recorder()
    quiet = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
    with pytest.MonkeyPatch.context() as patch:
        recorder.install(patch)
        with LocalStack(template=default_template(), env=quiet, parameters=PARAMETERS) as stack:
            _traffic(stack)
            yield stack, recorder


def _traffic(stack: LocalStack) -> None:
    finals = {"delivered", "undelivered", "rejected", "failed"}
    ids: list[str] = []
    for vendor in VENDORS:
        answer = requests.post(
            f"{stack.url}/messages",
            json={
                "recipients": ["+8613800000001", "+8613800004040"],
                "content": "【Acme】hi",
                "vendor": vendor,
            },
            timeout=30,
        ).json()
        ids += answer["message_ids"]
    request_id = answer["request_id"]
    # The default bus: a listed source sends (SendSources), another does not.
    stack.client("events").put_events(
        Entries=[
            {
                "Source": "shop",
                "DetailType": "Send SMS",
                "Detail": json.dumps({"recipients": ["+8613800000101"], "content": "bus", "vendor": "sms57"}),
            }
        ]
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stack.run_schedule("poll")  # sms57 and smsadmin reports are pulled
        done = {
            e["detail"]["message_id"]
            for e in stack.events("SMS Status Changed")
            if e["detail"].get("status") in finals
        }
        if set(ids) <= done:
            break
        time.sleep(0.5)
    assert set(ids) <= done, "not every message reached a final status"
    stack.wait_for_events(lambda e: e["detail"].get("to") == "+8613800000101", timeout=30)
    # Opt-out replies: pushed (kxt3) and pulled (smsadmin); then the suppression list by API.
    stack.simulators["kxt3"].inject_inbound("13800000201", "TD")
    stack.simulators["smsadmin"].inject_inbound("13800000202", "退订")
    stack.run_schedule("poll")
    stack.wait_for_events("SMS Opted Out", count=2, timeout=30)
    for method, path in [
        ("GET", f"/messages/{ids[0]}"),
        ("GET", f"/requests/{request_id}"),
        ("PUT", "/suppressions/+8613800000301"),
        ("GET", "/suppressions"),
        ("DELETE", "/suppressions/+8613800000301"),
    ]:
        assert requests.request(method, f"{stack.url}{path}", timeout=10).status_code < 300, path
    stack.run_schedule("sweep")


@pytest.fixture(scope="module")
def roles(recorded: tuple[LocalStack, Recorder], tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The SAM-transformed template with the local stack's names and ARNs."""
    stack, _ = recorded
    result = subprocess.run(
        [
            str(SAM_PYTHON),
            str(ROOT / "tests/sam_transform.py"),
            str(default_template()),
            json.dumps(PARAMETERS),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    path = tmp_path_factory.mktemp("deployed") / "template.json"
    path.write_text(result.stdout)
    assert stack.template is not None
    deployed = Template(
        path, parameters=PARAMETERS, stack_name=stack.stack_name, sqs_endpoint=stack.aws.endpoint
    )
    deployed.physical = stack.template.physical  # the emulator's real ARNs (secrets) and queue URLs
    return deployed


# --------------------------------------------------------------------------- calls -> IAM requests

ARN = "arn:aws:{service}:us-east-1:123456789012:{rest}"


def iam_requests(
    stack: LocalStack, service: str, operation: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """What IAM authorises for one API call: [{action, resource, leading_keys}]."""

    def table(name: str, index: str | None = None) -> str:
        return ARN.format(service="dynamodb", rest=f"table/{name}" + (f"/index/{index}" if index else ""))

    def key_of(item: dict[str, Any]) -> list[str]:
        pk = item.get("pk") or {}
        return [pk.get("S", "")] if pk else []

    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            found = []
            for entry in params["TransactItems"]:
                ((kind, body),) = entry.items()
                action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(kind, "")
                action = action or ("ConditionCheckItem" if kind == "ConditionCheck" else "GetItem")
                found.append(
                    {
                        "action": f"dynamodb:{action}",
                        "resource": table(body["TableName"]),
                        "leading_keys": key_of(body.get("Item") or body.get("Key") or {}),
                    }
                )
            return found
        if operation in ("BatchGetItem", "BatchWriteItem"):
            found = []
            for name, work in params["RequestItems"].items():
                keys = (
                    [k for k in work["Keys"] for k in key_of(k)]
                    if operation == "BatchGetItem"
                    else [
                        k
                        for w in work
                        for k in key_of(
                            (w.get("PutRequest") or {}).get("Item")
                            or (w.get("DeleteRequest") or {}).get("Key")
                            or {}
                        )
                    ]
                )
                found.append(
                    {"action": f"dynamodb:{operation}", "resource": table(name), "leading_keys": keys}
                )
            return found
        return [
            {
                "action": f"dynamodb:{operation}",
                "resource": table(params["TableName"], params.get("IndexName")),
                "leading_keys": key_of(params.get("Item") or params.get("Key") or {}),
            }
        ]
    if service == "sqs":
        url = params.get("QueueUrl", "")
        arn = ARN.format(service="sqs", rest=url.rsplit("/", 1)[-1])
        action = operation.removesuffix("Batch")
        return [{"action": f"sqs:{action}", "resource": arn, "leading_keys": []}]
    if service == "events" and operation == "PutEvents":
        buses = {(e.get("EventBusName") or "default").rsplit("/", 1)[-1] for e in params["Entries"]}
        return [
            {
                "action": "events:PutEvents",
                "resource": ARN.format(service="events", rest=f"event-bus/{b}"),
                "leading_keys": [],
            }
            for b in sorted(buses)
        ]
    if service == "secretsmanager" and operation == "GetSecretValue":
        return [
            {"action": "secretsmanager:GetSecretValue", "resource": params["SecretId"], "leading_keys": []}
        ]
    if service == "lambda" and operation == "Invoke":
        name = params["FunctionName"]
        resource = name if name.startswith("arn:") else ARN.format(service="lambda", rest=f"function:{name}")
        return [{"action": "lambda:InvokeFunction", "resource": resource, "leading_keys": []}]
    raise AssertionError(f"no IAM mapping for {service}:{operation}: add one to iam_requests")


def _matches(patterns: Any, value: str) -> bool:
    return any(
        fnmatch.fnmatchcase(value, p) for p in (patterns if isinstance(patterns, list) else [patterns])
    )


def _conditions_hold(statement: dict[str, Any], leading_keys: list[str]) -> bool:
    for operator, tests in (statement.get("Condition") or {}).items():
        for key, wanted in tests.items():
            if operator == "ForAllValues:StringLike" and key == "dynamodb:LeadingKeys":
                if not all(_matches(wanted, k) for k in leading_keys):
                    return False
            else:
                raise AssertionError(f"condition {operator} {key} not evaluated by this test")
    return True


def allowed(statements: list[dict[str, Any]], request: dict[str, Any]) -> bool:
    def applies(statement: dict[str, Any]) -> bool:
        if not _matches(statement["Action"], request["action"]):
            return False
        if "NotResource" in statement:
            return not _matches(statement["NotResource"], request["resource"])
        return _matches(statement["Resource"], request["resource"]) and _conditions_hold(
            statement, request["leading_keys"]
        )

    if any(s["Effect"] == "Deny" and applies(s) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and applies(s) for s in statements)


def role_of(deployed: Template, function: str) -> list[dict[str, Any]]:
    role = deployed.raw["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    props = deployed.resolve(deployed.props(role))
    statements: list[dict[str, Any]] = []
    for policy in props.get("Policies", []):
        doc = policy["PolicyDocument"]["Statement"]
        statements += doc if isinstance(doc, list) else [doc]
    own = {deployed.name_of(lid): lid for lid in deployed.of_type("AWS::IAM::ManagedPolicy")}
    for arn in props.get("ManagedPolicyArns", []):
        if arn in own:
            doc = deployed.resolve(deployed.props(own[arn]))["PolicyDocument"]["Statement"]
            statements += doc if isinstance(doc, list) else [doc]
        else:
            statements += AWS_MANAGED.get(arn.rsplit("/", 1)[-1], [])
    return statements


# --------------------------------------------------------------------------- the checks


def test_every_aws_call_is_allowed_by_its_functions_role(
    recorded: tuple[LocalStack, Recorder], roles: Template
) -> None:
    stack, recorder = recorded
    functions = {fn for fn, *_ in recorder.aws}
    # Every function made calls, so every role was exercised.
    assert functions == set(stack.functions), set(stack.functions) - functions
    denied: dict[tuple[str, str, str], int] = {}
    for function, service, operation, params in recorder.aws:
        statements = role_of(roles, function)
        for request in iam_requests(stack, service, operation, params):
            if not allowed(statements, request):
                key = (
                    function,
                    request["action"],
                    request["resource"] + " " + ",".join(request["leading_keys"][:1]),
                )
                denied[key] = denied.get(key, 0) + 1
    assert not denied, "calls the deployed roles would refuse:\n" + "\n".join(
        f"  {fn}: {action} on {resource} (x{n})" for (fn, action, resource), n in sorted(denied.items())
    )


def test_the_checker_refuses_what_the_roles_do_not_grant(
    recorded: tuple[LocalStack, Recorder], roles: Template
) -> None:
    """The check above can fail: a Scan, a delete outside E#, another vendor's secret."""
    stack, _ = recorded
    table = stack.physical("Table")
    callback = role_of(roles, "Callbacksms57Function")
    status = role_of(roles, "StatusApiFunction")
    assert not allowed(callback, iam_requests(stack, "dynamodb", "Scan", {"TableName": table})[0])
    delete = {"TableName": table, "Key": {"pk": {"S": "M#x"}, "sk": {"S": "M"}}}
    assert not allowed(callback, iam_requests(stack, "dynamodb", "DeleteItem", delete)[0])
    early = {"TableName": table, "Key": {"pk": {"S": "E#sms57#1#+86"}, "sk": {"S": "E"}}}
    assert allowed(callback, iam_requests(stack, "dynamodb", "DeleteItem", early)[0])
    assert not allowed(status, iam_requests(stack, "dynamodb", "DeleteItem", early)[0])
    put_message = {"TableName": table, "Item": {"pk": {"S": "M#x"}, "sk": {"S": "M"}}}
    assert not allowed(status, iam_requests(stack, "dynamodb", "PutItem", put_message)[0])
    other_secret = stack.physical("Vendorkxt3Secret")
    request = {"action": "secretsmanager:GetSecretValue", "resource": other_secret, "leading_keys": []}
    assert not allowed(callback, request)


def test_only_dispatch_and_poll_call_vendors(recorded: tuple[LocalStack, Recorder]) -> None:
    """The functions StaticEgress puts behind the NAT (tests/test_template.py: VENDOR_CALLING) are
    exactly those that call a vendor: the others can stay outside the VPC."""
    stack, recorder = recorded
    vendor_hosts = {urlsplit(sim.base_url).netloc for sim in stack.simulators.values()}
    callers = {fn for fn, host in recorder.http if host in vendor_hosts}
    assert callers == {"DispatchFunction", "PollFunction"}


def test_a_wrong_token_push_is_refused_before_any_store_access(recorded: tuple[LocalStack, Recorder]) -> None:
    stack, recorder = recorded
    before = len(recorder.aws)
    for vendor in VENDORS:
        for _ in range(5):
            answer = requests.post(f"{stack.url}/callbacks/{vendor}/not-the-token", data=b"x=1", timeout=10)
            assert answer.status_code == 403
    assert recorder.aws[before:] == []  # no table, bus or secret call: the settings are in memory
