from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from smsrelay_local import moto_patches
from smsrelay_local.simulators import simulator_class

from .harness import VENDORS, Harness


@pytest.fixture(scope="session")
def simulators() -> Iterator[dict]:
    sims = {v: simulator_class(v)(report_delay_s=0.01, slow_answer_s=8) for v in VENDORS}
    for sim in sims.values():
        sim.start()
        sim.initial_balance = sim.balance  # restored before every test: big tests must not starve later ones
    yield sims
    for sim in sims.values():
        sim.stop()


@functools.cache
def _boto3_session() -> boto3.Session:
    return boto3.Session()


def _reset_process_state() -> None:
    from aws_lambda_powertools.utilities import parameters
    from smsrelay import aws
    from smsrelay.observability import metrics

    aws.reset_clients()
    parameters.clear_caches()
    metrics.clear_metrics()
    import sys

    for name in [n for n in sys.modules if n.startswith("smsrelay_fn_")]:
        del sys.modules[name]  # handlers build their dependencies at import: a fresh cold start per test


@pytest.fixture
def env(
    tmp_path: Path, simulators: dict, monkeypatch: pytest.MonkeyPatch, atomic_store: None
) -> Iterator[Harness]:
    for sim in simulators.values():
        sim.reset()
        sim.push_url = None
        sim.delivered_ratio = 1.0
        sim.balance = sim.initial_balance
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "smsrelay",
        "POWERTOOLS_SERVICE_NAME": "smsrelay",
        "POWERTOOLS_DEV": "false",
        "RETRY_BASE_DELAY_S": "0",
        "DISPATCH_LEASE_S": "1",
        "POLL_MIN_AGE_S": "0",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    moto_patches.apply()
    with mock_aws():
        # moto clears boto3's default session for each mock; a new one reloads every service
        # model (about a third of a test's setup), so the tests share one.
        boto3.DEFAULT_SESSION = _boto3_session()
        _reset_process_state()
        harness = Harness(tmp_path, simulators)
        for key, value in harness.create_resources().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("VENDOR_SETTINGS_FILE", str(harness.write_vendor_settings()))
        _reset_process_state()
        try:
            yield harness
        finally:
            harness.stop()
            _reset_process_state()
    os.environ.pop("VENDOR_SETTINGS_FILE", None)


@pytest.fixture
def atomic_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each call atomically; moto does not lock between threads, and the harness
    runs pushes (its callback server) and concurrency tests in threads beside the test's own
    calls. Every test serialises moto's DynamoDB operations, so they test our code, not the
    emulator (without it a push could see half of a dispatch transaction at load)."""
    from moto.dynamodb.models import DynamoDBBackend

    moto_patches.apply()  # first: what is wrapped here is put back after the test
    lock = threading.RLock()
    for name in (
        "get_item",
        "put_item",
        "update_item",
        "delete_item",
        "query",
        "scan",
        "batch_get_item",
        "batch_write_item",
        "transact_get_items",
        "transact_write_items",
    ):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture
def restore_sims(env: Harness) -> Iterator[dict]:
    """Simulator attributes a test changes are put back (the simulators live for the session)."""
    saved = {v: {k: getattr(s, k) for k in ("balance", "slow_answer_s")} for v, s in env.simulators.items()}
    yield env.simulators
    for vendor, values in saved.items():
        for key, value in values.items():
            setattr(env.simulators[vendor], key, value)
