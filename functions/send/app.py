"""send: every entry point (direct invoke, SQS, EventBridge, SNS, POST /messages, a bulk upload)
-> one code path. Each delivery's own id names the request, so its retries are the same request."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from smsrelay.deps import Deps
from smsrelay.entry import (
    Delivered,
    InvalidRequest,
    Upload,
    is_api_event,
    is_sqs_event,
    parse_request,
    queue_body,
    unwrap,
)
from smsrelay.models import AcceptJob, SendAnswer, SendPart
from smsrelay.observability import logger, metrics, tracer
from smsrelay.service.accept import Acceptance, AcceptInProgress, Delivery, RequestRefused, upload_request

deps = Deps.from_env()
acceptance = Acceptance(deps)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
api = APIGatewayRestResolver()
_invocation: dict[str, Any] = {}


def delivery(kind: str, delivery_id: str | None) -> Delivery:
    """This invocation taking a delivery in: it holds its leases until its own deadline."""
    context = _invocation.get("context")
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 60.0
    owner = f"{getattr(context, 'aws_request_id', 'local')}-{uuid.uuid4().hex[:8]}"
    return Delivery(kind=kind, id=delivery_id, deadline=time.time() + remaining, owner=owner)


def in_progress(exc: AcceptInProgress) -> dict[str, str]:
    return {"request_id": exc.request_id, "state": "accepting"}


@api.post("/messages")
def post_messages() -> Response:
    event = api.current_event
    try:
        body = event.decoded_body or ""
    except UnicodeDecodeError:
        raise InvalidRequest(
            [{"field": "(body)", "error": "not UTF-8: send the JSON as UTF-8 text"}]
        ) from None
    request = parse_request(body)
    try:
        answer = acceptance.accept(request, delivery("api", event.request_context.request_id))
    except AcceptInProgress as exc:
        return Response(409, "application/json", json.dumps(in_progress(exc)))
    return Response(202, "application/json", answer.model_dump_json(exclude_none=True))


@api.exception_handler(InvalidRequest)
def _invalid(exc: InvalidRequest) -> Response:
    metrics.add_metric(name="InvalidRequests", unit="Count", value=1)
    return Response(
        400, "application/json", json.dumps({"message": "invalid send request", "errors": exc.errors})
    )


@api.exception_handler(RequestRefused)
def _refused(exc: RequestRefused) -> Response:
    metrics.add_metric(name="InvalidRequests", unit="Count", value=1)
    field, _, error = str(exc).partition(": ")
    return Response(
        400,
        "application/json",
        json.dumps({"message": "invalid send request", "errors": [{"field": field, "error": error}]}),
    )


def accept_delivered(delivered: Delivered, fallback_kind: str, fallback_id: str | None) -> dict[str, Any]:
    """One request as an envelope (or the queue, or Lambda) delivered it; its answer."""
    request = parse_request(delivered.payload)
    kind, delivery_id = (delivered.kind, delivered.id) if delivered.id else (fallback_kind, fallback_id)
    try:
        answer: SendAnswer | dict[str, str] = acceptance.accept(request, delivery(kind, delivery_id))
    except AcceptInProgress as exc:
        logger.info("duplicate of a request being accepted: nothing to do", extra=in_progress(exc))
        return in_progress(exc)
    return answer.model_dump(mode="json", exclude_none=True) if isinstance(answer, SendAnswer) else answer


def record_handler(record: SQSRecord) -> None:
    try:
        work = queue_body(record.body)
        if isinstance(work, SendPart):
            acceptance.process_part(work, delivery("sqs", record.message_id))
        elif isinstance(work, AcceptJob):
            acceptance.run_job(work.smsrelay_job, delivery("sqs", record.message_id))
        elif isinstance(work, Upload):
            bulk_upload(work.bucket, work.key)
        else:
            accept_delivered(work, "sqs", record.message_id)
    except (InvalidRequest, RequestRefused) as exc:
        # Counted, logged, and left to fail: the queue's redrive policy moves it to the DLQ.
        metrics.add_metric(name="InvalidRequests", unit="Count", value=1)
        errors = exc.errors if isinstance(exc, InvalidRequest) else str(exc)
        logger.error(
            "invalid send request on the queue", extra={"errors": errors, "message_id": record.message_id}
        )
        raise
    except Exception:
        logger.exception("send failed; the queue message comes back after the visibility timeout")
        raise


def bulk_upload(bucket: str, key: str) -> dict[str, Any] | None:
    """An upload under `bulk/`: a recipients file and its request fields (metadata or sidecar).
    The file's name and version name the request: the file and its sidecar, or one event
    delivered twice, are one request."""
    found = upload_request(bucket, key)
    if found is None:
        logger.info("bulk upload waits for its other half (file or sidecar)", extra={"key": key})
        return None
    request, data, etag = found
    return accept_delivered(Delivered(request), "s3", f"{data.bucket}/{data.key}@{etag}")


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: Any, context: LambdaContext) -> Any:
    _invocation["context"] = context
    if is_api_event(event):
        return api.resolve(event, context)
    if is_sqs_event(event):
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    # direct invoke, or an EventBridge / SNS event wired straight to the function
    try:
        delivered = unwrap(event)
    except RecursionError:
        raise InvalidRequest(
            [{"field": "(body)", "error": "nested too deeply: send a flat JSON object"}]
        ) from None
    invocation = getattr(context, "aws_request_id", None)
    answers = [
        accept_delivered(d, "invoke", invocation if len(delivered) == 1 else f"{invocation}#{n}")
        for n, d in enumerate(delivered)
    ]
    return answers[0] if len(answers) == 1 else answers
