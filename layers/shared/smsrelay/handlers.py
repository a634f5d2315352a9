"""Handler factory shared by the five callback functions (one function per vendor)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from .entry import raw_request
from .observability import logger, metrics, tracer
from .service import callbacks
from .vendors import RawRequest


def push_request(event: dict[str, Any]) -> RawRequest:
    """The push as a RawRequest. The receivers sit on an HTTP API (payload v2), whose method and
    source address are under requestContext.http; REST (v1) events still read as before."""
    request = raw_request(event)
    http = (event.get("requestContext") or {}).get("http")
    if isinstance(http, dict):
        request = dataclasses.replace(
            request,
            method=str(http.get("method") or request.method),
            source_ip=str(http.get("sourceIp") or request.source_ip),
        )
    return request


def callback_handler(vendor: str) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        token = (event.get("pathParameters") or {}).get("token", "")
        reply = callbacks.receive(vendor, token, push_request(event))
        return {
            "statusCode": reply.status_code,
            "headers": {"Content-Type": reply.content_type},
            "body": reply.body,
            "isBase64Encoded": False,
        }

    return handler
