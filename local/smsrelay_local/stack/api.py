"""The template's API routes over HTTP: Api events get API Gateway REST (v1) proxy events, HttpApi
events the HTTP API's payload v2 (or 1.0 when the event says so)."""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from .lambdas import FunctionError, LocalFunction
from .template import ACCOUNT_ID, ApiRoute


class StackPort(Protocol):
    """What the API server needs of the stack it serves (the stack passes itself)."""

    stage: str
    ready: bool

    def health_response(self) -> Response: ...

    def local_endpoint(self, request: Request) -> Response: ...


log = logging.getLogger("smsrelay.local")
_PARAM = re.compile(r"\{([^}+]+)(\+?)\}")


def werkzeug_path(path: str) -> str:
    """/callbacks/sms57/{token} -> /callbacks/sms57/<token>; {proxy+} -> <path:proxy>."""
    return _PARAM.sub(lambda m: f"<path:{m.group(1)}>" if m.group(2) else f"<{m.group(1)}>", path)


def api_event(request: Request, route: ApiRoute, path_params: dict[str, str], stage: str) -> dict[str, Any]:
    """The REST API (v1) Lambda proxy event for one HTTP request."""
    body_bytes = request.get_data()
    body: str | None
    is_b64 = False
    if not body_bytes:
        body = None
    else:
        try:
            body = body_bytes.decode("utf-8")
        except UnicodeDecodeError:  # e.g. smsadmin's GB2312 forms: passed on untouched, as base64
            body, is_b64 = base64.b64encode(body_bytes).decode("ascii"), True
    source_ip = request.remote_addr or "127.0.0.1"
    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers[name] = value
        multi_headers.setdefault(name, []).append(value)
    headers.setdefault("X-Forwarded-For", source_ip)
    multi_headers.setdefault("X-Forwarded-For", [source_ip])
    query = {k: request.args.getlist(k)[-1] for k in request.args}  # API Gateway keeps the last value
    multi_query = {k: request.args.getlist(k) for k in request.args}
    now = time.time()
    identity: dict[str, Any] = {
        "sourceIp": source_ip,
        "userAgent": request.headers.get("User-Agent"),
        "accessKey": None,
        "accountId": None,
        "caller": None,
        "user": None,
        "userArn": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
    }
    if route.iam_auth:  # what a SigV4-signed caller looks like (not verified locally)
        identity |= {
            "accountId": ACCOUNT_ID,
            "caller": "AIDALOCAL",
            "user": "AIDALOCAL",
            "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local",
            "accessKey": "AKIALOCAL",
        }
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": "local",
            "extendedRequestId": uuid.uuid4().hex[:16],
            "httpMethod": request.method,
            "identity": identity,
            "path": f"/{stage}{request.path}",
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": "local",
            "resourcePath": route.path,
            "stage": stage,
        },
        "body": body,
        "isBase64Encoded": is_b64,
    }


# HTTP APIs hand a body over as text only for these types; anything else (a form, no type) in base64.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def http_api_event(
    request: Request, route: ApiRoute, path_params: dict[str, str], stage: str = "$default"
) -> dict[str, Any]:
    """The HTTP API payload v2 event for one HTTP request: lower-case headers, repeated query keys
    joined by commas, the query string as it came (`rawQueryString`: percent-encoded bytes in any
    charset, e.g. smsadmin's GB2312), method and source address under requestContext.http."""
    body_bytes = request.get_data()
    content_type = (request.headers.get("Content-Type") or "").lower()
    is_text = content_type.startswith(_TEXT_TYPES)
    body: str | None = None
    is_b64 = False
    if body_bytes:
        try:
            body = body_bytes.decode("utf-8") if is_text else None
        except UnicodeDecodeError:
            body = None
        if body is None:
            body, is_b64 = base64.b64encode(body_bytes).decode("ascii"), True
    source_ip = request.remote_addr or "127.0.0.1"
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers.items():
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", request.scheme)
    query = {k: ",".join(request.args.getlist(k)) for k in request.args}
    now = time.time()
    route_key = f"{route.method} {route.path}" if route.method != "ANY" else f"ANY {route.path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string.decode("latin-1"),
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": request.host,
            "domainPrefix": "local",
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "sourceIp": source_ip,
                "userAgent": request.headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_b64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_params:
        event["pathParameters"] = path_params
    if body is not None:
        event["body"] = body
    if route.iam_auth:  # what a SigV4-signed caller looks like (not verified locally)
        event["requestContext"]["authorizer"] = {
            "iam": {
                "accessKey": "AKIALOCAL",
                "accountId": ACCOUNT_ID,
                "callerId": "AIDALOCAL",
                "principalOrgId": None,
                "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local",
                "userId": "AIDALOCAL",
            }
        }
    return event


def http_response(result: Any) -> Response:
    """The function's proxy answer as HTTP; API Gateway's 502 when it is malformed."""
    if not isinstance(result, dict) or "statusCode" not in result:
        log.error("malformed Lambda proxy response: %r", result)
        return json_response({"message": "Internal server error"}, 502)
    raw = result.get("body")
    if raw is None:
        data = b""
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(raw)
    else:
        data = str(raw).encode("utf-8")
    response = Response(data, status=int(result["statusCode"]))
    response.headers.remove("Content-Type")
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    if "Content-Type" not in response.headers:
        response.headers["Content-Type"] = "application/json"
    return response


def json_response(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, default=str, ensure_ascii=False), status=status, mimetype="application/json"
    )


class ApiServer:
    """Serves the template's routes plus the local helpers (/health, /_local/...)."""

    def __init__(self, stack: StackPort, routes: list[ApiRoute], functions: dict[str, LocalFunction]) -> None:
        self.stack = stack
        self.routes = routes
        self.functions = functions
        rules = []
        for index, route in enumerate(routes):
            methods = None if route.method == "ANY" else [route.method]
            rules.append(Rule(werkzeug_path(route.path), methods=methods, endpoint=index))
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)
        self._local: dict[tuple[str, str], Callable[[Request, str], Response]] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def bind(self, host: str, port: int) -> int:
        self._server = make_server(host, port, self.wsgi, threaded=True)
        self.port = self._server.server_port
        return self.port

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception:
            log.exception("local API crashed on %s %s", request.method, request.path)
            response = json_response({"message": "Internal server error"}, 500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path == "/health" and request.method == "GET":
            return self.stack.health_response()
        if path.startswith("/_local/"):
            return self.stack.local_endpoint(request)
        stage_prefix = f"/{self.stack.stage}/"
        if path.startswith(stage_prefix):  # the deployed URLs carry the stage: accept them too
            path = path[len(stage_prefix) - 1 :]
        adapter = self.url_map.bind("local", path_info=path)
        try:
            index, params = adapter.match(path, method=request.method)
        except MethodNotAllowed:
            return json_response({"message": "Missing Authentication Token"}, 403)  # what API Gateway answers
        except NotFound:
            return json_response({"message": "Missing Authentication Token"}, 403)
        except HTTPException as exc:
            return json_response({"message": exc.description}, exc.code or 500)
        route = self.routes[index]
        if not self.stack.ready:
            return json_response({"message": "local stack is starting"}, 503)
        if route.kind == "http" and route.payload_version.startswith("2"):
            event = http_api_event(request, route, params)
        else:
            event = api_event(request, route, params, self.stack.stage)
            event["path"] = path
        try:
            result = self.functions[route.function_id].invoke(event)
        except FunctionError:
            return json_response({"message": "Internal server error"}, 502)
        return http_response(result)
