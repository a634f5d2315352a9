"""`smsrelay local` as a user runs it: banner with the URLs, /health, status lines, Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from smsrelay_local.cli import build_parser

from .conftest import write_fake_project

pytestmark = pytest.mark.slow  # starts the command in a subprocess


def test_parser_defaults_and_params() -> None:
    args = build_parser().parse_args(["local", "--param", "Flavour=spicy", "--param", "X=a=b"])
    assert args.port == 3000 and args.settings is None and args.log_level == "WARNING"
    assert dict(args.param) == {"Flavour": "spicy", "X": "a=b"}


def test_smsrelay_local_runs_until_interrupted(tmp_path: Path) -> None:
    template = write_fake_project(tmp_path)
    command = [
        sys.executable,
        "-m",
        "smsrelay_local.cli",
        "local",
        "--port",
        "0",
        "--template",
        str(template),
    ]
    process = subprocess.Popen(
        [*command, "--no-simulators", "--schedule-scale", "0.02"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        url = re.search(r"smsrelay local stack: (http://127\.0\.0\.1:\d+)", output)
        assert url, output
        assert "/echo/{name}" in output and "IAM auth is NOT enforced locally" in output
        assert requests.get(f"{url.group(1)}/health", timeout=5).status_code == 200
        process.send_signal(signal.SIGINT)
        # communicate() keeps reading: a full pipe must not hold the stack's last lines (and it)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, rest[-3000:]
        assert "stopping" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
