"""Deployed, a vendor's settings are the secret named VENDOR_SECRET_PREFIX + its id (template.yaml):
a vendor the stack does not serve has no secret, and is not configured rather than an error."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from smsrelay.config import Settings
from smsrelay.vendor_config import VendorNotConfigured, Vendors

PREFIX = "acme/vendor-settings/"


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        parameters.clear_caches()
        yield boto3.client("secretsmanager", region_name="us-east-1")
    parameters.clear_caches()


def test_the_settings_are_read_from_the_secret_under_the_prefix(secretsmanager) -> None:
    secretsmanager.create_secret(Name=f"{PREFIX}kxt3", SecretString=json.dumps({"base_url": "http://k"}))
    vendors = Vendors(Settings(vendor_secret_prefix=PREFIX))
    assert vendors.settings_of("kxt3") == {"base_url": "http://k"}
    with pytest.raises(VendorNotConfigured, match="has no secret 'acme/vendor-settings/intl'"):
        vendors.settings_of("intl")  # not in the stack's Vendors: no secret
    assert vendors.configured() == ["kxt3"]


def test_without_a_prefix_no_vendor_is_configured(secretsmanager) -> None:
    with pytest.raises(VendorNotConfigured, match="VENDOR_SECRET_PREFIX"):
        Vendors(Settings()).settings_of("kxt3")


def test_a_vendor_outside_the_stacks_list_is_not_configured_without_a_secret_read(secretsmanager) -> None:
    secretsmanager.create_secret(Name=f"{PREFIX}kxt3", SecretString=json.dumps({"base_url": "http://k"}))
    secretsmanager.create_secret(Name=f"{PREFIX}intl", SecretString=json.dumps({"base_url": "http://i"}))
    vendors = Vendors(Settings.from_env({"VENDOR_SECRET_PREFIX": PREFIX, "VENDORS": "kxt3, sms57"}))
    with pytest.raises(VendorNotConfigured, match="not in the stack's Vendors list"):
        vendors.settings_of("intl")  # its secret exists, but the stack does not serve it
    assert vendors.configured() == ["kxt3"]  # sms57 is listed but has no secret
