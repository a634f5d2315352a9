"""The local stack's fixes to moto keep DynamoDB's, SQS's and EventBridge's behaviour: what the
functions see is the same, only faster."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from smsrelay_local import moto_patches


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    moto_patches.apply()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        yield {
            "ddb": ddb,
            "sqs": boto3.client("sqs", region_name="us-east-1"),
            "events": boto3.client("events", region_name="us-east-1"),
        }


def _update(key: str, status: str, old: str, expression: str | None = None) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": "t",
            "Key": {"pk": {"S": key}, "sk": {"S": "M"}},
            "UpdateExpression": expression or "SET #s = :new, history = list_append(history, :h)",
            "ConditionExpression": "#s = :old",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":new": {"S": status},
                ":old": {"S": old},
                ":h": {"L": [{"S": status}]},
            },
        }
    }


def _item(ddb: Any, key: str) -> dict[str, Any]:
    return ddb.get_item(TableName="t", Key={"pk": {"S": key}, "sk": {"S": "M"}})["Item"]


def test_a_transaction_moves_all_or_nothing_and_names_the_failed_condition(aws: dict[str, Any]) -> None:
    ddb = aws["ddb"]
    for key in ("a", "b"):
        ddb.put_item(
            TableName="t",
            Item={"pk": {"S": key}, "sk": {"S": "M"}, "status": {"S": "queued"}, "history": {"L": []}},
        )
    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(
            TransactItems=[_update("a", "submitted", "queued"), _update("b", "submitted", "sent")]
        )
    reasons = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert _item(ddb, "a")["status"] == {"S": "queued"}  # nothing moved
    ddb.transact_write_items(
        TransactItems=[_update("a", "submitted", "queued"), _update("b", "submitted", "queued")]
    )
    assert _item(ddb, "a")["history"] == {"L": [{"S": "submitted"}]}
    assert _item(ddb, "b")["status"] == {"S": "submitted"}


def test_an_invalid_update_expression_is_refused_every_time(aws: dict[str, Any]) -> None:
    ddb = aws["ddb"]
    ddb.put_item(
        TableName="t",
        Item={"pk": {"S": "a"}, "sk": {"S": "M"}, "status": {"S": "queued"}, "history": {"L": []}},
    )
    overlapping = "SET #s = :new, #s = :old"
    for _ in range(2):  # the checks are skipped only for an expression that once passed them
        with pytest.raises(ClientError):
            ddb.transact_write_items(TransactItems=[_update("a", "submitted", "queued", overlapping)])
    assert _item(ddb, "a")["status"] == {"S": "queued"}
    key_change = "SET pk = :new"
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=[_update("a", "submitted", "queued", key_change)])


def test_sqs_counts_still_count_while_sends_skip_them(aws: dict[str, Any]) -> None:
    sqs = aws["sqs"]
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    for i in range(30):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == (
        "20",
        "10",
    )
    assert len(got) == 10


def test_eventbridge_input_transformer_still_applies(aws: dict[str, Any]) -> None:
    sqs, events = aws["sqs"], aws["events"]
    url = sqs.create_queue(QueueName="target")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["smsrelay"]}))
    events.put_targets(
        Rule="r",
        Targets=[
            {
                "Id": "t",
                "Arn": arn,
                "InputTransformer": {
                    "InputPathsMap": {"s": "$.detail.status"},
                    "InputTemplate": '{"status": "<s>"}',
                },
            }
        ],
    )
    for status in ("submitted", "delivered"):  # the second event reuses the cached path
        events.put_events(
            Entries=[{"Source": "smsrelay", "DetailType": "x", "Detail": json.dumps({"status": status})}]
        )
    bodies = [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert sorted(b["status"] for b in bodies) == ["delivered", "submitted"]


def test_item_answers_written_directly_are_what_the_model_driven_serializer_writes(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every item operation, on every attribute type, answers byte for byte the same JSON as
    moto's own serializer (both run on each answer here)."""
    from moto.dynamodb.responses import DynamoResult

    seen: list[str] = []
    fast = DynamoResult.execute_result

    def both(self: Any, context: Any) -> Any:
        ours = fast(self, context)
        theirs = DynamoResult.model_driven_execute_result(self, context)  # type: ignore[attr-defined]
        name = str(context.operation_model.name)
        assert ours[0] == theirs[0] and ours[1]["Content-Type"] == theirs[1]["Content-Type"], name
        assert json.loads(ours[2]) == json.loads(theirs[2]), name
        seen.append(name)
        return ours

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    ddb = aws["ddb"]
    every_type = {
        "s": {"S": "好"},
        "n": {"N": "12.50"},
        "b": {"B": b"\x00\xffbytes"},
        "bs": {"BS": [b"a", b"\x01"]},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2.5"]},
        "l": {"L": [{"S": "a"}, {"N": "1"}, {"NULL": True}, {"B": b"z"}]},
        "m": {"M": {"inner": {"BOOL": False}, "deep": {"M": {"b": {"B": b"q"}}}}},
        "t": {"BOOL": True},
        "z": {"NULL": True},
    }
    keys = [{"pk": {"S": "p"}, "sk": {"S": f"{n}"}} for n in range(3)]
    for key in keys:
        ddb.put_item(TableName="t", Item={**key, **every_type})
    ddb.put_item(TableName="t", Item={**keys[0], **every_type}, ReturnValues="ALL_OLD")
    ddb.get_item(TableName="t", Key=keys[0], ReturnConsumedCapacity="TOTAL")
    ddb.get_item(TableName="t", Key={"pk": {"S": "none"}, "sk": {"S": "0"}})
    ddb.get_item(TableName="t", Key=keys[1], ProjectionExpression="b, l[3], m.deep")
    for returns in ("NONE", "ALL_NEW", "UPDATED_OLD"):
        ddb.update_item(
            TableName="t",
            Key=keys[2],
            UpdateExpression="SET n = n + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues=returns,
        )
    ddb.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        Limit=2,
        ReturnConsumedCapacity="INDEXES",
    )
    ddb.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    ddb.scan(TableName="t", Select="COUNT")
    ddb.scan(TableName="t", FilterExpression="attribute_exists(bs)")
    ddb.batch_get_item(RequestItems={"t": {"Keys": [*keys, {"pk": {"S": "none"}, "sk": {"S": "0"}}]}})
    ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": k}} for k in keys])
    ddb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"pk": {"S": "q"}, "sk": {"S": "0"}}}}]})
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": "t", "Item": {"pk": {"S": "q"}, "sk": {"S": "1"}}}}]
    )
    ddb.delete_item(TableName="t", Key=keys[0], ReturnValues="ALL_OLD")
    assert set(seen) == moto_patches.ITEM_OPERATIONS
