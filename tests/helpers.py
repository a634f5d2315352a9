"""What the test modules share: waiting, the in-process harness's checks (tests/core), and the
events/ samples made ready for that harness. Fixtures live in the conftest.py files."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import parse_qsl, quote_plus, urlencode

import pytest

if TYPE_CHECKING:
    from tests.core.harness import Harness

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


def wait_until(
    check: Callable[[], T], timeout_s: float = 15, what: str = "condition", every: float = 0.05
) -> T:
    """Poll `check` until it is truthy and return its value (a server thread on a loaded machine may
    lag a client); fails the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        time.sleep(every)
    return result


# --------------------------------------------------------------------------- the harness (tests/core)

STATUSES = ("queued", "submitted", "delivered", "undelivered", "rejected", "failed", "unknown")
TEXT = "【Acme】Your code is 4711"


def reconfigure(monkeypatch: pytest.MonkeyPatch, **environment: str) -> None:
    """Set environment variables and start every function cold, as a new deployment would."""
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    cold_start()


def cold_start() -> None:
    """Every function starts cold: its dependencies (settings, adapters) are built again."""
    for name in [n for n in sys.modules if n.startswith("smsrelay_fn_")]:
        del sys.modules[name]


def route(monkeypatch: pytest.MonkeyPatch, *vendors: str, prefix: str = "+86") -> None:
    reconfigure(monkeypatch, ROUTING_RULES=json.dumps([{"prefix": prefix, "vendors": list(vendors)}]))


def vendor_settings(env: Harness, overrides: dict[str, dict]) -> None:
    """Rewrite the vendor settings file; functions start cold with it."""
    env.write_vendor_settings(overrides)
    cold_start()


def sends(env: Harness, vendor: str) -> list[dict]:
    """The simulator's submit requests (not balance, pulls or queries)."""
    markers = {
        "sms57": lambda r: b"action=send" in (r["body"] or b"") or b"action=p2p" in (r["body"] or b""),
        "kxt3": lambda r: b"op=sendSm" in (r["body"] or b""),
        "smsadmin": lambda r: "send" in r["path"].rsplit("/api/", 1)[-1],
        "intl": lambda r: r["path"].endswith("/send"),
        "santo": lambda r: r["path"].rstrip("/") == "/submit",
    }
    sim = env.simulators[vendor]
    with sim.lock:
        return [r for r in sim.requests if markers[vendor](r)]


def accepted_numbers(env: Harness) -> Counter:
    """How often each number (last 10 digits) was accepted, over all five simulators."""
    found: Counter = Counter()
    for sim in env.simulators.values():
        with sim.lock:
            found.update("".join(c for c in a.mobile if c.isdigit())[-10:] for a in sim.accepted)
    return found


def messages(env: Harness, request_id: str) -> list[dict]:
    return env.request(request_id, limit="1000")["messages"]


def assert_promises(
    env: Harness, request_id: str, *, allow_queued: bool = False, resent: frozenset[str] = frozenset()
) -> dict[str, str]:
    """The end-of-case check; returns number -> status."""
    view = env.request(request_id, limit="1000")
    items = view["messages"]
    assert len(items) == view["total"]
    by_status = Counter(m["status"] for m in items)
    for status in STATUSES:
        assert view["counts"][status] == by_status.get(status, 0), (status, view["counts"], by_status)
    if not allow_queued:
        assert by_status.get("queued", 0) == 0, [m["to"] for m in items if m["status"] == "queued"]
    twice = {n: c for n, c in accepted_numbers(env).items() if c > 1 and n not in resent}
    assert not twice, f"accepted more than once: {twice}"
    for m in items:
        if m["status"] == "submitted" or m["status"] in ("delivered", "undelivered"):
            assert m["vendor_ref"], m
    return {m["to"]: m["status"] for m in items}


def drain_until_settled(env: Harness, request_id: str, rounds: int = 20, pause_s: float = 0.3) -> None:
    """Drain dispatch until nobody is queued (chunks that wait out a lease come back later)."""
    for _ in range(rounds):
        env.drain("dispatch", "dispatch")
        if not any(m["status"] == "queued" for m in messages(env, request_id)):
            return
        time.sleep(pause_s)


class Crash(BaseException):
    """The invocation died (killed, timed out): nothing after this point of it runs."""


class Restartable(Protocol):
    def restart(self) -> None: ...


def settle(
    env: Harness,
    killer: Restartable | None = None,
    queues: tuple[str, ...] = ("send", "dispatch"),
    rounds: int = 60,
) -> None:
    """Drain the queues until they are empty; a killed invocation's messages come back (SQS
    redelivers what was not deleted) once its leases have run out."""
    for _ in range(rounds):
        try:
            handled = sum(env.drain(queue, queue) for queue in queues)
        except Crash:
            if killer:
                killer.restart()
            time.sleep(env.timeout_s + 0.05)  # the dead invocation's leases expire
            continue
        if handled == 0:
            return
    raise AssertionError("the queues did not settle")


# --------------------------------------------------------------------------- events/ samples for the harness

EVENTS = ROOT / "events"
PLACEHOLDER_TOKEN = "CALLBACK-TOKEN"
ACKS = {
    "sms57": ("OK", "text/plain"),
    "kxt3": ("0", "text/plain"),
    "smsadmin": ("OK", "text/plain"),
    "intl": ('{"code":0,"msg":"ok"}', "application/json"),
    "santo": ("OK", "text/plain"),
}
CALLBACK_SAMPLES = {
    "callback_sms57.json": "sms57",
    "callback_kxt3.json": "kxt3",
    "callback_smsadmin.json": "smsadmin",
    "callback_smsadmin_mo.json": "smsadmin",
    "callback_intl.json": "intl",
    "callback_santo.json": "santo",
}


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- push event helpers


def body_bytes(event: dict) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def with_body(event: dict, body: bytes) -> dict:
    """The same event with another body, encoded the way API Gateway encodes the original."""
    event = copy.deepcopy(event)
    try:
        text = None if event.get("isBase64Encoded") else body.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # not text: API Gateway hands such a body over in base64
    event["body"] = base64.b64encode(body).decode() if text is None else text
    event["isBase64Encoded"] = text is None
    return event


def gb2312_form(fields: dict[str, str]) -> bytes:
    return "&".join(f"{quote_plus(k)}={quote_plus(v.encode('gb2312'))}" for k, v in fields.items()).encode()


def form_fields(event: dict, encoding: str = "utf-8") -> dict[str, str]:
    return dict(parse_qsl(body_bytes(event).decode(encoding), keep_blank_values=True, encoding=encoding))


def with_token(event: dict, token: str) -> dict:
    event = copy.deepcopy(event)
    event["path"] = event["path"].replace(PLACEHOLDER_TOKEN, token)
    event["requestContext"]["path"] = event["requestContext"]["path"].replace(PLACEHOLDER_TOKEN, token)
    event["pathParameters"] = {"token": token}
    return event


def with_credentials(env: Harness, vendor: str, event: dict, **creds: str) -> dict:
    """Put the vendor credentials of the harness (or the given ones) where the vendor sends them."""
    sim = env.simulators[vendor]
    event = copy.deepcopy(event)
    if vendor == "kxt3":
        fields = form_fields(event) | {
            "uid": creds.get("uid", sim.push_uid),
            "pwd": creds.get("pwd", sim.push_pwd),
        }
        event = with_body(event, urlencode(fields).encode())
    elif vendor == "smsadmin":
        fields = form_fields(event, "gb2312") | {"SmsName": creds.get("uid", sim.uid)}
        event = with_body(event, gb2312_form(fields))
    elif vendor == "intl":
        secret = hashlib.md5(sim.app_secret.encode()).hexdigest().upper()
        headers = event["headers"] | {
            "appKey": creds.get("app_key", sim.app_key),
            "appSecret": creds.get("app_secret", secret),
        }
        event["headers"] = headers
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    return event


def callback_event(
    env: Harness, vendor: str, sample: str | None = None, *, token: str | None = None, **creds: str
) -> dict:
    """The vendor's sample push, ready for the harness: its token and credentials filled in."""
    event = load(sample or f"callback_{vendor}.json")
    return with_credentials(
        env, vendor, with_token(event, env.tokens[vendor] if token is None else token), **creds
    )


def scan_all(env: Harness) -> list[dict]:
    items: list[dict] = []
    kwargs: dict = {"TableName": env.table, "ConsistentRead": True}
    while True:
        page = env.ddb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
