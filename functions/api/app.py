"""Status API: GET /messages/{message_id}, GET /requests/{request_id},
GET /requests/{request_id}/rejections; suppression list: GET /suppressions, PUT and DELETE
/suppressions/{number}."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from smsrelay.dal import NotFound
from smsrelay.deps import Deps
from smsrelay.numbers import InvalidNumber
from smsrelay.observability import logger, metrics, tracer
from smsrelay.service import status, suppression

deps = Deps.from_env()
app = APIGatewayRestResolver()


@app.get("/messages/<message_id>")
def get_message(message_id: str) -> Response:
    view = status.get_message(deps.store, message_id)
    return Response(200, "application/json", view.model_dump_json())


class BadQuery(ValueError):
    pass


def _limit(query: dict[str, str]) -> int:
    try:
        return int(query.get("limit") or 100)
    except ValueError:
        raise BadQuery("limit: give a whole number from 1 to 1000") from None


@app.get("/requests/<request_id>")
def get_request(request_id: str) -> Response:
    query = app.current_event.query_string_parameters or {}
    view = status.get_request(deps.store, request_id, query.get("next_token"), _limit(query))
    return Response(200, "application/json", view.model_dump_json())


@app.get("/requests/<request_id>/rejections")
def get_rejections(request_id: str) -> Response:
    query = app.current_event.query_string_parameters or {}
    view = status.get_rejections(deps.store, request_id, query.get("next_token"), _limit(query))
    return Response(200, "application/json", view.model_dump_json(exclude_none=True))


@app.get("/suppressions")
def list_suppressions() -> Response:
    query = app.current_event.query_string_parameters or {}
    try:
        page = suppression.page(deps, _limit(query), query.get("next_token"))
    except ValueError as exc:
        return Response(400, "application/json", json.dumps({"message": str(exc)}))
    return Response(200, "application/json", json.dumps(page, ensure_ascii=False))


@app.put("/suppressions/<number>")
def add_suppression(number: str) -> Response:
    e164, added = suppression.add(unquote(number), deps)
    return Response(
        201 if added else 200, "application/json", json.dumps({"number": e164, "suppressed": True})
    )


@app.delete("/suppressions/<number>")
def remove_suppression(number: str) -> Response:
    e164, removed = suppression.remove(unquote(number), deps)
    if not removed:
        raise NotFound(f"{e164} is not suppressed")
    return Response(200, "application/json", json.dumps({"number": e164, "suppressed": False}))


@app.exception_handler(InvalidNumber)
def _invalid_number(exc: InvalidNumber) -> Response:
    return Response(400, "application/json", json.dumps({"message": f"number: {exc}"}))


@app.exception_handler(BadQuery)
@app.exception_handler(status.BadToken)
def _bad_query(exc: ValueError) -> Response:
    return Response(400, "application/json", json.dumps({"message": str(exc)}))


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return Response(404, "application/json", json.dumps({"message": str(exc)}))


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
