"""Status API: GET /messages/{id} (with history) and GET /requests/{id} (counters and pages),
read through the real api handler on the moto harness."""

from __future__ import annotations

import collections
import datetime as dt

import pytest

from tests.helpers import STATUSES

from .harness import Harness


def all_pages(env: Harness, request_id: str, **query: str) -> tuple[list[dict], list[dict]]:
    """Every message of a request, following next_token; and each page's body."""
    messages: list[dict] = []
    pages: list[dict] = []
    token: str | None = None
    while True:
        params = dict(query) | ({"next_token": token} if token else {})
        page = env.request(request_id, **params)
        pages.append(page)
        messages.extend(page["messages"])
        token = page["next_token"]
        if not token:
            return messages, pages
        assert len(pages) < 1000, "paging does not end"


def test_message_with_its_history(env: Harness) -> None:
    env.start_callback_server()
    answer = env.send(
        {
            "recipients": ["+8613800000001", "+8613800004040"],
            "content": "【Acme】Your code is 4711",
            "vendor": "sms57",
            "client_ref": "order-42-otp",
        }
    )

    def settled() -> bool:
        return all(env.message(m)["status"] in ("delivered", "undelivered") for m in answer["message_ids"])

    env.run_all(settle=settled)
    first, second = (env.message(m) for m in answer["message_ids"])
    assert first["message_id"] == answer["message_ids"][0] and first["request_id"] == answer["request_id"]
    assert (first["to"], first["vendor"], first["status"], first["client_ref"]) == (
        "+8613800000001",
        "sms57",
        "delivered",
        "order-42-otp",
    )
    assert first["vendor_ref"] and first["code"] == "DELIVRD"
    history = first["history"]
    assert [h["status"] for h in history] == ["queued", "submitted", "delivered"]
    # each step keeps its time (a report's is the vendor's own, to the second)
    assert all(dt.datetime.fromisoformat(h["at"]).tzinfo for h in history)
    assert history[1]["vendor"] == "sms57" and history[2]["code"] == "DELIVRD"
    assert second["status"] == "undelivered" and second["code"] and second["code"] != "DELIVRD"
    assert [h["status"] for h in second["history"]] == ["queued", "submitted", "undelivered"]
    assert second["history"][-1]["code"] == second["code"]


def test_unknown_or_malformed_ids_are_404(env: Harness) -> None:
    request_id = env.send({"recipients": ["+8613800000001"], "content": "【Acme】hi"})["request_id"]
    for message_id in (
        "0193a1b2c3d4e5f60718293a-0",  # well formed, no such request
        f"{request_id}-7",  # the request exists, the index does not
        "nonsense",
        "-3",
        "abc-",
        "abc--1",
        "abc-1.5",
        "abc-" + "9" * 40,
        "a" * 3000 + "-1",
        "%00-1",
    ):
        status, body = env.api("GET", f"/messages/{message_id}")
        assert status == 404 and body["message"], (message_id, body)
    for unknown in ("0193a1b2c3d4e5f60718293a", "nonsense", "a" * 3000, "R#x", f"{request_id}-0"):
        status, body = env.api("GET", f"/requests/{unknown}")
        assert status == 404 and body["message"], (unknown, body)
    assert (
        env.api("GET", f"/messages/{request_id}-0")[0] == env.api("GET", f"/requests/{request_id}")[0] == 200
    )


def test_malformed_ids_never_reach_the_table(env: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB answers a key over 2 KB with a ValidationException (moto does not): such ids are
    told apart before any call, so they get a 404, not a 5xx."""
    from smsrelay import dal

    def refuse(table: dal.Table, operation: str, **kwargs: object) -> None:
        raise dal.StoreError(f"DynamoDB {operation} failed: ValidationException")

    monkeypatch.setattr(dal.Table, "call", refuse)
    for path in (
        "/messages/" + "a" * 3000 + "-1",
        "/requests/" + "a" * 3000,
        "/messages/%00-1",
        "/requests/R#x",
    ):
        status, body = env.api("GET", path)
        assert status == 404, (path[:40], body)


def test_request_counts_equal_the_messages_after_a_flow(env: Harness) -> None:
    env.start_callback_server()
    recipients = [
        "+8613800000001",  # delivered
        "+8613800000002",  # delivered
        "+8613800004040",  # undelivered
        "+8613800004220",  # refused at submit -> rejected
        "+8613800000000",  # accepted, never reported -> stays submitted
        "12345",  # invalid: rejected at send, no message
    ]
    answer = env.send({"recipients": recipients, "content": "【Acme】sale", "vendor": "sms57"})
    assert answer["accepted"] == 5 and len(answer["rejected"]) == 1
    expected = {"delivered": 2, "undelivered": 1, "rejected": 1, "submitted": 1}

    def settled() -> bool:
        counts = env.request(answer["request_id"])["counts"]
        return all(counts[k] == v for k, v in expected.items())

    env.run_all(settle=settled)
    messages, _ = all_pages(env, answer["request_id"])
    view = env.request(answer["request_id"])
    by_status = collections.Counter(m["status"] for m in messages)
    assert {s: view["counts"][s] for s in STATUSES} == {s: by_status.get(s, 0) for s in STATUSES}
    assert view["counts"]["invalid"] == 1
    assert view["total"] == len(messages) == 5
    assert [m["message_id"] for m in messages] == answer["message_ids"]
    # each message in the page is the same as read on its own
    assert messages == [env.message(m) for m in answer["message_ids"]]


@pytest.mark.slow
def test_paging_returns_every_message_exactly_once(env: Harness) -> None:
    total = 2_500  # three buckets of the table's key design (1,000 messages each)
    recipients = [f"+86139{n:08d}" for n in range(total)]
    answer = env.send({"recipients": recipients, "content": "【Acme】sale", "vendor": "sms57"})
    assert answer["state"] == "accepting"  # too many to take in before answering
    env.drain("send", "send")
    request_id = answer["request_id"]
    assert env.request(request_id)["state"] == "accepted"
    first = env.request(request_id)
    assert len(first["messages"]) == 100 and first["next_token"]  # the default page
    # 400 a page: pages cross the bucket boundary at 1,000 and end exactly on the one at 2,000
    messages, pages = all_pages(env, request_id, limit="400")
    ids = [m["message_id"] for m in messages]
    assert len(ids) == total and len(set(ids)) == total
    assert ids == [f"{request_id}-{i}" for i in range(total)]
    assert [m["to"] for m in messages] == recipients
    assert [len(p["messages"]) for p in pages] == [400] * 6 + [100]
    assert pages[-1]["next_token"] is None
    view = env.request(request_id)
    assert view["total"] == total and view["counts"]["queued"] == total
    assert collections.Counter(m["status"] for m in messages) == {"queued": total}


def test_a_token_of_another_request_or_a_forged_one_is_refused(env: Harness) -> None:
    answer = env.send({"recipients": [f"+86139{n:08d}" for n in range(3)], "content": "【Acme】hi"})
    page = env.request(answer["request_id"], limit="2")
    assert len(page["messages"]) == 2 and page["next_token"]
    rest = env.request(answer["request_id"], limit="2", next_token=page["next_token"])
    assert [m["message_id"] for m in rest["messages"]] == [f"{answer['request_id']}-2"]
    status, _ = env.api("GET", f"/requests/{answer['request_id']}", query={"next_token": "!!not-ours!!"})
    assert 400 <= status < 500


def test_a_limit_that_is_not_a_number_is_a_400(env: Harness) -> None:
    answer = env.send({"recipients": ["+8613800000001"], "content": "【Acme】hi", "vendor": "sms57"})
    status_code, body = env.api("GET", f"/requests/{answer['request_id']}", query={"limit": "abc"})
    assert status_code == 400 and body["message"].startswith("limit:")
