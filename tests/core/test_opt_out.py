"""Opt-out: a reply "TD"/"STOP"/... suppresses its sender; later marketing sends to it are
rejected `opted_out`, transactional ones still go; operators list, add and remove numbers."""

from __future__ import annotations

from tests.helpers import reconfigure, wait_until

from .harness import Harness

NUMBER = "+8613800000071"


def _suppressed(env: Harness) -> list[str]:
    status, body = env.api("GET", "/suppressions")
    assert status == 200, body
    return [s["number"] for s in body["suppressions"]]


def test_reply_td_by_push_suppresses_and_later_sends_are_rejected(env: Harness) -> None:
    env.start_callback_server()
    env.simulators["sms57"].inject_inbound("13800000071", " td ")
    wait_until(lambda: NUMBER in _suppressed(env), what="the opt-out to be stored")
    opted = [e["detail"] for e in env.events() if e["detail-type"] == "SMS Opted Out"]
    assert opted and opted[0]["number"] == NUMBER and opted[0]["vendor"] == "sms57"
    assert opted[0]["keyword"] == "TD" and opted[0]["time"]
    assert any(e["detail-type"] == "SMS Received" for e in env.events())  # still published as a reply

    answer = env.send(
        {"recipients": [NUMBER, "+8613800000072"], "content": "【Acme】sale", "vendor": "sms57"}
    )
    assert answer["accepted"] == 1
    assert answer["rejected"] == [{"to": NUMBER, "reason": "opted_out: the recipient opted out", "index": 0}]
    assert [env.message(m)["to"] for m in answer["message_ids"]] == ["+8613800000072"]

    answer = env.send(
        {
            "recipients": [NUMBER],
            "content": "【Acme】code 4711",
            "vendor": "sms57",
            "category": "transactional",
        }
    )
    assert answer["accepted"] == 1 and answer["rejected"] == []


def test_reply_by_poll_with_chinese_keyword_and_ordinary_replies_do_not_suppress(env: Harness) -> None:
    sim = env.simulators["smsadmin"]
    sim.inject_inbound("13800000073", "退订")
    sim.inject_inbound("13800000074", "please stop calling me")  # not the keyword alone
    env.poll()
    assert _suppressed(env) == ["+8613800000073"]


def test_keywords_are_configurable(env: Harness, monkeypatch) -> None:
    reconfigure(monkeypatch, OPT_OUT_KEYWORDS='["N"]')
    sim = env.simulators["smsadmin"]
    sim.inject_inbound("13800000075", "td")
    sim.inject_inbound("13800000076", "n")
    env.poll()
    assert _suppressed(env) == ["+8613800000076"]


def test_api_adds_lists_pages_and_removes(env: Harness) -> None:
    for n in range(5):
        status, body = env.api("PUT", f"/suppressions/1380000010{n}")
        assert status == 201 and body == {"number": f"+861380000010{n}", "suppressed": True}
    status, body = env.api("PUT", "/suppressions/%2B8613800000100")  # again, URL-encoded E.164
    assert status == 200
    status, body = env.api("PUT", "/suppressions/12345")
    assert status == 400 and "number" in body["message"]

    status, first = env.api("GET", "/suppressions", query={"limit": "3"})
    assert status == 200 and len(first["suppressions"]) == 3 and first["next_token"]
    status, second = env.api("GET", "/suppressions", query={"limit": "3", "next_token": first["next_token"]})
    numbers = [s["number"] for s in first["suppressions"] + second["suppressions"]]
    assert numbers == [f"+861380000010{n}" for n in range(5)]
    assert first["suppressions"][0]["source"] == "api"

    answer = env.send({"recipients": ["+8613800000101"], "content": "【Acme】sale", "category": "marketing"})
    assert answer["accepted"] == 0 and answer["rejected"][0]["reason"].startswith("opted_out")

    status, body = env.api("DELETE", "/suppressions/+8613800000101")
    assert status == 200 and body["suppressed"] is False
    status, _ = env.api("DELETE", "/suppressions/+8613800000101")
    assert status == 404
    assert env.send({"recipients": ["+8613800000101"], "content": "【Acme】sale"})["accepted"] == 1
