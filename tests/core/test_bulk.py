"""Bulk files: `recipients_file` (CSV with a header, JSON Lines), {{column}} placeholders filled
per row, bad rows rejected with their line, uploads under `bulk/` that start a send, and a
reading job that pauses and resumes without sending anybody twice."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.helpers import accepted_numbers, assert_promises, reconfigure, settle

from .harness import Harness


def upload(env: Harness, key: str, data: bytes, metadata: dict | None = None) -> str:
    env.s3.put_object(Bucket=env.bucket, Key=key, Body=data, Metadata=metadata or {})
    return f"s3://{env.bucket}/{key}"


def s3_event(bucket: str, key: str) -> str:
    """S3's EventBridge "Object Created" event, as the stack's BulkUploadRule delivers it."""
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "123456789012",
            "time": "2026-12-02T08:00:00Z",
            "region": "us-east-1",
            "resources": [f"arn:aws:s3:::{bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": bucket},
                "object": {"key": key, "size": 1, "etag": "x", "sequencer": "1"},
                "request-id": "R",
                "requester": "123456789012",
                "reason": "PutObject",
            },
        }
    )


def deliver_upload_event(env: Harness, key: str) -> None:
    env.sqs.send_message(QueueUrl=env.queues["send"], MessageBody=s3_event(env.bucket, key))


def texts(env: Harness, vendor: str = "sms57") -> dict[str, str]:
    return {a.mobile: a.content for a in env.simulators[vendor].accepted}


def request(env: Harness, request_id: str) -> dict:
    return env.request(request_id, limit="1000")


def rejections(env: Harness, request_id: str) -> list[dict]:
    status, page = env.api("GET", f"/requests/{request_id}/rejections", query={"limit": "1000"})
    assert status == 200, page
    return page["rejected"]


CSV = (
    b"to,name,code\n"
    b"13800000001,Ann,1111\n"
    b"+8613800000002,Bob,2222\n"
    b"12345,Eve,3333\n"  # not a phone number
    b"13800000003,,4444\n"  # no name
    b"13800000001,Ann,1111\n"  # the same message again: dropped
    b"13800000004,Dan\n"  # a field missing
    b'13800000005,"Lee, Jr.",5555\n'
)


def test_a_csv_file_sends_each_row_its_own_text_and_rejects_bad_rows_by_line(env: Harness) -> None:
    uri = upload(env, "lists/codes.csv", CSV)
    answer = env.send(
        {"recipients_file": uri, "content": "【Acme】{{name}}, your code is {{ code }}", "vendor": "sms57"}
    )
    assert answer["state"] == "accepting"
    settle(env)
    view = request(env, answer["request_id"])
    assert view["state"] == "accepted" and view["total"] == 3 and view["rejected_count"] == 3
    assert texts(env) == {
        "13800000001": "【Acme】Ann, your code is 1111",
        "13800000002": "【Acme】Bob, your code is 2222",
        "13800000005": "【Acme】Lee, Jr., your code is 5555",
    }
    refused = rejections(env, answer["request_id"])
    assert [(r["row"], r["to"]) for r in refused] == [(4, "12345"), (5, "13800000003"), (7, "13800000004")]
    assert refused[0]["reason"].startswith("invalid_number")
    assert refused[1]["reason"] == "invalid_row: line 5: no value for {{name}}"
    assert refused[2]["reason"] == "invalid_row: line 7: 2 fields where the header has 3"
    assert_promises(env, answer["request_id"])


def test_a_json_lines_file_and_a_gb18030_csv_export(env: Harness) -> None:
    lines = b'{"to": "13800000011", "name": "\xe5\xbc\xa0\xe4\xb8\x89"}\nnot json\n{"name": "x"}\n'
    uri = upload(env, "lists/people.jsonl", lines)
    first = env.send({"recipients_file": uri, "content": "【Acme】{{name}}您好", "vendor": "sms57"})
    gbk = "to,name\n13800000012,李四\n".encode("gb18030")
    uri = upload(env, "lists/export.csv", gbk)
    second = env.send({"recipients_file": uri, "content": "【Acme】{{name}}您好", "vendor": "sms57"})
    settle(env)
    assert texts(env) == {"13800000011": "【Acme】张三您好", "13800000012": "【Acme】李四您好"}
    assert [(r["row"], r["reason"]) for r in rejections(env, first["request_id"])] == [
        (2, "invalid_row: line 2: not a JSON object"),
        (3, "invalid_row: line 3: no `to` value"),
    ]
    assert request(env, second["request_id"])["total"] == 1


@pytest.mark.parametrize(
    ("data", "content", "error"),
    [
        (b"phone,name\n13800000001,Ann\n", "【Acme】hi", "the header has no `to` column"),
        (b"to,name\n13800000001,Ann\n", "【Acme】{{name}} {{code}}", "`content` uses {{code}}"),
        (b"", "【Acme】hi", "the recipients file is empty"),
    ],
)
def test_a_file_that_cannot_be_read_at_all_refuses_the_request_and_says_why(
    env: Harness, data: bytes, content: str, error: str
) -> None:
    uri = upload(env, "lists/bad.csv", data)
    answer = env.send({"recipients_file": uri, "content": content, "vendor": "sms57"})
    settle(env)
    view = request(env, answer["request_id"])
    assert view["state"] == "refused" and error in view["error"] and view["total"] == 0
    (event,) = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Request Accepted"]
    assert event["state"] == "refused" and error in event["error"]
    assert env.simulators["sms57"].accepted == []


def test_a_missing_file_is_a_400_naming_the_field(env: Harness) -> None:
    body = json.dumps({"recipients_file": f"s3://{env.bucket}/nope.csv", "content": "【Acme】hi"})
    status, answer = env.api("POST", "/messages", body=body)
    assert status == 400 and answer["errors"][0]["field"] == "recipients_file"
    assert "does not exist" in answer["errors"][0]["error"]


def test_an_upload_with_a_sidecar_starts_one_send_whichever_half_comes_first(env: Harness) -> None:
    fields = json.dumps({"content": "【Acme】{{name}}, sale today", "vendor": "sms57"}).encode()
    upload(env, "bulk/sale.csv.request.json", fields)
    deliver_upload_event(env, "bulk/sale.csv.request.json")  # the sidecar first: waits for the file
    settle(env)
    assert request_ids(env) == []
    upload(env, "bulk/sale.csv", b"to,name\n13800000021,Ann\n13800000022,Bob\n")
    deliver_upload_event(env, "bulk/sale.csv")
    deliver_upload_event(env, "bulk/sale.csv")  # EventBridge delivers an event twice at times
    deliver_upload_event(env, "bulk/sale.csv.request.json")  # and the sidecar's event comes late
    settle(env)
    assert len(request_ids(env)) == 1
    assert texts(env) == {"13800000021": "【Acme】Ann, sale today", "13800000022": "【Acme】Bob, sale today"}


def test_an_upload_with_its_request_in_the_object_metadata(env: Harness) -> None:
    fields = json.dumps({"content": "【Acme】hi", "vendor": "sms57", "client_ref": "campaign-7"})
    upload(env, "bulk/list.jsonl", b'{"to": "13800000031"}\n', {"smsrelay-request": fields})
    deliver_upload_event(env, "bulk/list.jsonl")
    settle(env)
    assert texts(env) == {"13800000031": "【Acme】hi"}
    (request_id,) = request_ids(env)
    assert request(env, request_id)["client_ref"] == "campaign-7"


def request_ids(env: Harness) -> list[str]:
    items = env.ddb.scan(
        TableName=env.table, FilterExpression="sk = :r", ExpressionAttributeValues={":r": {"S": "R"}}
    )["Items"]
    return [i["request_id"]["S"] for i in items]


@pytest.mark.slow
def test_a_reading_job_that_runs_out_of_time_resumes_where_it_stopped(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every invocation of the reading job pauses after one part (its deadline is near): the
    cursor and the duplicate check so far are kept, the next invocation goes on from there. A
    number repeated across pauses is still sent once; every other row once."""
    from smsrelay.service import accept

    monkeypatch.setattr(accept, "JOB_MARGIN_S", 10**6)  # always near the end
    reconfigure(monkeypatch, PART_SIZE="4")
    rows = [f"1390000{n:04d}" for n in range(30)] + ["13900000003"]  # the last repeats row 3
    uri = upload(env, "lists/long.csv", ("to\n" + "\n".join(rows) + "\n").encode())
    answer = env.send({"recipients_file": uri, "content": "【Acme】hi", "vendor": "sms57"})
    invocations = 0
    while env.drain("send", "send", max_rounds=1):
        invocations += 1
    assert invocations >= 8  # eight parts, a pause after each
    view = request(env, answer["request_id"])
    assert view["state"] == "accepted" and view["total"] == 30 and view["rejected_count"] == 0
    settle(env)
    got = accepted_numbers(env)
    assert len(got) == 30 and set(got.values()) == {1}
    assert_promises(env, answer["request_id"])


def test_a_file_changed_while_it_is_read_is_refused_not_half_sent(env: Harness) -> None:
    uri = upload(env, "lists/moving.csv", b"to\n13800000041\n")
    answer = env.send({"recipients_file": uri, "content": "【Acme】hi", "vendor": "sms57"})
    upload(env, "lists/moving.csv", b"to\n13800000042\n")  # replaced before the job reads it
    settle(env)
    view = request(env, answer["request_id"])
    assert view["state"] == "refused" and "changed while it was being read" in view["error"]
    assert env.simulators["sms57"].accepted == []
