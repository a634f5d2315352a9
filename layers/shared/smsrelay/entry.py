"""Read what each trigger hands a function: the same send request from every entry point,
raw HTTP requests for the callback receivers, and field-level validation errors."""

from __future__ import annotations

import base64
import json
from typing import Any

from pydantic import ValidationError

from .models import SendPart, SendRequest
from .vendors import RawRequest


class InvalidRequest(ValueError):
    """A send request that cannot be read; `errors` name each field and the fix."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['error']}" for e in errors))


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in error["loc"]) or "(request)", "error": error["msg"]}
        for error in exc.errors(include_url=False)
    ]


def parse_request(payload: Any) -> SendRequest:
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except ValueError:
            raise InvalidRequest(
                [{"field": "(body)", "error": "not JSON: send the request as a JSON object"}]
            ) from None
    if not isinstance(payload, dict):
        raise InvalidRequest([{"field": "(body)", "error": "expected a JSON object"}])
    try:
        return SendRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(field_errors(exc)) from None


def unwrap(payload: Any) -> Any:
    """Peel EventBridge and SNS envelopes (also when they arrive inside an SQS body)."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return payload
    if isinstance(payload, dict):
        if "detail-type" in payload and "detail" in payload:
            return unwrap(payload["detail"])
        if payload.get("Type") == "Notification" and "Message" in payload:
            return unwrap(payload["Message"])
        records = payload.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict) and "Sns" in records[0]:
            return [unwrap(r["Sns"]["Message"]) for r in records]
    return payload


def part_or_request(body: str) -> SendPart | SendRequest:
    """An SQS body of the send-requests queue: our own part of a big request, or a send request."""
    payload = unwrap(body)
    if isinstance(payload, dict) and "smsrelay_part" in payload:
        return SendPart.model_validate(payload)
    return parse_request(payload)


def is_api_event(event: Any) -> bool:
    return isinstance(event, dict) and "httpMethod" in event and "requestContext" in event


def is_sqs_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and isinstance(records[0], dict) and records[0].get("eventSource") == "aws:sqs"


def raw_request(event: dict[str, Any]) -> RawRequest:
    """An API Gateway proxy event -> the raw HTTP request a vendor adapter parses.

    REST API (payload 1.0) events carry the query only decoded (as UTF-8: GB2312 text arrives
    garbled); HTTP API (payload 2.0) events also carry `rawQueryString`, kept as `raw_query` so
    an adapter can decode it in its vendor's charset."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    context = event.get("requestContext") or {}
    http = context.get("http") or {}  # payload 2.0
    identity = context.get("identity") or {}  # payload 1.0
    return RawRequest(
        method=http.get("method") or event.get("httpMethod") or "POST",
        headers={k: v for k, v in (event.get("headers") or {}).items() if v is not None},
        query={k: v for k, v in (event.get("queryStringParameters") or {}).items() if v is not None},
        body=raw,
        source_ip=http.get("sourceIp") or identity.get("sourceIp") or "",
        raw_query=event.get("rawQueryString") or "",
    )
