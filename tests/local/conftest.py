"""A tiny SAM template with fake handlers, to test the local stack's machinery on its own."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from smsrelay_local.stack import LocalStack

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Flavour: {Type: String, Default: plain}
  TickMinutes: {Type: Number, Default: 1}
Conditions:
  IsPlain: !Equals [!Ref Flavour, plain]
  Never: !Equals [a, b]
Globals:
  Function:
    Handler: app.handler
    Timeout: 5
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        WORK_QUEUE_URL: !Ref WorkQueue
        BUS_NAME: !Ref Bus
        DLQ_ARN: !GetAtt WorkDLQ.Arn
        SUBBED: !Sub "${AWS::Region}/${WorkQueue.QueueName}/${Flavour}"
        CHOSEN: !If [IsPlain, plain-yes, plain-no]
        SERVICE: shared
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: v1
      Auth: {DefaultAuthorizer: AWS_IAM}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: g, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: by_g
          KeySchema: [{AttributeName: g, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
  WorkDLQ:
    Type: AWS::SQS::Queue
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDLQ.Arn
        maxReceiveCount: 2
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: test-bus}
  WorkRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref Bus
      EventPattern: {detail-type: [Work]}
      Targets:
        - {Id: WorkQueue, Arn: !GetAtt WorkQueue.Arn, InputPath: $.detail}
  Topic:
    Type: AWS::SNS::Topic
  TopicToQueue:
    Type: AWS::SNS::Subscription
    Properties:
      TopicArn: !Ref Topic
      Protocol: sqs
      Endpoint: !GetAtt WorkQueue.Arn
      RawMessageDelivery: true
  Unused:
    Type: AWS::SQS::Queue
    Condition: Never
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: echo/
      Environment: {Variables: {SERVICE: echo}}
      Events:
        Get:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/echo/{name}", Method: get}
        Post:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/echo/{name}", Method: post, Auth: {Authorizer: NONE}}
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
  TickFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: tick/
      Events:
        Tick:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: !Sub "rate(${TickMinutes} minute)"
"""

ECHO = """
import base64, json, os

def handler(event, context):
    if event["pathParameters"]["name"] == "boom":
        raise RuntimeError("boom")
    body = {
        "event": event,
        "env": {k: os.environ.get(k) for k in ("TABLE_NAME", "WORK_QUEUE_URL", "BUS_NAME", "DLQ_ARN", "SUBBED", "CHOSEN")},
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }
    if event["pathParameters"]["name"] == "raw":
        return {"statusCode": 200, "headers": {"Content-Type": "text/plain; charset=gb2312"},
                "body": base64.b64encode("好".encode("gb2312")).decode(), "isBase64Encoded": True}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-Echo": "1"}, "body": json.dumps(body)}
"""

WORKER = """
import json, os, boto3

_ddb = None

def handler(event, context):
    global _ddb
    _ddb = _ddb or boto3.client("dynamodb")
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        count = record["attributes"]["ApproximateReceiveCount"]
        _ddb.put_item(TableName=os.environ["TABLE_NAME"], Item={
            "pk": {"S": str(body.get("key"))}, "sk": {"S": count},
            "g": {"S": "seen"}, "source": {"S": record["eventSourceARN"]},
        })
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    if any(json.loads(r["body"]).get("crash") for r in event["Records"]):
        raise RuntimeError("crash: the whole batch comes back")
    return {"batchItemFailures": failures}
"""

TICK = """
import json, os, boto3

def handler(event, context):
    boto3.client("events").put_events(Entries=[{
        "Source": "smsrelay", "DetailType": "Tick", "EventBusName": os.environ["BUS_NAME"],
        "Detail": json.dumps({"event_source": event.get("source")}),
    }])
    return {"ticked": True, "source": event.get("source")}
"""


def write_fake_project(root: Path) -> Path:
    for name, code in (("echo", ECHO), ("worker", WORKER), ("tick", TICK)):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "app.py").write_text(textwrap.dedent(code), encoding="utf-8")
    path = root / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fake_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_project(tmp_path_factory.mktemp("fake-project"))


@pytest.fixture(scope="module")
def fake_stack(fake_template: Path) -> Iterator[LocalStack]:
    # rate(1 minute) x 0.02 = every 1.2 s; no simulators: these tests are about the machinery.
    with LocalStack(template=fake_template, simulators=False, schedule_scale=0.02) as stack:
        yield stack
