"""Schedules (`Schedule` / `ScheduleV2` events) fired on their rate, optionally sped up."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import uuid
from typing import Any

from .lambdas import FunctionError, LocalFunction
from .template import ACCOUNT_ID, Schedule
from .worker import Worker

log = logging.getLogger("smsrelay.local")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between runs of a rate() expression; None for cron() (not fired locally)."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * _UNIT_S[match.group(2).rstrip("s")]


def scheduled_event(schedule: Schedule, region: str) -> Any:
    """The payload: the schedule's Input, else the EventBridge "Scheduled Event"."""
    if schedule.input is not None:
        try:
            return json.loads(schedule.input)
        except ValueError:
            return schedule.input
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if schedule.kind == "ScheduleV2" else "aws.events",
        "account": ACCOUNT_ID,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [
            f"arn:aws:scheduler:{region}:{ACCOUNT_ID}:schedule/default/{schedule.function_id}-{schedule.event_id}"
        ],
        "detail": {},
    }


class ScheduleRunner(Worker):
    """One thread per schedule; the first run comes one (scaled) interval after start, as on AWS."""

    def __init__(self, schedule: Schedule, function: LocalFunction, region: str, scale: float) -> None:
        self.schedule, self.function, self.region = schedule, function, region
        seconds = rate_seconds(schedule.expression)
        self.interval_s = seconds * scale if seconds is not None else None
        self.runs = 0
        self.join_timeout_s = function.spec.timeout_s + 5
        super().__init__(f"local-schedule-{function.logical_id}-{schedule.event_id}")

    def start(self) -> None:
        if self.interval_s is None:
            log.warning(
                "%s: %s is not fired locally (only rate() is); use POST /_local/run/%s",
                self.function.logical_id,
                self.schedule.expression,
                self.function.logical_id,
            )
            return
        if self.schedule.enabled:
            super().start()

    def fire(self) -> Any:
        self.runs += 1
        return self.function.invoke(scheduled_event(self.schedule, self.region))

    def _run(self) -> None:
        assert self.interval_s is not None
        while not self._stopped.wait(self.interval_s):
            # A failed run is logged by invoke; the next one comes on time.
            with contextlib.suppress(FunctionError):
                self.fire()
