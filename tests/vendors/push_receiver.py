"""A tiny HTTP server standing in for our callback route in vendor tests: it records every push
as the RawRequest a receiver would build, and answers with the vendor's ack (or what a test sets)."""

from __future__ import annotations

import threading
from typing import Any

from smsrelay.vendors import RawRequest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class PushReceiver:
    def __init__(self, vendor: str, reply: str = "OK", content_type: str = "text/plain") -> None:
        self.requests: list[RawRequest] = []
        self.reply_body = reply
        self.first_reply = reply
        self.reply_status = 200
        self.content_type = content_type
        self._cond = threading.Condition()
        self.lock = self._cond
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/callbacks/{vendor}/tok"
        # A short poll interval: shutdown() waits for it.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        raw = RawRequest(
            method=request.method,
            headers=dict(request.headers.items()),
            query=request.args.to_dict(),  # decoded as UTF-8, like API Gateway REST
            body=request.get_data(),
            raw_query=request.query_string.decode("latin-1"),  # as HTTP API's rawQueryString
        )
        with self._cond:
            self.requests.append(raw)
            self._cond.notify_all()
        response = Response(self.reply_body, status=self.reply_status, mimetype=self.content_type)
        return response(environ, start_response)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RawRequest]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            assert len(self.requests) >= count, f"expected {count} pushes, got {len(self.requests)}"
            return list(self.requests)

    def clear(self) -> None:
        with self._cond:
            self.requests.clear()

    def start(self) -> PushReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> PushReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
