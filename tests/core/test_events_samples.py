"""events/*.json: every sample is valid JSON, listed in events/README.md, and gives the expected
answer when handed to its real handler on the moto harness (as `sam local invoke -e` would).

Samples carry placeholders (`CALLBACK-TOKEN`, the vendor documents' own credentials): the
helpers here put the harness's token and credentials in, the way a user edits a sample."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qsl

import pytest

from tests.helpers import ACKS, CALLBACK_SAMPLES, EVENTS, PLACEHOLDER_TOKEN, callback_event, load, scan_all

from .harness import VENDORS, Harness

# --------------------------------------------------------------------------- the files


def test_every_sample_is_json_and_listed_in_the_readme() -> None:
    names = sorted(p.name for p in EVENTS.glob("*.json"))
    readme = (EVENTS / "README.md").read_text(encoding="utf-8")
    assert len(names) >= 16
    for name in names:
        data = load(name)
        assert isinstance(data, dict) and data, name
        assert f"`{name}`" in readme, f"{name} is not listed in events/README.md"


def test_api_samples_are_rest_proxy_v1_events() -> None:
    for name in [
        p.name for p in EVENTS.glob("*.json") if p.name.startswith(("api_", "callback_", "send_api"))
    ]:
        event = load(name)
        assert {
            "resource",
            "path",
            "httpMethod",
            "headers",
            "requestContext",
            "body",
            "isBase64Encoded",
        } <= set(event), name
        assert event["requestContext"]["identity"]["sourceIp"], name
        if event["isBase64Encoded"]:
            base64.b64decode(event["body"], validate=True)


def test_smsadmin_samples_are_gb2312_forms_in_base64() -> None:
    event = load("callback_smsadmin_mo.json")
    assert event["isBase64Encoded"] is True
    raw = base64.b64decode(event["body"])
    raw.decode("ascii")  # a urlencoded form: ASCII on the wire
    fields = dict(parse_qsl(raw.decode("ascii"), encoding="gb2312"))
    assert fields["Class"] == "mo" and fields["Message"] == "好的，收到"
    with pytest.raises(UnicodeDecodeError):
        dict(parse_qsl(raw.decode("ascii"), encoding="utf-8", errors="strict"))


# --------------------------------------------------------------------------- send


def test_send_direct_sample_is_the_design_request(env: Harness) -> None:
    request = load("send_direct.json")
    answer = env.invoke("send", request)
    assert answer["accepted"] == 2 and answer["rejected"] == [] and len(answer["message_ids"]) == 2
    assert [env.message(m)["to"] for m in answer["message_ids"]] == ["+8613800000001", "+8613800000002"]
    assert env.request(answer["request_id"])["client_ref"] == "order-42-otp"


@pytest.mark.parametrize("name", ["send_eventbridge.json", "send_sns.json"])
def test_send_envelope_samples_accept_both_recipients(env: Harness, name: str) -> None:
    answer = env.invoke("send", load(name))
    assert answer["accepted"] == 2 and answer["rejected"] == []
    assert {env.message(m)["status"] for m in answer["message_ids"]} == {"queued"}


def test_send_sqs_sample_is_processed_and_stored(env: Harness) -> None:
    result = env.invoke("send", load("send_sqs.json"))
    assert result == {"batchItemFailures": []}
    requests = [i for i in scan_all(env) if i["sk"]["S"] == "R"]
    assert len(requests) == 1
    assert requests[0]["total"]["N"] == "2" and requests[0]["client_ref"]["S"] == "order-43-otp"
    assert requests[0]["c_queued"]["N"] == "2"


def test_send_api_sample_answers_202(env: Harness) -> None:
    answer = env.invoke("send", load("send_api_post_messages.json"))
    assert answer["statusCode"] == 202
    body = json.loads(answer["body"])
    assert body["accepted"] == 2 and len(body["message_ids"]) == 2


# --------------------------------------------------------------------------- dispatch and schedules


def test_dispatch_sample_submits_its_chunk(env: Harness) -> None:
    event = load("dispatch_sqs.json")
    sample = json.loads(event["Records"][0]["body"])
    # The sample's request must exist: send the same recipients, take the chunk send queued off the
    # queue, and point the sample at that request (as a user would with a real id).
    answer = env.send({k: v for k, v in load("send_direct.json").items() if k != "send_at"})
    queued = env.sqs.receive_message(QueueUrl=env.queues["dispatch"], MaxNumberOfMessages=10)["Messages"]
    assert len(queued) == 1
    env.sqs.delete_message(QueueUrl=env.queues["dispatch"], ReceiptHandle=queued[0]["ReceiptHandle"])
    real = json.loads(queued[0]["Body"])
    assert set(sample) <= set(real) and sample["items"] == real["items"]
    body = sample | {"request_id": answer["request_id"], "chunk_id": real["chunk_id"]}
    event["Records"][0]["body"] = json.dumps(body, ensure_ascii=False)
    assert env.invoke("dispatch", event) == {"batchItemFailures": []}
    for message_id in answer["message_ids"]:
        view = env.message(message_id)
        assert view["status"] == "submitted" and view["vendor"] == "sms57" and view["vendor_ref"]
    assert sorted(a.mobile for a in env.simulators["sms57"].accepted) == ["13800000001", "13800000002"]
    # the same record again (an SQS redelivery) sends nothing twice
    assert env.invoke("dispatch", event) == {"batchItemFailures": []}
    assert len(env.simulators["sms57"].accepted) == 2


def test_poll_schedule_sample_polls_every_vendor(env: Harness) -> None:
    summary = env.invoke("poll", load("poll_schedule.json"))
    assert summary["errors"] == {}
    assert set(summary["balances"]) == set(VENDORS)


def test_sweep_schedule_sample_runs(env: Harness) -> None:
    assert env.invoke("sweep", load("sweep_schedule.json")) == {
        "requeued": 0,
        "unknown_dispatch": 0,
        "expired": 0,
        "resumed_requests": 0,
    }


# --------------------------------------------------------------------------- status API


def test_api_samples_404_for_unknown_ids_then_200_after_a_send(env: Harness) -> None:
    get_message, get_request = load("api_get_message.json"), load("api_get_request.json")
    for event in (get_message, get_request):
        answer = env.invoke("api", event)
        assert answer["statusCode"] == 404, answer
    sent = env.invoke("send", load("send_direct.json"))
    message_id, request_id = sent["message_ids"][0], sent["request_id"]
    get_message["pathParameters"] = {"message_id": message_id}
    get_message["path"] = f"/messages/{message_id}"
    get_request["pathParameters"] = {"request_id": request_id}
    get_request["path"] = f"/requests/{request_id}"
    message = env.invoke("api", get_message)
    assert message["statusCode"] == 200
    assert json.loads(message["body"])["to"] == "+8613800000001"
    request = env.invoke("api", get_request)
    assert request["statusCode"] == 200
    body = json.loads(request["body"])
    assert body["total"] == 2 and body["counts"]["queued"] == 2 and len(body["messages"]) == 2


# --------------------------------------------------------------------------- vendor pushes


@pytest.mark.parametrize("sample", list(CALLBACK_SAMPLES))
def test_callback_samples_get_the_exact_vendor_ack(env: Harness, sample: str) -> None:
    vendor = CALLBACK_SAMPLES[sample]
    raw = load(sample)
    assert raw["pathParameters"] == {"token": PLACEHOLDER_TOKEN}
    # as shipped (placeholder token): refused
    assert env.invoke(f"callback_{vendor}", raw)["statusCode"] == 403
    answer = env.invoke(f"callback_{vendor}", callback_event(env, vendor, sample))
    body, content_type = ACKS[vendor]
    assert answer["statusCode"] == 200 and answer["body"] == body
    assert answer["headers"]["Content-Type"] == content_type


def test_sms57_sample_stores_its_reply_and_keeps_its_report(env: Harness) -> None:
    env.invoke("callback_sms57", callback_event(env, "sms57"))
    received = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Received"]
    assert received == [
        {
            "vendor": "sms57",
            "from": "+8618983437010",
            "to": "10690",
            "content": "上行内容",
            "time": "2017-04-11T17:38:21.000Z",  # UTC, like every event time
            "vendor_time": "2017-04-12T01:38:21+08:00",  # as the vendor wrote it (China time)
        }
    ]
    early = [i for i in scan_all(env) if i["pk"]["S"].startswith("E#")]
    assert [i["pk"]["S"] for i in early] == ["E#sms57#4C36654382720006#+8618983437011"]


def test_smsadmin_mo_sample_is_read_as_gb2312(env: Harness) -> None:
    env.invoke("callback_smsadmin", callback_event(env, "smsadmin", "callback_smsadmin_mo.json"))
    (received,) = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Received"]
    assert received["content"] == "好的，收到" and received["from"] == "+8613802102102"
