"""Read what each trigger hands a function: the same send request from every entry point,
raw HTTP requests for the callback receivers, and field-level validation errors."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .models import AcceptJob, SendPart, SendRequest
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
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                [{"field": "(body)", "error": "not UTF-8: send the JSON as UTF-8 text"}]
            ) from None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except RecursionError:
            raise InvalidRequest(
                [{"field": "(body)", "error": "nested too deeply: send a flat JSON object"}]
            ) from None
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
    except RecursionError:
        raise InvalidRequest(
            [{"field": "(body)", "error": "nested too deeply: send a flat JSON object"}]
        ) from None


@dataclass(frozen=True)
class Delivered:
    """A payload as one delivery brought it, with the id that delivery carries (None: none)."""

    payload: Any
    kind: str | None = None
    id: str | None = None


def unwrap(payload: Any, kind: str | None = None, id_: str | None = None) -> list[Delivered]:
    """Peel EventBridge and SNS envelopes (also when they arrive inside an SQS body); each
    payload keeps the id of the innermost envelope that named it (an event id, an SNS message
    id): the same on every redelivery of that event or message."""
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):
            return [Delivered(payload, kind, id_)]
    if isinstance(payload, dict):
        if "detail-type" in payload and "detail" in payload:
            return unwrap(payload["detail"], "event", str(payload.get("id") or "") or id_)
        if payload.get("Type") == "Notification" and "Message" in payload:
            return unwrap(payload["Message"], "sns", str(payload.get("MessageId") or "") or id_)
        records = payload.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], dict) and "Sns" in records[0]:
            found: list[Delivered] = []
            for record in records:
                sns = record.get("Sns") or {}
                found += unwrap(sns.get("Message"), "sns", str(sns.get("MessageId") or "") or None)
            return found
    return [Delivered(payload, kind if id_ else None, id_)]


@dataclass(frozen=True)
class Upload:
    """An object created in the stack's bucket (S3's EventBridge event): a bulk send, maybe."""

    bucket: str
    key: str


def upload_of(payload: Any) -> Upload | None:
    if (
        isinstance(payload, dict)
        and payload.get("source") == "aws.s3"
        and payload.get("detail-type") == "Object Created"
        and isinstance(payload.get("detail"), dict)
    ):
        detail = payload["detail"]
        try:
            return Upload(str(detail["bucket"]["name"]), str(detail["object"]["key"]))
        except (KeyError, TypeError):
            raise InvalidRequest(
                [{"field": "detail", "error": "an S3 event without bucket and key"}]
            ) from None
    return None


def queue_body(body: str) -> SendPart | AcceptJob | Upload | Delivered:
    """An SQS body of the send-requests queue: our own part or job, an upload to the bucket, or
    a send request (kept unparsed with its envelope's id, to be parsed by the caller)."""
    try:
        upload = upload_of(json.loads(body))
    except (ValueError, RecursionError):
        upload = None
    if upload is not None:
        return upload
    try:
        delivered = unwrap(body)
    except RecursionError:
        raise InvalidRequest(
            [{"field": "(body)", "error": "nested too deeply: send a flat JSON object"}]
        ) from None
    payload = delivered[0].payload if len(delivered) == 1 else None
    if isinstance(payload, dict) and "smsrelay_part" in payload:
        return SendPart.model_validate(payload)
    if isinstance(payload, dict) and "smsrelay_job" in payload:
        return AcceptJob.model_validate(payload)
    if len(delivered) != 1:
        raise InvalidRequest([{"field": "(body)", "error": "one send request per queue message"}])
    return delivered[0]


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
