"""boto3 clients, created lazily (after moto starts in tests) and once per process."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, max_pool_connections=32)


@cache
def client(service: str) -> Any:
    # AWS_ENDPOINT_URL (set by the local stack) points every client at the emulator, where S3
    # buckets are paths of one host.
    config = _CONFIG
    if service == "s3" and os.environ.get("AWS_ENDPOINT_URL"):
        config = _CONFIG.merge(Config(s3={"addressing_style": "path"}))
    return boto3.client(service, config=config, region_name=os.environ.get("AWS_REGION", "us-east-1"))


def reset_clients() -> None:
    client.cache_clear()
