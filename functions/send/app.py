"""send: every entry point (direct invoke, SQS, EventBridge, SNS, POST /messages) -> one code path."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from smsrelay.aws import client
from smsrelay.config import get_settings
from smsrelay.entry import InvalidRequest, is_api_event, is_sqs_event, parse_request, part_or_request, unwrap
from smsrelay.models import SendAnswer, SendPart, SendRequest
from smsrelay.observability import logger, metrics, tracer
from smsrelay.service import send
from smsrelay.service.send import RequestRefused

settings = get_settings()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
api = APIGatewayRestResolver()
IDEMPOTENCY = IdempotencyConfig(event_key_jmespath="client_ref", expires_after_seconds=7 * 86400)


@cache
def _accept_once() -> Any:
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table_name, boto3_client=client("dynamodb")
    )

    @idempotent_function(
        data_keyword_argument="request",
        config=IDEMPOTENCY,
        persistence_store=persistence,
        output_serializer=PydanticSerializer(model=SendAnswer),
    )
    def accept_once(request: SendRequest) -> SendAnswer:
        return send.accept(request, settings)

    return accept_once


def accept(request: SendRequest) -> SendAnswer:
    """Idempotent on `client_ref`: a repeat returns the first answer and sends nothing."""
    if request.client_ref is None:
        return send.accept(request, settings)
    return _accept_once()(request=request)


@api.post("/messages")
def post_messages() -> Response:
    answer = accept(parse_request(api.current_event.decoded_body or ""))
    return Response(202, "application/json", answer.model_dump_json(exclude_none=True))


@api.exception_handler(InvalidRequest)
def _invalid(exc: InvalidRequest) -> Response:
    metrics.add_metric(name="InvalidRequests", unit="Count", value=1)
    return Response(
        400, "application/json", json.dumps({"message": "invalid send request", "errors": exc.errors})
    )


@api.exception_handler(RequestRefused)
def _refused(exc: RequestRefused) -> Response:
    field, _, error = str(exc).partition(": ")
    return Response(
        400,
        "application/json",
        json.dumps({"message": "invalid send request", "errors": [{"field": field, "error": error}]}),
    )


def record_handler(record: SQSRecord) -> None:
    try:
        work = part_or_request(record.body)
    except InvalidRequest as exc:
        # Counted, logged, and left to fail: the queue's redrive policy moves it to the DLQ.
        metrics.add_metric(name="InvalidRequests", unit="Count", value=1)
        logger.error(
            "invalid send request on the queue", extra={"errors": exc.errors, "message_id": record.message_id}
        )
        raise
    try:
        if isinstance(work, SendPart):
            send.process_part(work, settings)
        else:
            accept(work)
    except Exception:
        logger.exception("send failed; the queue message comes back after the visibility timeout")
        raise


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: Any, context: LambdaContext) -> Any:
    IDEMPOTENCY.register_lambda_context(context)
    if is_api_event(event):
        return api.resolve(event, context)
    if is_sqs_event(event):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    payload = unwrap(event)  # direct invoke, or an EventBridge / SNS event wired straight to the function
    requests = payload if isinstance(payload, list) else [payload]
    answers = [accept(parse_request(p)).model_dump(mode="json", exclude_none=True) for p in requests]
    return answers[0] if len(answers) == 1 else answers
