"""Starting and stopping the local stack: no leaked threads, ports or environment; the settings file."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from smsrelay_local.stack import LocalStack

from tests.helpers import wait_until

from .conftest import write_fake_project

pytestmark = pytest.mark.slow  # starts and stops local stacks


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_stop_is_clean(tmp_path: Path) -> None:
    template = write_fake_project(tmp_path)
    before = {t.ident for t in threading.enumerate()}
    saved = os.environ.get("AWS_ENDPOINT_URL")
    stack = LocalStack(template=template, simulators=["sms57"], schedule_scale=0.02)
    with stack:
        api_port, moto_port = stack.port, stack.aws.port
        sim_port = stack.simulators["sms57"].port
        settings = json.loads(Path(stack.settings_path).read_text())
        assert settings["sms57"]["base_url"] == stack.simulators["sms57"].base_url
        assert stack.callback_urls["sms57"].endswith(
            "/callbacks/sms57/" + settings["sms57"]["callback_token"]
        )
        with pytest.raises(RuntimeError):
            LocalStack(template=template).start()  # one at a time per process
    started = time.monotonic()
    wait_until(
        lambda: (
            not [
                t
                for t in threading.enumerate()
                if t.ident not in before and t.name.startswith(("local-", "sim-"))
            ]
        ),
        timeout_s=5,
        what="the stack's threads to end",
    )
    assert time.monotonic() - started < 5
    assert not any(_port_open(p) for p in (api_port, moto_port, sim_port))
    assert os.environ.get("AWS_ENDPOINT_URL") == saved
    assert stack.settings_path is not None and not stack.settings_path.exists()


def test_settings_file_points_a_vendor_elsewhere(tmp_path: Path) -> None:
    template = write_fake_project(tmp_path)
    outside = tmp_path / "vendors.json"
    outside.write_text(
        json.dumps({"kxt3": {"base_url": "http://127.0.0.1:9/kxt3", "cid": "c", "uid": "u", "password": "p"}})
    )
    with LocalStack(
        template=template, settings_file=outside, simulators=["kxt3", "sms57"], schedule_scale=0.02
    ) as stack:
        assert set(stack.simulators) == {"sms57"}  # kxt3 has a base_url: no simulator for it
        written = json.loads(Path(stack.settings_path).read_text())
        assert written["kxt3"]["base_url"] == "http://127.0.0.1:9/kxt3" and written["kxt3"]["callback_token"]
        assert written["sms57"]["base_url"] == stack.simulators["sms57"].base_url
