"""Adding a vendor is its adapter module, its simulator module and one entry in the template's
`Vendors` list: proven on a copy of the repository with a toy vendor (tests/sixth_vendor/), run end
to end by the local stack in a subprocess that imports the copy's packages."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from smsrelay_local.stack import Template

ROOT = Path(__file__).resolve().parents[1]
TOY = Path(__file__).parent / "sixth_vendor"

# Runs in the copy: one request to the toy vendor, its reports pushed to /callbacks/toy/{token}.
END_TO_END = """
import json, sys, time
import requests
import smsrelay.vendors, smsrelay_local.simulators
from smsrelay_local.stack import LocalStack

root, out = sys.argv[1], sys.argv[2]
quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
with LocalStack(template=f"{root}/template.yaml", simulators=["toy"], env=quiet) as stack:
    request = {"vendor": "toy", "content": "hi", "recipients": ["+8613800000001", "+8613800004040"]}
    answer = requests.post(f"{stack.url}/messages", json=request, timeout=30).json()
    ids = set(answer["message_ids"])
    finals = stack.wait_for_events(
        lambda e: e["detail"].get("message_id") in ids and e["detail"].get("status") in ("delivered", "undelivered"),
        count=2,
        timeout=30,
    )
    sim = stack.simulators["toy"]
    deadline = time.monotonic() + 10
    while len(sim.pushes) < 2 and time.monotonic() < deadline:  # recorded once the receiver answered
        time.sleep(0.05)
    result = {
        "modules": [smsrelay.vendors.__file__, smsrelay_local.simulators.__file__],
        "vendors": [list(smsrelay.vendors.VENDOR_IDS), list(smsrelay_local.simulators.SIMULATED)],
        "statuses": {e["detail"]["message_id"]: e["detail"]["status"] for e in finals},
        "message_ids": answer["message_ids"],
        "accepted": [a.mobile for a in sim.accepted],
        "pushes": [(p["url"].removeprefix(stack.callback_urls["toy"]), p["status"]) for p in sim.pushes],
        "view": requests.get(f"{stack.url}/messages/{answer['message_ids'][0]}", timeout=10).json(),
    }
with open(out, "w") as handle:
    json.dump(result, handle)
"""


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parts of the repository the stack runs from, plus the toy vendor's two modules."""
    root = tmp_path_factory.mktemp("repo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copy(ROOT / "template.yaml", root / "template.yaml")
    shutil.copytree(ROOT / "functions", root / "functions", ignore=ignore)
    shutil.copytree(ROOT / "layers/shared/smsrelay", root / "layers/shared/smsrelay", ignore=ignore)
    shutil.copytree(ROOT / "local/smsrelay_local", root / "local/smsrelay_local", ignore=ignore)
    shutil.copy(TOY / "toy_adapter.py", root / "layers/shared/smsrelay/vendors/toy.py")
    shutil.copy(TOY / "toy_simulator.py", root / "local/smsrelay_local/simulators/toy.py")
    template = root / "template.yaml"
    text = template.read_text(encoding="utf-8")
    added = re.sub(r"(\n  Vendors:\n    Type: CommaDelimitedList\n    Default: )(\S+)", r"\1\2,toy", text)
    template.write_text(added, encoding="utf-8")
    return root


def test_the_template_change_is_one_line(checkout: Path) -> None:
    before = (ROOT / "template.yaml").read_text(encoding="utf-8").splitlines()
    after = (checkout / "template.yaml").read_text(encoding="utf-8").splitlines()
    changed = [line for line in difflib.unified_diff(before, after, lineterm="", n=0) if line[:1] in "+-"]
    vendors = ",".join(Template(ROOT / "template.yaml").ref("Vendors"))
    assert changed == ["--- ", "+++ ", f"-    Default: {vendors}", f"+    Default: {vendors},toy"]


def test_the_template_makes_the_toy_vendor_s_receiver_route_secret_and_alarm(checkout: Path) -> None:
    template = Template(checkout / "template.yaml")
    (receiver,) = [f for f in template.functions() if f.logical_id == "CallbacktoyFunction"]
    assert receiver.code_dir == checkout / "functions/callback"  # the one callback code path
    assert receiver.env["CALLBACK_VENDOR"] == "toy"
    assert {(r.method, r.path, r.kind) for r in receiver.routes} == {
        ("POST", "/callbacks/toy/{token}", "http"),
        ("GET", "/callbacks/toy/{token}", "http"),
    }
    secret = template.attribute("VendortoySecret", None)
    assert template.name_of("VendortoySecret") == "smsrelay-local/vendor-settings/toy"
    policies = template.resolve(template.props("CallbacktoyFunction"))["Policies"]
    reads = [
        p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]
        for p in policies
        if "AWSSecretsManagerGetSecretValuePolicy" in p
    ]
    assert reads == [secret]  # its own secret, no other vendor's
    alarm = template.resolve(template.props("VendortoyBalanceAlarm"))
    assert alarm["Dimensions"][0] == {"Name": "vendor", "Value": "toy"}
    assert (alarm["MetricName"], alarm["Threshold"]) == ("VendorBalanceLow", 1)
    assert template.outputs()["toyCallbackUrl"].endswith("/callbacks/toy/<token>")


@pytest.mark.slow  # a local stack in a subprocess
def test_a_message_to_the_toy_vendor_is_delivered_through_its_own_callback(
    checkout: Path, tmp_path: Path
) -> None:
    out = tmp_path / "result.json"
    env = {**os.environ, "PYTHONPATH": f"{checkout / 'layers/shared'}{os.pathsep}{checkout / 'local'}"}
    run = subprocess.run(
        [sys.executable, "-c", END_TO_END, str(checkout), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=checkout,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(out.read_text())
    assert all(Path(m).is_relative_to(checkout) for m in result["modules"])  # the copy's code
    assert "toy" in result["vendors"][0] and "toy" in result["vendors"][1]
    assert sorted(result["accepted"]) == ["+8613800000001", "+8613800004040"]  # the toy simulator took both
    assert result["pushes"] == [["", 200], ["", 200]]  # each report came back through /callbacks/toy/{token}
    first, second = result["message_ids"]
    assert result["statuses"] == {first: "delivered", second: "undelivered"}
    assert result["view"]["status"] == "delivered" and result["view"]["vendor"] == "toy"
    assert result["view"]["vendor_ref"].startswith("T")
