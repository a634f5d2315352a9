"""What every vendor simulator shares: an HTTP server on loopback, the store of accepted
messages, fate decisions, a clock for reports, pushes, pull queues and injected faults.

Test numbers: the last four digits of a number pick its fate deterministically, so tests and
demos can ask for each outcome (any other ending: delivered with probability
`delivered_ratio`, else undelivered):

| ending | fate |
|---|---|
| `4040` | undelivered, with a realistic failure code of the vendor |
| `4220` | refused at submit (per recipient where the vendor answers per recipient, else the whole request, with the document's invalid-number code) |
| `5030` | delivered, but the report comes only after `slow_report_s` |
| `5040` | the submit is accepted but answered only after `slow_answer_s` (a read timeout for the client) |
| `0000` | accepted, no report ever |
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

log = logging.getLogger("smsrelay.simulators")

CHINA_TZ = dt.timezone(dt.timedelta(hours=8))

ENDING_UNDELIVERED = "4040"
ENDING_REFUSED = "4220"
ENDING_SLOW_REPORT = "5030"
ENDING_SLOW_ANSWER = "5040"
ENDING_SILENT = "0000"
#: the most records one push carries (the documents give no limit; a gateway pushes what is due,
#: and a push must be answered within the simulators' 10 s request timeout)
PUSH_MAX_RECORDS = 500


class Fate:
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    REFUSED = "refused"
    SILENT = "silent"


@dataclass
class Accepted:
    """One recipient of one accepted submit, as the simulator keeps it."""

    vendor_ref: str  # the reference reports match on (with `mobile`)
    mobile: str  # as the vendor writes it (11-digit domestic or country code + number)
    content: str
    fate: str
    accepted_at: float = field(default_factory=time.time)
    extra: dict[str, Any] = field(default_factory=dict)
    report_sent: bool = False


@dataclass
class Fault:
    """An injected fault for the next matching request(s)."""

    kind: str  # http500 http502 http503 html empty malformed refuse timeout_after_accept accepted_then_http502 ...
    count: int = 1
    path: str | None = None  # only requests to this path (None: any path)
    after: int = 0  # matching requests to let through first (a fault on the k-th call: after=k-1)


def now_china() -> dt.datetime:
    return dt.datetime.now(CHINA_TZ)


class VendorSimulator(ABC):
    """Base of the five simulators. Subclasses implement `handle` (the vendor's routes)."""

    vendor_id: str = ""
    #: path appended to http://host:port to form the `base_url` setting
    base_path: str = ""

    def __init__(
        self,
        *,
        push_url: str | None = None,
        delivered_ratio: float = 1.0,
        report_delay_s: float = 0.05,
        slow_report_s: float = 3.0,
        slow_answer_s: float = 5.0,
        balance: float = 1_000_000.0,
        seed: int | None = None,
    ):
        self.push_url = push_url
        self.delivered_ratio = delivered_ratio
        self.report_delay_s = report_delay_s
        self.slow_report_s = slow_report_s
        self.slow_answer_s = slow_answer_s
        self.balance = balance
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self.accepted: list[Accepted] = []
        self.requests: list[dict[str, Any]] = []  # every request seen: path, method, params
        self.pushes: list[dict[str, Any]] = []  # every push made: url, status, body
        self.pending_reports: deque[Accepted] = deque()  # for pull (when not pushed)
        self.pending_inbound: deque[dict[str, Any]] = deque()
        self.faults: list[Fault] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self.lock)
        self._server = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.push_session = requests.Session()

    # ------------------------------------------------------------------ server lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = make_server(host, port, self.wsgi, threaded=True)
        self.port = self._server.server_port
        self.host = host
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sim-{self.vendor_id}",
            daemon=True,
        )
        clock = threading.Thread(target=self._run_clock, name=f"sim-{self.vendor_id}-clock", daemon=True)
        self._threads = [serve, clock]
        for thread in self._threads:
            thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> VendorSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The value of the vendor's `base_url` setting that points at this simulator."""
        return self.root_url + self.base_path

    # ------------------------------------------------------------------ WSGI
    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self.lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "args": request.args.to_dict(),
                    # cached, so the vendor handler can still read the body (raw or as a form)
                    "body": request.get_data(cache=True),
                    "time": time.time(),
                }
            )
        fault = self._take_fault(request.path)
        after_accept = fault is not None and fault.kind.startswith(("timeout_after_accept", "accepted_then_"))
        if fault is not None and not after_accept:
            return self._fault_response(fault)(environ, start_response)
        try:
            response = self.handle(request)
        except Exception:  # a simulator bug must be loud in tests, not a hang
            log.exception("simulator %s crashed", self.vendor_id)
            response = Response("simulator error", status=500)
        if fault is not None and fault.kind.startswith("accepted_then_"):
            # taken, then a proxy in front of the vendor answers an error (e.g. a 502 or 504)
            return self._fault_response(Fault(fault.kind.removeprefix("accepted_then_"), 1))(
                environ, start_response
            )
        if fault is not None:  # accepted, then the answer is held past the client's timeout
            time.sleep(self.slow_answer_s)
        return response(environ, start_response)

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Serve one vendor request (the document's routes, codes and answer shapes)."""

    # ------------------------------------------------------------------ faults
    def inject_fault(self, kind: str, count: int = 1, path: str | None = None, after: int = 0) -> None:
        with self.lock:
            self.faults.append(Fault(kind, count, path, after))

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path is None or path.endswith(fault.path):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _fault_response(self, fault: Fault) -> Response:
        if fault.kind.startswith("http"):
            return Response(f"<html><body>{fault.kind[4:]} Error</body></html>", status=int(fault.kind[4:]))
        if fault.kind == "html":
            return Response("<html><body>Service temporarily unavailable</body></html>", mimetype="text/html")
        if fault.kind == "empty":
            return Response(b"", status=200)
        return Response('{"status": ', status=200)  # malformed

    # ------------------------------------------------------------------ fates and the clock
    def fate_of(self, mobile: str) -> str:
        digits = "".join(ch for ch in mobile if ch.isdigit())
        if digits.endswith(ENDING_REFUSED):
            return Fate.REFUSED
        if digits.endswith(ENDING_UNDELIVERED):
            return Fate.UNDELIVERED
        if digits.endswith(ENDING_SILENT):
            return Fate.SILENT
        return Fate.DELIVERED if self.random.random() < self.delivered_ratio else Fate.UNDELIVERED

    def is_slow_answer(self, mobiles: list[str]) -> bool:
        return any(m.endswith(ENDING_SLOW_ANSWER) for m in mobiles)

    def accept(self, vendor_ref: str, mobile: str, content: str, **extra: Any) -> Accepted:
        """Keep an accepted recipient and schedule its report by its fate."""
        record = Accepted(vendor_ref, mobile, content, self.fate_of(mobile), extra=extra)
        with self.lock:
            self.accepted.append(record)
        if record.fate in (Fate.DELIVERED, Fate.UNDELIVERED):
            delay = self.slow_report_s if mobile.endswith(ENDING_SLOW_REPORT) else self.report_delay_s
            self.later(delay, lambda: self._report_due(record))
        return record

    def later(self, delay_s: float, action: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._seq), action))
            self._wake.notify()

    def _run_clock(self) -> None:
        while not self._stopping.is_set():
            with self._wake:
                if not self._timers:
                    self._wake.wait(0.05)
                    continue
                due, _, action = self._timers[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(min(wait, 0.05))
                    continue
                heapq.heappop(self._timers)
            try:
                action()
            except Exception:
                log.exception("simulator %s timer action failed", self.vendor_id)

    def _report_due(self, record: Accepted) -> None:
        with self.lock:
            record.report_sent = True
        if self.push_url and self.pushes_reports:
            self.push_reports([record])
        else:
            with self.lock:
                self.pending_reports.append(record)

    def inject_inbound(self, mobile: str, content: str, **extra: Any) -> None:
        """A handset replies: pushed (vendor's format) or queued for pull."""
        item = {"mobile": mobile, "content": content, "time": now_china(), **extra}
        if self.push_url and self.pushes_inbound:
            self.push_inbound([item])
        else:
            with self.lock:
                self.pending_inbound.append(item)

    def take(self, queue: deque[Any], limit: int) -> list[Any]:
        """Hand out up to `limit` queued records, each once."""
        with self.lock:
            return [queue.popleft() for _ in range(min(limit, len(queue)))]

    # ------------------------------------------------------------------ pushes
    pushes_reports: bool = True
    pushes_inbound: bool = True

    def push_reports(self, records: list[Accepted]) -> None:
        """Deliver reports to `push_url` in the vendor's push format."""
        raise NotImplementedError

    def push_inbound(self, items: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def deliver(self, method: str, url: str, **kwargs: Any) -> requests.Response | None:
        """Make one push and keep a record of it; None when the receiver could not be reached."""
        try:
            response = self.push_session.request(method, url, timeout=10, **kwargs)
        except requests.RequestException as exc:
            with self.lock:
                self.pushes.append({"url": url, "status": None, "error": str(exc)})
            return None
        with self.lock:
            self.pushes.append({"url": url, "status": response.status_code, "body": response.text})
        return response

    # ------------------------------------------------------------------ inspection
    def accepted_for(self, mobile: str) -> list[Accepted]:
        with self.lock:
            return [a for a in self.accepted if a.mobile == mobile]

    def reset(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.requests.clear()
            self.pushes.clear()
            self.pending_reports.clear()
            self.pending_inbound.clear()
            self.faults.clear()
        with self._wake:
            self._timers.clear()  # reports scheduled by an earlier test must not leak into the next
