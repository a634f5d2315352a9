"""Create the template's AWS resources in moto: tables, queues, buses, rules, topics, secrets.

EventBridge rule targets are not handed to moto as they are: moto ignores `InputPath` (it would
put the whole event on the queue). Every target instead points at an internal relay queue, and
`EventRelay` (sqs.py) applies InputPath / Input / InputTransformer and delivers to the real target.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from .template import Template

log = logging.getLogger("smsrelay.local")

_QUEUE_ATTRS = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
    "ReceiveMessageWaitTimeSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
)


@dataclass(frozen=True)
class RuleTarget:
    """One EventBridge rule target, reached through its relay queue."""

    rule_id: str
    target_id: str
    arn: str
    relay_queue_url: str
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    message_group_id: str | None = None


@dataclass(frozen=True)
class QueueInfo:
    logical_id: str
    name: str
    url: str
    arn: str
    visibility_timeout: int


class ResourceBuilder:
    def __init__(self, template: Template, clients: Any) -> None:
        self.t = template
        self.clients = clients  # callable: service -> boto3 client
        self.queues: dict[str, QueueInfo] = {}  # by ARN
        self.buses: list[str] = []
        self.rule_targets: list[RuleTarget] = []
        self.skipped: list[str] = []

    def create_all(self) -> None:
        self._secrets()
        self.create_buckets()
        self.create_tables()
        self._queues()
        self._buses()
        self._topics()
        self._rules()
        handled = {
            "AWS::SecretsManager::Secret",
            "AWS::DynamoDB::Table",
            "AWS::SQS::Queue",
            "AWS::Events::EventBus",
            "AWS::Events::Rule",
            "AWS::SNS::Topic",
            "AWS::SNS::Subscription",
            "AWS::Serverless::Function",
            "AWS::Serverless::Api",
            "AWS::Serverless::LayerVersion",
            "AWS::S3::Bucket",
        }
        # Policies, alarms, log groups: nothing to emulate, listed for --verbose output.
        self.skipped = sorted(
            f"{lid} ({res['Type']})" for lid, res in self.t.resources.items() if res["Type"] not in handled
        )

    # ------------------------------------------------------------------ per resource type
    def _secrets(self) -> None:
        sm = self.clients("secretsmanager")
        for lid in self.t.of_type("AWS::SecretsManager::Secret"):
            props = self.t.resolve(self.t.props(lid))
            args: dict[str, Any] = {"Name": self.t.name_of(lid)}
            if "SecretString" in props:
                args["SecretString"] = props["SecretString"]
            if "Description" in props:
                args["Description"] = props["Description"]
            arn = sm.create_secret(**args)["ARN"]
            self.t.physical[lid] = {"Ref": arn, "Id": arn}

    def create_buckets(self) -> None:
        """Buckets, with their EventBridge notifications (uploads reach the rules like on AWS)."""
        s3 = self.clients("s3")
        for lid in self.t.of_type("AWS::S3::Bucket"):
            props = self.t.resolve(self.t.props(lid))
            name = self.t.name_of(lid)
            s3.create_bucket(Bucket=name)
            notifications = props.get("NotificationConfiguration") or {}
            if (notifications.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (
                True,
                "true",
            ):
                s3.put_bucket_notification_configuration(
                    Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )

    def create_tables(self) -> None:
        """The tables (public: the in-process test harness makes only these and the buckets)."""
        ddb = self.clients("dynamodb")
        for lid in self.t.of_type("AWS::DynamoDB::Table"):
            props = self.t.resolve(self.t.props(lid))
            name = self.t.name_of(lid)
            on_demand = props.get("BillingMode", "PROVISIONED") == "PAY_PER_REQUEST"
            args: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST" if on_demand else "PROVISIONED",
            }
            if not on_demand:
                args["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
            for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if props.get(kind):
                    indexes = []
                    for index in props[kind]:
                        index = {
                            k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")
                        }
                        if kind == "GlobalSecondaryIndexes" and not on_demand:
                            index["ProvisionedThroughput"] = _throughput(None)
                        indexes.append(index)
                    args[kind] = indexes
            if props.get("StreamSpecification"):
                args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            ddb.create_table(**args)
            ttl = props.get("TimeToLiveSpecification")
            if ttl and str(ttl.get("Enabled")).lower() == "true":
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )

    def _queues(self) -> None:
        sqs = self.clients("sqs")
        ids = self.t.of_type("AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy must name an existing queue.
        ids.sort(key=lambda lid: "RedrivePolicy" in self.t.props(lid))
        for lid in ids:
            props = self.t.resolve(self.t.props(lid))
            attrs = {k: _attr(props[k]) for k in _QUEUE_ATTRS if k in props}
            if "RedrivePolicy" in props:
                attrs["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            name = self.t.name_of(lid)
            url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            arn = self.t.attribute(lid, "Arn")
            self.t.physical[lid] = {"Ref": url, "QueueUrl": url, "Arn": arn, "QueueName": name}
            self.queues[arn] = QueueInfo(lid, name, url, arn, int(props.get("VisibilityTimeout", 30)))

    def _buses(self) -> None:
        events = self.clients("events")
        for lid in self.t.of_type("AWS::Events::EventBus"):
            name = self.t.name_of(lid)
            if name != "default":
                events.create_event_bus(Name=name)
            self.buses.append(name)

    def _topics(self) -> None:
        sns = self.clients("sns")
        for lid in self.t.of_type("AWS::SNS::Topic"):
            props = self.t.resolve(self.t.props(lid))
            arn = sns.create_topic(Name=self.t.name_of(lid))["TopicArn"]
            self.t.physical[lid] = {"Ref": arn, "TopicArn": arn, "TopicName": self.t.name_of(lid)}
            for sub in props.get("Subscription", []) or []:
                self._subscribe(arn, sub["Protocol"], sub["Endpoint"], {})
        for lid in self.t.of_type("AWS::SNS::Subscription"):
            props = self.t.resolve(self.t.props(lid))
            attrs = {}
            if "RawMessageDelivery" in props:
                attrs["RawMessageDelivery"] = _attr(props["RawMessageDelivery"])
            if "FilterPolicy" in props:
                attrs["FilterPolicy"] = json.dumps(props["FilterPolicy"])
            self._subscribe(props["TopicArn"], props["Protocol"], props.get("Endpoint", ""), attrs)

    def _subscribe(self, topic_arn: str, protocol: str, endpoint: str, attrs: dict[str, str]) -> None:
        if protocol != "sqs":  # e-mail and the like: nothing to deliver to locally
            log.info("SNS subscription %s -> %s not emulated", protocol, endpoint)
            return
        self.clients("sns").subscribe(
            TopicArn=topic_arn, Protocol=protocol, Endpoint=endpoint, Attributes=attrs
        )

    def _rules(self) -> None:
        events, sqs = self.clients("events"), self.clients("sqs")
        for lid in self.t.of_type("AWS::Events::Rule"):
            props = self.t.resolve(self.t.props(lid))
            if "EventPattern" not in props or str(props.get("State", "ENABLED")).upper() == "DISABLED":
                log.info("rule %s not emulated (scheduled or disabled)", lid)
                continue
            bus = self.t.bus_name(props.get("EventBusName", "default"))
            name = self.t.name_of(lid)
            events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]))
            targets = []
            for target in props.get("Targets", []):
                relay_name = f"local-relay-{lid}-{target['Id']}"[:80]
                relay_url = sqs.create_queue(QueueName=relay_name)["QueueUrl"]
                relay_arn = sqs.get_queue_attributes(QueueUrl=relay_url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                targets.append({"Id": target["Id"], "Arn": relay_arn})
                self.rule_targets.append(
                    RuleTarget(
                        rule_id=lid,
                        target_id=target["Id"],
                        arn=target["Arn"],
                        relay_queue_url=relay_url,
                        input=target.get("Input"),
                        input_path=target.get("InputPath"),
                        input_transformer=target.get("InputTransformer"),
                        message_group_id=(target.get("SqsParameters") or {}).get("MessageGroupId"),
                    )
                )
            if targets:
                events.put_targets(Rule=name, EventBusName=bus, Targets=targets)


def _attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _throughput(value: dict[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }
