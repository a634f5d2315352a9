"""poll (scheduled): reports, inbound and balances from the vendors that answer pulls."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from smsrelay.deps import Deps
from smsrelay.observability import logger, metrics, tracer
from smsrelay.service import poll

deps = Deps.from_env()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Drains stop with a margin before the function's own deadline (poll.FINAL_MARGIN_S).
    summary = poll.run(deps, remaining_ms=context.get_remaining_time_in_millis())
    logger.info("poll done", extra={"summary": dataclasses.asdict(summary)})
    return dataclasses.asdict(summary)
