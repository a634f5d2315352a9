"""`smsrelay setup VENDOR --stack NAME` against the local stack's AWS endpoint, as an operator runs it
against a deployed stack: it finds the stack, writes the vendor's secret, and the URL it prints is
the one that works (the old token no longer does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws
from smsrelay.vendors import VENDOR_IDS
from smsrelay_local.setup import (
    PUSH_NOTES,
    SetupError,
    ask_settings,
    egress_addresses,
    merged_settings,
    prompted_fields,
)
from smsrelay_local.stack import LocalStack, default_template

from tests.helpers import wait_until

pytestmark = pytest.mark.slow  # local stacks for the setup command

STACK = "acme-sms"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    with LocalStack(
        template=default_template(),
        env=quiet,
        stack_name=STACK,
        publish_stack=True,
        parameters={"CallbackCloudFront": "true"},
    ) as running:
        yield running


def aws_endpoint(stack: LocalStack) -> str:
    """Where an operator finds it: the local stack's GET /_local/info."""
    return requests.get(f"{stack.url}/_local/info", timeout=10).json()["aws_endpoint"]


def run_setup(stack: LocalStack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The console script in a clean environment: no AWS variables (the local stack sets some for
    its in-process functions), so the endpoint comes from --endpoint-url only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [
        sys.executable,
        "-m",
        "smsrelay_local.cli",
        "setup",
        *args,
        "--endpoint-url",
        aws_endpoint(stack),
    ]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=120)


def secret(stack: LocalStack, vendor: str) -> dict[str, Any]:
    name = stack.outputs()["VendorSecretNames"].replace("<vendor>", vendor)
    return json.loads(stack.client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])


def test_setup_writes_the_secret_and_prints_urls_that_work(stack: LocalStack, tmp_path: Path) -> None:
    old_token = secret(stack, "sms57")["callback_token"]
    given = {"sms57": {"timeout_s": 5}}  # the README's file, one key per vendor
    (tmp_path / "vendors.json").write_text(json.dumps(given))
    done = run_setup(
        stack, "sms57", "--stack", STACK, "--file", str(tmp_path / "vendors.json"), "--rotate-token"
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    stored = secret(stack, "sms57")
    token = stored["callback_token"]
    assert token != old_token and len(token) >= 32
    assert stored["timeout_s"] == 5
    assert stored["account"] == stack.simulators["sms57"].account  # the rest of the secret kept
    url = f"{stack.url}/callbacks/sms57/{token}"
    assert url in out  # both forms (CloudFront on) are the local API server here
    assert "We answer: HTTP 200 text/plain OK" in out
    assert "none fixed: StaticEgress=none" in out

    # The printed URL takes pushes within the secret mirror's interval; the old one is refused.
    def push(to: str) -> int:
        return requests.post(to, json=[], timeout=10).status_code

    wait_until(lambda: push(url) == 200, timeout_s=30, what="the new token to reach the callback")
    assert push(f"{stack.url}/callbacks/sms57/{old_token}") == 403
    # End to end: the simulated sms57 was "told" the new URL; its report comes back through it.
    answer = requests.post(
        f"{stack.url}/messages",
        json={"recipients": ["+8613800000001"], "content": "【Acme】hi", "vendor": "sms57"},
        timeout=30,
    ).json()
    (message_id,) = answer["message_ids"]
    stack.wait_for_events(
        lambda e: e["detail"].get("message_id") == message_id and e["detail"].get("status") == "delivered",
        timeout=30,
    )


def test_setup_again_keeps_the_token_and_json_names_everything(stack: LocalStack) -> None:
    before = secret(stack, "kxt3")
    settings = json.dumps({"push_uid": "acme-push", "push_pwd": "s3cret-push"})
    done = run_setup(stack, "kxt3", "--stack", STACK, "--file", "-", "--json", stdin=settings)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    after = secret(stack, "kxt3")
    assert after["callback_token"] == before["callback_token"] and result["token_rotated"] is False
    assert after["push_uid"] == "acme-push"
    assert result["urls"] == [f"{stack.url}/callbacks/kxt3/{after['callback_token']}"]
    assert result["answer"] == {"status": 200, "content_type": "text/plain", "body": "0"}
    assert "push_uid" in result["register"] and result["egress"] == []
    assert "s3cret-push" not in done.stdout


def test_setup_errors_name_the_fix(stack: LocalStack, tmp_path: Path) -> None:
    missing = run_setup(stack, "sms57", "--stack", "no-such-stack", "--file", "-", stdin="{}")
    assert missing.returncode == 1
    assert "no stack 'no-such-stack'" in missing.stderr and "sam deploy --guided" in missing.stderr
    no_input = run_setup(stack, "sms57", "--stack", STACK)  # stdin is not a terminal here
    assert no_input.returncode == 1 and "--file" in no_input.stderr
    # An empty secret (a vendor never set up) with too little given: which field, and where to give it.
    name = stack.outputs()["VendorSecretNames"].replace("<vendor>", "intl")
    stack.client("secretsmanager").put_secret_value(SecretId=name, SecretString="{}")
    incomplete = run_setup(stack, "intl", "--stack", STACK, "--file", "-", stdin='{"app_key": "10002"}')
    assert incomplete.returncode == 1
    assert (
        "app_secret" in incomplete.stderr
        and "base_url" in incomplete.stderr
        and "--file" in incomplete.stderr
    )


# --------------------------------------------------------------------------- the parts, without a stack


def test_every_vendor_has_push_notes_and_prompts() -> None:
    assert set(PUSH_NOTES) == set(VENDOR_IDS)
    names = {vendor: [n for n, _ in prompted_fields(vendor)] for vendor in VENDOR_IDS}
    assert names["sms57"] == ["base_url", "account", "password", "extno", "password_mode"]
    assert names["kxt3"] == ["base_url", "cid", "uid", "password", "push_uid", "push_pwd"]
    assert names["santo"] == ["base_url", "cpid", "cppwd", "sender"]
    assert not PUSH_NOTES["smsadmin"].allow_lists_ips and PUSH_NOTES["santo"].allow_lists_ips


def test_prompts_keep_current_values_and_ask_secrets_hidden() -> None:
    asked: list[str] = []
    hidden: list[str] = []
    answers = iter(["", "acme", "", "bogus", "md5"])

    def ask(label: str) -> str:
        asked.append(label)
        return next(answers)

    def ask_secret(label: str) -> str:
        hidden.append(label)
        return "pw"

    current = {"base_url": "http://sms57.example:8080"}
    got = ask_settings("sms57", current, ask, ask_secret)
    # base_url kept; account answered; extno left at its default; password_mode: a wrong choice, asked again
    assert got == {"account": "acme", "password": "pw", "password_mode": "md5"}
    assert "keep: http://sms57.example:8080" in asked[0]
    assert hidden == ["sms57 password [required]: "]


def test_a_token_is_made_once() -> None:
    first = merged_settings(
        "santo", {}, {"base_url": "http://x", "cpid": "a", "cppwd": "b"}, rotate_token=False
    )
    again = merged_settings("santo", first, {"sender": "Acme"}, rotate_token=False)
    rotated = merged_settings("santo", again, {}, rotate_token=True)
    assert again["callback_token"] == first["callback_token"] != rotated["callback_token"]
    with pytest.raises(SetupError, match="cppwd"):
        merged_settings("santo", {}, {"base_url": "http://x", "cpid": "a"}, rotate_token=False)


def test_egress_addresses_of_existing_subnets_are_their_nat_gateways() -> None:
    """existing-subnets: follow each subnet's default route to its NAT gateway's Elastic IP (an
    explicit association, or the VPC's main route table)."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
        public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/24")["Subnet"]["SubnetId"]
        private = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.1.{i}.0/24")["Subnet"]["SubnetId"] for i in (1, 2)
        ]
        allocation = ec2.allocate_address(Domain="vpc")
        nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=allocation["AllocationId"])["NatGateway"]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(
            RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"]
        )
        ec2.associate_route_table(RouteTableId=table, SubnetId=private[0])
        main = ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"][0]["RouteTableId"]
        ec2.create_route(
            RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat["NatGatewayId"]
        )
        outputs = {"EgressMode": "existing-subnets", "EgressSubnets": ",".join(private)}
        addresses, why = egress_addresses(outputs, ec2)
        assert addresses == [allocation["PublicIp"]] and "NAT gateways" in why
    assert egress_addresses({"EgressMode": "new-vpc", "EgressIps": "3.1.1.1,3.2.2.2"}, None) == (
        ["3.1.1.1", "3.2.2.2"],
        "the stack's NAT gateways (Elastic IPs)",
    )
