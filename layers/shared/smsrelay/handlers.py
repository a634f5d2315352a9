"""Handler factory of the callback functions (one function per vendor, one code path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from .deps import Deps
from .entry import raw_request
from .observability import logger, metrics, tracer
from .service import callbacks


def callback_handler(vendor: str) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    deps = Deps.from_env()  # the function's cold start

    @logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        token = (event.get("pathParameters") or {}).get("token", "")
        reply = callbacks.receive(deps, vendor, token, raw_request(event))  # REST (1.0) or HTTP API (2.0)
        return {
            "statusCode": reply.status_code,
            "headers": {"Content-Type": reply.content_type},
            "body": reply.body,
            "isBase64Encoded": False,
        }

    return handler
