"""`send`: one code path for every entry point; numbers, routing, idempotency, fan-out."""

from __future__ import annotations

import json

import pytest

from tests.helpers import reconfigure, vendor_settings

from .harness import Harness

REQUEST = {
    "recipients": ["+8613800000001", "13800000002", "13800000002", "12345"],
    "content": "【Acme】hello",
}


def test_direct_invoke_normalises_rejects_and_drops_duplicates(env: Harness) -> None:
    answer = env.send(REQUEST)
    assert answer["accepted"] == 2
    assert [r["to"] for r in answer["rejected"]] == ["12345"]
    assert answer["rejected"][0]["reason"].startswith("invalid_number")
    assert [env.message(m)["to"] for m in answer["message_ids"]] == ["+8613800000001", "+8613800000002"]
    view = env.request(answer["request_id"])
    assert view["total"] == 2 and view["counts"]["queued"] == 2 and view["counts"]["invalid"] == 1


def test_api_post_messages_answers_202_and_field_errors_400(env: Harness) -> None:
    status, body = env.api("POST", "/messages", body=json.dumps(REQUEST))
    assert status == 202 and body["accepted"] == 2
    status, body = env.api("POST", "/messages", body=json.dumps({"recipients": ["+8613800000001"]}))
    assert status == 400
    assert "content" in body["errors"][0]["error"]
    status, body = env.api("POST", "/messages", body=json.dumps({"recipients": "x", "content": "hi"}))
    assert status == 400 and body["errors"][0]["field"] == "recipients"
    status, body = env.api("POST", "/messages", body="not json")
    assert status == 400 and body["errors"][0]["field"] == "(body)"
    status, body = env.api("POST", "/messages", body=json.dumps(REQUEST | {"vendor": "nope"}))
    assert status == 400 and body["errors"][0]["field"] == "vendor"


def _sqs_event(env: Harness, bodies: list[str]) -> dict:
    return {
        "Records": [
            env.sqs_record({"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": body}, "send")
            for n, body in enumerate(bodies)
        ]
    }


def test_sqs_eventbridge_and_sns_bodies_take_the_same_path(env: Harness) -> None:
    plain = json.dumps(REQUEST | {"client_ref": "sqs"})
    eventbridge = json.dumps(
        {"detail-type": "Send SMS", "source": "orders", "detail": REQUEST | {"client_ref": "eb"}}
    )
    sns = json.dumps({"Type": "Notification", "Message": json.dumps(REQUEST | {"client_ref": "sns"})})
    result = env.invoke("send", _sqs_event(env, [plain, eventbridge, sns, '{"content": 1}']))
    assert result["batchItemFailures"] == [
        {"itemIdentifier": "m3"}
    ]  # the malformed one goes back, then to the DLQ
    scanned = env.ddb.scan(
        TableName=env.table, FilterExpression="sk = :r", ExpressionAttributeValues={":r": {"S": "R"}}
    )
    assert sorted(i["client_ref"]["S"] for i in scanned["Items"]) == ["eb", "sns", "sqs"]


def test_eventbridge_and_sns_events_invoked_directly(env: Harness) -> None:
    answer = env.send({"detail-type": "Send SMS", "source": "orders", "detail": REQUEST})
    assert answer["accepted"] == 2
    answer = env.send({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(REQUEST)}}]})
    assert answer["accepted"] == 2


def test_repeated_client_ref_sends_nothing_again(env: Harness) -> None:
    first = env.send(REQUEST | {"client_ref": "order-42-otp"})
    second = env.send(REQUEST | {"client_ref": "order-42-otp"})
    assert second == first
    env.run_all()
    assert len(env.simulators["sms57"].accepted) == 2


def test_personalised_messages_use_native_batches(env: Harness) -> None:
    answer = env.send(
        {
            "messages": [
                {"to": "+8613800000001", "content": "【Acme】hi Ann"},
                {"to": "+8613800000002", "content": "【Acme】hi Bob"},
            ],
            "vendor": "sms57",
        }
    )
    env.run_all()
    sent = {a.mobile: a.content for a in env.simulators["sms57"].accepted}
    assert sent == {"13800000001": "【Acme】hi Ann", "13800000002": "【Acme】hi Bob"}
    assert [env.message(m)["status"] for m in answer["message_ids"]] == ["submitted", "submitted"]


def test_routing_rules_pick_vendor_by_country_prefix(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ROUTING_RULES",
        json.dumps(
            [{"prefix": "+86", "vendors": ["kxt3", "sms57"]}, {"prefix": "+65", "vendors": ["santo"]}]
        ),
    )
    import sys

    sys.modules.pop("smsrelay_fn_send", None)  # a cold start with the new rules
    answer = env.send({"recipients": ["+8613800000001", "+6591234567"], "content": "【Acme】hi"})
    assert [env.message(m)["vendor"] for m in answer["message_ids"]] == ["kxt3", "santo"]


@pytest.mark.slow
def test_a_big_request_is_taken_in_after_the_answer_with_exactly_the_expected_calls(
    env: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the synchronous limit the answer comes first (`accepting`); the rows are read into
    parts, each part stored and counted once, each chunk sent once: 600 numbers in parts of 200
    to a vendor taking 100 a call are six calls, nothing more. (The same arithmetic at 100,000
    recipients is `make bench`'s fan-out.)"""
    reconfigure(monkeypatch, PART_SIZE="200", SYNC_ACCEPT_LIMIT="100")
    vendor_settings(env, {"sms57": {"max_batch": 100}})
    # ending in 1: none of the simulator's test endings (4040, 4220, 5030, 5040, 0000)
    recipients = [f"+86139{n:07d}1" for n in range(600)]
    answer = env.send({"recipients": recipients, "content": "【Acme】sale", "vendor": "sms57"})
    assert answer["state"] == "accepting" and answer["accepted"] == 0
    env.drain("send", "send")
    view = env.request(answer["request_id"], limit="1000")
    assert view["state"] == "accepted" and view["total"] == 600 and view["counts"]["queued"] == 600
    accepted = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Request Accepted"]
    assert accepted == [
        {
            "request_id": answer["request_id"],
            "client_ref": None,
            "state": "accepted",
            "accepted": 600,
            "rejected_count": 0,
            "error": None,
            "time": accepted[0]["time"],
        }
    ]
    env.drain("dispatch", "dispatch", max_rounds=1000)
    sim = env.simulators["sms57"]
    sends = [r for r in sim.requests if r["path"] == "/sms" and b"action=send" in (r.get("body") or b"")]
    assert len(sends) == 6  # 3 parts of 200, each 2 calls of 100
    assert len(sim.accepted) == 600 and len({a.mobile for a in sim.accepted}) == 600
    view = env.request(answer["request_id"], limit="250")
    assert view["counts"]["submitted"] == 600 and view["counts"]["queued"] == 0
    assert len(view["messages"]) == 250 and view["next_token"]


def test_answer_counts_segments_and_estimates_cost(env: Harness) -> None:
    env.write_vendor_settings({"sms57": {"price_per_segment": "0.045"}})
    import os

    os.environ["VENDOR_SETTINGS_FILE"] = str(env.tmp_path / "vendors.json")
    long_text = "【Acme】" + "好" * 70  # 76 UCS-2 units: two segments
    answer = env.send(
        {"recipients": ["+8613800000001", "+8613800000002"], "content": long_text, "vendor": "sms57"}
    )
    assert answer["segments"] == 4
    assert answer["estimated_cost"] == {"sms57": "0.180"}
    assert env.message(answer["message_ids"][0])["segments"] == 2


def test_too_long_text_is_refused_before_any_call(env: Harness) -> None:
    answer = env.send({"recipients": ["+8613800000001"], "content": "x" * 1001, "vendor": "kxt3"})
    assert answer["accepted"] == 0
    assert answer["rejected"][0]["reason"].startswith(
        "content_too_long: 1001 characters, kxt3 takes at most 1000"
    )
    env.run_all()
    assert env.simulators["kxt3"].accepted == []


def test_queue_messages_are_packed_up_to_the_batch_payload_limit(env: Harness) -> None:
    """Three ~85 KB parts go in one SendMessageBatch (256 KiB of bodies in all, the bound we keep);
    a fourth needs a second call, and every message arrives."""
    from smsrelay.service.common import send_batches

    bodies = ["x" * 87_000] * 4
    assert send_batches(env.queues["dispatch"], bodies[:3]) == 1
    assert send_batches(env.queues["dispatch"], bodies) == 2
    got = 0
    while answer := env.sqs.receive_message(QueueUrl=env.queues["dispatch"], MaxNumberOfMessages=10).get(
        "Messages"
    ):
        got += len(answer)
        for m in answer:
            env.sqs.delete_message(QueueUrl=env.queues["dispatch"], ReceiptHandle=m["ReceiptHandle"])
    assert got == 7
