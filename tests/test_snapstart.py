"""SnapStart priming: off outside SnapStart (clients stay lazy for moto), on under it, with the
runtime's hooks when Lambda's runtime provides them."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator

import pytest
from smsrelay import aws, snapstart
from smsrelay.config import Settings
from smsrelay.vendor_config import Vendors


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    aws.reset_clients()
    yield
    aws.reset_clients()


def test_outside_snapstart_nothing_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    assert snapstart.prime(Vendors(Settings()), ["dynamodb"]) is False
    assert aws.client.cache_info().currsize == 0


def test_under_snapstart_the_snapshot_holds_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks: dict[str, Callable[[], None]] = {}
    runtime = types.ModuleType("snapshot_restore_python")  # Lambda's runtime module, not on PyPI
    runtime.register_before_snapshot = lambda fn: hooks.setdefault("before", fn)  # type: ignore[attr-defined]
    runtime.register_after_restore = lambda fn: hooks.setdefault("after", fn)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_python", runtime)
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    vendors = Vendors(Settings())
    vendors._file = (1.0, {"sms57": {"base_url": "http://old"}})  # settings read before the snapshot
    assert snapstart.prime(vendors, ["dynamodb", "sqs"]) is True
    assert aws.client.cache_info().currsize == 0  # built by the hook, just before the snapshot
    hooks["before"]()
    assert aws.client.cache_info().currsize == 2
    hooks["after"]()  # a restore forgets cached vendor settings: a changed secret applies at once
    assert vendors._file is None
