"""dispatch: one vendor request per chunk from the dispatch queue, never twice."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from smsrelay.aws import client
from smsrelay.deps import Deps
from smsrelay.models import DispatchChunk
from smsrelay.observability import logger, metrics, tracer
from smsrelay.service.dispatch import Dispatcher, Redeliver

deps = Deps.from_env()
dispatcher = Dispatcher(deps)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> str:
    chunk = DispatchChunk.model_validate_json(record.body)
    logger.append_keys(chunk_id=chunk.chunk_id, vendor=chunk.vendor)
    try:
        return dispatcher.dispatch(chunk)
    except Redeliver as again:
        # Back off through the visibility timeout, then fail this record so SQS brings it back.
        client("sqs").change_message_visibility(
            QueueUrl=deps.settings.dispatch_queue_url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=min(43_200, max(0, again.delay_s)),
        )
        raise
    except Exception:
        logger.exception("dispatch failed; the chunk comes back after the visibility timeout")
        raise


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
