"""HttpApi events on the local stack: the HTTP API's payload v2 (what the callback receivers get when
deployed), next to a REST (v1) route; and the template features the deployment options use."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from smsrelay_local.stack import LocalStack, Template, TemplateError

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Mode: {Type: String, Default: none, AllowedValues: [none, listed]}
  Ids: {Type: CommaDelimitedList, Default: ""}
  Block: {Type: String, Default: 10.90.0.0/22}
Conditions:
  HasIds: !Not [!Equals [!Join ["", !Ref Ids], ""]]
Rules:
  ListedNeedsIds:
    RuleCondition: !Equals [!Ref Mode, listed]
    Assertions:
      - Assert: !Not [!EachMemberEquals [!Ref Ids, ""]]
        AssertDescription: "Mode=listed needs Ids"
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties: {StageName: v1, Auth: {DefaultAuthorizer: AWS_IAM}}
  Hooks:
    Type: AWS::Serverless::HttpApi
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Handler: app.handler
      Events:
        Rest:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/rest/{name}", Method: get}
        Hook:
          Type: HttpApi
          Properties: {ApiId: !Ref Hooks, Path: "/hooks/{name}", Method: POST, PayloadFormatVersion: "2.0"}
        HookGet:
          Type: HttpApi
          Properties: {ApiId: !Ref Hooks, Path: "/hooks/{name}", Method: GET}
Outputs:
  HookUrl:
    Value: !Sub "https://${Hooks}.execute-api.${AWS::Region}.${AWS::URLSuffix}/hooks/<name>"
  RestUrl:
    Value: !Sub "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"
  Subnets:
    Value: !Join [",", !Cidr [!Ref Block, 4, 8]]
  IdList:
    Condition: HasIds
    Value: !Join [";", !Ref Ids]
"""

ECHO = """
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}
"""


def write_project(root: Path) -> Path:
    (root / "echo").mkdir(parents=True, exist_ok=True)
    (root / "echo" / "app.py").write_text(textwrap.dedent(ECHO), encoding="utf-8")
    path = root / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("http-api-project"))


@pytest.fixture(scope="module")
def stack(template_path: Path) -> Iterator[LocalStack]:
    with LocalStack(template=template_path, simulators=False) as running:
        yield running


def test_http_api_routes_are_read_from_the_template(template_path: Path) -> None:
    (spec,) = Template(template_path).functions()
    routes = {(r.kind, r.method, r.path, r.payload_version, r.iam_auth) for r in spec.routes}
    assert routes == {
        ("rest", "GET", "/rest/{name}", "1.0", True),
        ("http", "POST", "/hooks/{name}", "2.0", False),
        ("http", "GET", "/hooks/{name}", "2.0", False),  # SAM's default payload for HttpApi: 2.0
    }


def test_list_parameters_and_rules(template_path: Path) -> None:
    # Before the module's stack starts: one LocalStack per process.
    listed = Template(template_path, parameters={"Mode": "listed", "Ids": "a,b"})
    listed.check_rules()
    assert listed.outputs()["IdList"] == "a;b"
    with pytest.raises(TemplateError, match="Mode=listed needs Ids"):
        Template(template_path, parameters={"Mode": "listed"}).check_rules()
    with pytest.raises(TemplateError, match="Mode=listed needs Ids"):
        LocalStack(template=template_path, simulators=False, parameters={"Mode": "listed"}).start()


def test_gb2312_query_string_arrives_raw_in_payload_v2(stack: LocalStack) -> None:
    # smsadmin's push: fields in the query string of a GET, text percent-encoded in GB2312.
    raw_query = "Class=mo&Mobile=13800000001&Message=%BA%C3%B5%C4&Message=x"
    answer = requests.get(f"{stack.url}/hooks/alice?{raw_query}", headers={"X-Vendor": "A"}, timeout=10)
    assert answer.status_code == 200
    event = answer.json()
    assert event["version"] == "2.0" and event["routeKey"] == "GET /hooks/{name}"
    assert event["rawPath"] == "/hooks/alice" and event["pathParameters"] == {"name": "alice"}
    assert event["rawQueryString"] == raw_query  # the GB2312 bytes, still percent-encoded
    assert "好的".encode("gb2312") == bytes.fromhex("BAC3B5C4")
    assert event["queryStringParameters"]["Class"] == "mo"
    assert event["queryStringParameters"]["Message"].endswith(",x")  # repeated keys joined by commas
    http = event["requestContext"]["http"]
    assert http["method"] == "GET" and http["sourceIp"] == "127.0.0.1" and http["path"] == "/hooks/alice"
    assert event["headers"]["x-vendor"] == "A"  # header names in lower case
    assert "httpMethod" not in event and "multiValueHeaders" not in event
    assert "body" not in event and event["isBase64Encoded"] is False


def test_payload_v2_bodies_base64_unless_text(stack: LocalStack) -> None:
    form = "Class=rpt&Report=DELIVRD".encode("gb2312")
    event = requests.post(
        f"{stack.url}/hooks/bob",
        data=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    ).json()
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == form
    assert event["requestContext"]["http"]["method"] == "POST"
    event = requests.post(f"{stack.url}/hooks/bob", json={"a": "好"}, timeout=10).json()
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == {"a": "好"}


def test_rest_route_keeps_the_v1_event(stack: LocalStack) -> None:
    event = requests.get(f"{stack.url}/rest/carol?x=1", timeout=10).json()
    assert event["httpMethod"] == "GET" and event["resource"] == "/rest/{name}"
    assert event["queryStringParameters"] == {"x": "1"} and "version" not in event


def test_outputs_point_at_the_local_api(stack: LocalStack) -> None:
    outputs = stack.outputs()
    assert outputs["HookUrl"] == f"{stack.url}/hooks/<name>"
    assert outputs["RestUrl"] == stack.url
    assert outputs["Subnets"] == "10.90.0.0/24,10.90.1.0/24,10.90.2.0/24,10.90.3.0/24"
    assert "IdList" not in outputs  # its condition is false with the defaults
