"""Status API: GET /messages/{message_id}, GET /requests/{request_id}."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from smsrelay.config import get_settings
from smsrelay.dal import NotFound, Store
from smsrelay.observability import logger, metrics, tracer
from smsrelay.service import status

settings = get_settings()
app = APIGatewayRestResolver()


@app.get("/messages/<message_id>")
def get_message(message_id: str) -> Response:
    view = status.get_message(Store(settings), message_id)
    return Response(200, "application/json", view.model_dump_json())


@app.get("/requests/<request_id>")
def get_request(request_id: str) -> Response:
    query = app.current_event.query_string_parameters or {}
    view = status.get_request(
        Store(settings), request_id, query.get("next_token"), int(query.get("limit") or 100)
    )
    return Response(200, "application/json", view.model_dump_json())


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return Response(404, "application/json", json.dumps({"message": str(exc)}))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
