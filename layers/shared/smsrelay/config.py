"""Runtime settings, parsed once at cold start from the environment the template sets."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .models import Lane, SendWindow

DEFAULT_OPT_OUT_KEYWORDS = ["TD", "T", "退订", "STOP", "UNSUBSCRIBE"]


class RouteRule(BaseModel):
    """Numbers starting with `prefix` (E.164, e.g. "+86") go to `vendors`, in fail-over order."""

    prefix: str = Field(pattern=r"^\+\d{0,6}$")
    vendors: list[str] = Field(min_length=1)
    window: SendWindow | None = None  # quiet hours for these numbers (recipient's local time)


class Settings(BaseModel):
    """Each field is read from the upper-case environment variable of the same name."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    table_name: str = "smsrelay"
    dispatch_queue_url: str = ""
    #: the priority lane's dispatch queue; empty: one queue for both lanes
    priority_queue_url: str = ""
    #: requests without a category of at most this many recipients take the priority lane
    priority_max_recipients: int = Field(default=10, ge=0, le=1000)
    #: priority requests taken in before the answer are dispatched by `send` itself (claimed first)
    direct_dispatch: bool = False
    send_queue_url: str = ""
    #: the stack's bucket: recipients files under `bulk/`, big requests' rows under `requests/`
    bulk_bucket: str = ""
    event_bus_name: str = "smsrelay"
    default_vendor: str = "sms57"
    default_region: str = "CN"
    routing_rules: list[RouteRule] = Field(default_factory=list)
    #: the stack's vendors (its `Vendors` list, comma separated); empty: every vendor module
    vendors: list[str] = Field(default_factory=list)
    #: each vendor's settings are the Secrets Manager secret named <prefix><vendor id> (deployed)
    vendor_secret_prefix: str = ""
    #: a JSON file with every vendor's settings (local stack); wins over the secrets
    vendor_settings_file: str = ""
    secrets_max_age_s: int = 300
    retention_days: int = Field(default=90, ge=1)
    report_window_hours: float = Field(default=72, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_base_delay_s: int = Field(default=10, ge=0)
    dispatch_lease_s: int = Field(default=120, ge=1)
    queued_limit_s: int = Field(default=3600, ge=1)
    part_size: int = Field(default=5000, ge=1)
    #: requests of up to this many recipients are taken in before the answer; bigger ones after it
    sync_accept_limit: int = Field(default=1000, ge=1)
    #: an acceptance with no progress for this long (and nobody holding it) is resumed by the sweeper
    accept_stale_s: int = Field(default=600, ge=1)
    #: `send_at` may be at most this many days ahead
    max_schedule_days: int = Field(default=30, ge=1, le=365)
    poll_min_age_s: int = Field(default=180, ge=0)
    poll_query_limit: int = Field(default=5000, ge=1)
    poll_time_budget_s: float = Field(default=50, gt=0)
    #: an inbound reply that is one of these (trimmed, case-insensitive) opts its sender out
    opt_out_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_OPT_OUT_KEYWORDS))
    #: quiet hours: the zone of numbers whose own zone is unknown
    default_timezone: str = "Asia/Shanghai"
    #: vendor health: error rate (0-1) over at least `health_min_calls` calls that opens the circuit
    health_error_threshold: float = Field(default=0.5, gt=0, le=1)
    health_min_calls: int = Field(default=5, ge=1)
    health_window_s: int = Field(default=300, ge=10)
    health_cooldown_s: int = Field(default=300, ge=1)
    #: a chunk whose only vendor refuses our setup waits this long for the operator, then fails
    misconfigured_hold_hours: float = Field(default=6, ge=0)

    @field_validator("routing_rules", "opt_out_keywords", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else None
        return value

    @field_validator("vendors", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values = {
            name: environ[name.upper()] for name in cls.model_fields if environ.get(name.upper(), "") != ""
        }
        return cls.model_validate(values)

    def queue_url(self, lane: Lane) -> str:
        """The dispatch queue of a lane."""
        return (self.priority_queue_url if lane == Lane.PRIORITY else "") or self.dispatch_queue_url

    def route_for(self, number: str) -> list[str]:
        """The fail-over list of vendors for an E.164 number: longest matching prefix, else the default."""
        best: RouteRule | None = None
        for rule in self.routing_rules:
            if number.startswith(rule.prefix) and (best is None or len(rule.prefix) > len(best.prefix)):
                best = rule
        return list(best.vendors) if best else [self.default_vendor]

    def window_for(self, number: str) -> SendWindow | None:
        """The quiet-hours window of the longest matching routing rule, if it has one."""
        best: RouteRule | None = None
        for rule in self.routing_rules:
            if number.startswith(rule.prefix) and (best is None or len(rule.prefix) > len(best.prefix)):
                best = rule
        return best.window if best else None
