"""Typed errors of the vendor layer.

The dispatcher decides on resending from `may_have_reached`: a request that may have reached
the vendor is never sent again blind.
"""

from __future__ import annotations

from .models import Outcome, SubmitResult


class VendorError(Exception):
    """Base of every error the vendor layer raises."""

    may_have_reached: bool = True
    outcome: Outcome = Outcome.TRANSIENT

    def __init__(
        self, vendor: str, message: str, *, code: str = "", partial: list[SubmitResult] | None = None
    ):
        super().__init__(f"{vendor}: {message}")
        self.vendor = vendor
        self.code = code
        # Results of the chunks that completed before this error (multi-chunk sends).
        self.partial: list[SubmitResult] = partial or []


class VendorConnectError(VendorError):
    """No connection was made: the request certainly did not reach the vendor."""

    may_have_reached = False


class VendorTimeout(VendorError):
    """The request was sent but no answer came in time: it may have been accepted."""

    may_have_reached = True


#: answers that say the request was not taken: too busy (503, 429) — retried, then failed over
NOT_TAKEN_STATUSES = frozenset({429, 503})


class VendorHTTPError(VendorError):
    """The vendor (or a proxy in front of it) answered with an HTTP error status.

    A 5xx other than 503 may come after the vendor accepted the request (a 502/504 from a proxy
    whose upstream took it, a 500 thrown after the insert): ambiguous, never resent. 503 and 429
    say "not now": transient, not taken. Any other 4xx refused the request as sent."""

    def __init__(self, vendor: str, status_code: int, body: str = "", **kwargs):
        super().__init__(vendor, f"HTTP {status_code}: {body[:200]}", code=f"HTTP{status_code}", **kwargs)
        self.status_code = status_code
        self.may_have_reached = status_code >= 500 and status_code not in NOT_TAKEN_STATUSES
        self.outcome = (
            Outcome.TRANSIENT
            if status_code >= 500 or status_code in NOT_TAKEN_STATUSES
            else Outcome.PERMANENT
        )


class VendorRequestError(VendorError):
    """The vendor answered and refused the whole request with a documented (or unknown) code."""

    may_have_reached = False

    def __init__(self, vendor: str, code: str, outcome: Outcome, description: str = "", **kwargs):
        super().__init__(vendor, f"code {code}: {description}", code=code, **kwargs)
        self.outcome = outcome
        self.description = description


class VendorParseError(VendorError, ValueError):
    """An answer or a push that cannot be read. For a send answer the request may have been accepted."""

    may_have_reached = True


class VendorUnsupported(VendorError):
    """The vendor has no such operation."""

    may_have_reached = False
    outcome = Outcome.PERMANENT


class InvalidInput(VendorError, ValueError):
    """Our own input cannot be expressed in this vendor's protocol (e.g. ',' in a smsadmin ddt value)."""

    may_have_reached = False
    outcome = Outcome.PERMANENT
