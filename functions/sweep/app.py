"""sweep (scheduled): re-dispatch recipients stuck in `queued`, expire `submitted` past the report window."""

from __future__ import annotations

import dataclasses
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from smsrelay.deps import Deps
from smsrelay.observability import logger, metrics, tracer
from smsrelay.service import sweep

deps = Deps.from_env()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dataclasses.asdict(sweep.run(deps))
