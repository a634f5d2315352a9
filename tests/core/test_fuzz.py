"""Fuzzing at the boundaries: the send request model and every vendor receiver.

Only the layer's own typed errors may come out of parsing, and a receiver answers garbage with a
4xx, never a 5xx (a 5xx makes vendors retry garbage forever)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from smsrelay.entry import InvalidRequest, parse_request

from .harness import VENDORS, Harness, api_event

FIELDS = [
    "recipients",
    "content",
    "messages",
    "vendor",
    "client_ref",
    "send_at",
    "sender_id",
    "category",
    "window",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
requests_like = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=6)


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(payload=st.one_of(requests_like, json_values, st.binary(max_size=200)))
def test_send_request_parsing_raises_only_invalid_request(payload: object) -> None:
    try:
        parse_request(payload)
    except InvalidRequest as exc:
        assert exc.errors and all(e["field"] and e["error"] for e in exc.errors)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=requests_like)
def test_post_messages_answers_garbage_with_400_never_5xx(env: Harness, payload: dict) -> None:
    status, body = env.api("POST", "/messages", body=json.dumps(payload))
    assert status in (202, 400), body
    if status == 400:
        assert body["errors"]


@pytest.mark.parametrize("vendor", VENDORS)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=400),
    query=st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=5),
    method=st.sampled_from(["POST", "GET"]),
    form=st.booleans(),
)
def test_receivers_answer_garbage_with_4xx_never_5xx(
    env: Harness, vendor: str, body: bytes, query: dict, method: str, form: bool
) -> None:
    settings_ = env.simulators[vendor].settings()
    headers = {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json"}
    if vendor == "intl":  # right credentials, so the body itself is what gets judged
        from smsrelay.vendors.base import md5_hex

        headers |= {"appKey": settings_["app_key"], "appSecret": md5_hex(settings_["app_secret"], upper=True)}
    token = env.tokens[vendor]
    event = api_event(
        method,
        f"/callbacks/{vendor}/{token}",
        body=body,
        headers=headers,
        query=query or None,
        path_parameters={"token": token},
    )
    answer = env.invoke(f"callback_{vendor}", event)
    assert answer["statusCode"] < 500, answer


@pytest.mark.parametrize("vendor", ["kxt3", "smsadmin"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(
        st.sampled_from(
            ["type", "jsonData", "Class", "Mobile", "LinkId", "Report", "Message", "ReportTime", "RevertTime"]
        ),
        st.text(max_size=60),
        max_size=6,
    )
)
def test_receivers_with_right_credentials_answer_garbage_fields_with_4xx(
    env: Harness, vendor: str, fields: dict
) -> None:
    """Past the credential check, the parser itself meets the garbage."""
    from urllib.parse import urlencode

    own = env.simulators[vendor].settings()
    credentials = (
        {"uid": own["push_uid"], "pwd": own["push_pwd"]} if vendor == "kxt3" else {"SmsName": own["uid"]}
    )
    encoding = "gb18030" if vendor == "smsadmin" else "utf-8"
    body = urlencode(credentials | fields, encoding=encoding).encode("ascii")
    token = env.tokens[vendor]
    event = api_event(
        "POST",
        f"/callbacks/{vendor}/{token}",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        path_parameters={"token": token},
    )
    answer = env.invoke(f"callback_{vendor}", event)
    assert answer["statusCode"] < 500, answer
    assert answer["statusCode"] != 403, answer  # the credentials were right: the body was judged
