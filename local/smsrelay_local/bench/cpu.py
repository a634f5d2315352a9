"""4. CPU and memory: µs per recipient of send and dispatch with AWS and vendor HTTP stubbed (a
subprocess: no emulator, no threads), and their peak Python memory (tracemalloc)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import FULL_RECIPIENTS, FUNCTION_ENV, SMS57_SETTINGS, TARGET_SEND_MB, Table, numbers


def run_cpu(n: int, memory_n: int) -> dict[str, Any]:
    """The worker runs in a fresh interpreter: no stack, no moto, no other threads."""
    with tempfile.TemporaryDirectory(prefix="smsrelay-bench-") as tmp:
        out = Path(tmp) / "cpu.json"
        settings = Path(tmp) / "vendors.json"
        settings.write_text(json.dumps({"sms57": SMS57_SETTINGS}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
        env |= FUNCTION_ENV | {"VENDOR_SETTINGS_FILE": str(settings)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "smsrelay_local.bench",
                "--worker",
                str(out),
                "--recipients",
                str(n),
                "--memory-recipients",
                str(memory_n),
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())


def _stub_everything(captured: dict[str, list[str]], deps: Any) -> dict[str, int]:
    """Every AWS call answered in memory (at botocore's _make_api_call, so our own serialisation
    still counts); the request and part records kept in a dict (their conditional moves are
    DynamoDB's work, not ours); S3 objects in a dict; the vendor's HTTP answered by the sms57
    simulator's canned reply."""
    from collections import Counter

    import botocore.client
    import requests
    from botocore.response import StreamingBody
    from smsrelay import dal
    from smsrelay.models import RequestState
    from werkzeug.test import Client

    from ..simulators.sms57 import Sms57Simulator

    calls: Counter[str] = Counter()
    objects: dict[str, bytes] = {}

    def api_call(self: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        calls[operation] += 1
        if operation == "SendMessageBatch":
            captured.setdefault(params["QueueUrl"], []).extend(e["MessageBody"] for e in params["Entries"])
            return {"Successful": [{"Id": e["Id"]} for e in params["Entries"]], "Failed": []}
        if operation == "PutEvents":
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in params["Entries"]]}
        if operation == "BatchGetItem":
            return {"Responses": {}, "UnprocessedKeys": {}}
        if operation == "BatchWriteItem":
            return {"UnprocessedItems": {}}
        if operation == "PutObject":
            body = params["Body"]
            objects[params["Key"]] = body if isinstance(body, bytes) else body.read()
            return {"ETag": '"bench"'}
        if operation == "HeadObject":
            return {"ETag": '"bench"', "Metadata": {}}
        if operation == "GetObject":
            data = objects[params["Key"]][int(params.get("Range", "bytes=0-")[6:].rstrip("-") or 0) :]
            return {"Body": StreamingBody(io.BytesIO(data), len(data))}
        return {}

    botocore.client.BaseClient._make_api_call = api_call  # type: ignore[method-assign]

    records: dict[str, dal.RequestRecord] = {}

    def done_part(self: Any, request_id: str, part: int, owner: str, summary: Any) -> bool:
        record = records[request_id]
        record.parts_done += 1
        record.counters["total"] = record.counters.get("total", 0) + summary.accepted
        return True

    def parts_total(self: Any, request_id: str, owner: str, parts: int, rows: int) -> bool:
        records[request_id].parts_total, records[request_id].rows_total = parts, rows
        return True

    def finish(self: Any, request_id: str, state: Any, answer: str, error: str | None = None) -> bool:
        records[request_id].state, records[request_id].answer = RequestState(state), answer
        return True

    def load(self: Any, request_id: str) -> dal.RequestRecord:
        if request_id not in records:
            raise dal.NotFound(request_id)
        return records[request_id]

    fake = {
        "create": lambda self, record: records.setdefault(record.request_id, record) is record,
        "load": load,
        "take": lambda self, *a: True,
        "release": lambda self, *a: None,
        "save_cursor": lambda self, *a: True,
        "set_parts_total": parts_total,
        "finish": finish,
        "mark_announced": lambda self, request_id: None,
        "claim_part": lambda self, *a: "writing",
        "release_part": lambda self, *a: None,
        "complete_part": done_part,
        "list_parts": lambda self, *a, **kw: [],
        "mark_part_enqueued": lambda self, *a: None,
    }
    for name, method in fake.items():
        setattr(dal.RequestStore, name, method)

    # The vendor: the sms57 simulator's answer to the first call, replayed for every later one.
    sim = Sms57Simulator(seed=1)
    wsgi = Client(sim.wsgi)
    canned: dict[str, requests.Response] = {}

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        calls["vendor:http"] += 1
        if "answer" not in canned:
            from urllib.parse import urlsplit

            answer = wsgi.open(
                urlsplit(url).path, method=method, data=kwargs.get("data"), query_string=kwargs.get("params")
            )
            response = requests.Response()
            response.status_code = answer.status_code
            response._content = answer.get_data()
            response.headers.update(dict(answer.headers))
            response.encoding = "utf-8"
            response.url = url
            canned["answer"] = response
        return canned["answer"]

    deps.vendors.adapter("sms57").http.session.request = request  # type: ignore[method-assign]
    return calls


def worker(out: Path, n: int, memory_n: int) -> None:
    import gc
    import tracemalloc
    import uuid

    from smsrelay.deps import Deps
    from smsrelay.entry import parse_request
    from smsrelay.models import AcceptJob, DispatchChunk, SendPart
    from smsrelay.observability import logger
    from smsrelay.service.accept import Acceptance, Delivery
    from smsrelay.service.dispatch import Dispatcher

    logger.setLevel("ERROR")
    warnings.filterwarnings("ignore")
    captured: dict[str, list[str]] = {}
    send_queue = os.environ["SEND_QUEUE_URL"]
    os.environ["SYNC_ACCEPT_LIMIT"] = "1"  # every size takes the path a big request takes
    deps = Deps.from_env()
    calls = _stub_everything(captured, deps)
    acceptance = Acceptance(deps)

    def taken(kind: type[Any]) -> list[Any]:
        bodies = captured.pop(send_queue, [])
        return [kind.model_validate_json(b) for b in bodies]

    def delivery() -> Delivery:
        return Delivery(kind="bench", id=uuid.uuid4().hex, deadline=time.time() + 900)

    def payload(count: int) -> str:
        return json.dumps(
            {"vendor": "sms57", "content": "【Acme】Your code is 4711", "recipients": numbers("sms57", count)}
        )

    def send_all(count: int) -> tuple[float, float, float]:
        """CPU seconds of one request of `count`: the API's answer (parse, keep the rows), the
        reading job (rows -> checked parts), and writing the parts."""
        captured.clear()
        body = payload(count)
        t0 = time.process_time()
        acceptance.accept(parse_request(body), delivery())
        t1 = time.process_time()
        for job in taken(AcceptJob):
            acceptance.run_job(job.smsrelay_job, delivery())
        t2 = time.process_time()
        for part in taken(SendPart):
            acceptance.process_part(part, delivery())
        return t1 - t0, t2 - t1, time.process_time() - t2

    send_all(2000)  # warm: first adapter, first pydantic schemas
    accept_s, read_s, part_s = send_all(n)
    limit = deps.vendors.adapter("sms57").batch_limit
    chunk_numbers = numbers("sms57", limit)
    chunk_count = max(1, n // limit)

    def chunk(i: int) -> DispatchChunk:
        return DispatchChunk.model_validate(
            {
                "chunk_id": f"bench.0.{i}",
                "request_id": "bench",
                "vendor": "sms57",
                "fallback": [],
                "content": "【Acme】Your code is 4711",
                "items": [{"index": i * limit + j, "to": number} for j, number in enumerate(chunk_numbers)],
            }
        )

    dispatcher = Dispatcher(deps)
    dispatcher.dispatch(chunk(0))  # warm, and fills the canned vendor answer
    bodies = [chunk(i).model_dump_json() for i in range(chunk_count)]
    t0 = time.process_time()
    for body in bodies:  # as the handler does: parse the queue body, dispatch
        Dispatcher(deps).dispatch(DispatchChunk.model_validate_json(body))
    dispatch_s = time.process_time() - t0
    dispatched = chunk_count * limit

    # Peak Python memory (tracemalloc) for a request of memory_n, each step as its own invocation
    # would run it: the API's answer (parse the body, keep the rows), the reading job (streams the
    # rows; keeps 16 bytes a distinct number for the duplicate check), one part; one dispatch.
    def peak(step: Callable[[], Any]) -> int:
        gc.collect()
        tracemalloc.start()
        step()
        value = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return value

    captured.clear()
    body = payload(memory_n)
    accept_peak = peak(lambda: acceptance.accept(parse_request(body), delivery()))
    (job,) = taken(AcceptJob)
    read_peak = peak(lambda: acceptance.run_job(job.smsrelay_job, delivery()))
    parts = captured.pop(send_queue, [])
    first = parts[0] if parts else None
    del parts
    part_peak = (
        peak(lambda: acceptance.process_part(SendPart.model_validate_json(first), delivery())) if first else 0
    )
    dispatch_peak = peak(lambda: Dispatcher(deps).dispatch(DispatchChunk.model_validate_json(bodies[0])))
    result = {
        "recipients": n,
        "send_us_per_recipient": (accept_s + read_s + part_s) * 1e6 / n,
        "send_accept_us_per_recipient": accept_s * 1e6 / n,
        "send_read_us_per_recipient": read_s * 1e6 / n,
        "send_parts_us_per_recipient": part_s * 1e6 / n,
        "dispatch_recipients": dispatched,
        "dispatch_us_per_recipient": dispatch_s * 1e6 / dispatched,
        "stub_calls": dict(calls),
        "memory": {
            "method": "tracemalloc peak (Python allocations) around direct calls, in a fresh interpreter",
            "send_recipients": memory_n,
            "send_accept_peak_mb": accept_peak / 2**20,
            "send_read_peak_mb": read_peak / 2**20,
            "send_part_peak_mb": part_peak / 2**20,
            "send_peak_mb": max(accept_peak, read_peak, part_peak) / 2**20,
            # the API's answer holds the body (grows with it); the job holds the duplicate check
            "send_peak_mb_at_1m": max(
                accept_peak * 1_000_000 / memory_n, read_peak * 1_000_000 / memory_n, part_peak
            )
            / 2**20,
            "dispatch_chunk": limit,
            "dispatch_peak_mb": dispatch_peak / 2**20,
        },
    }
    out.write_text(json.dumps(result))


def add_rows(table: Table, p: dict[str, Any]) -> None:
    m = p["memory"]
    table.row(
        "cpu",
        f"send, stubbed ({p['recipients']:,} recipients)",
        f"{p['send_us_per_recipient']:.1f} us/recipient",
        f"answer {p['send_accept_us_per_recipient']:.1f} + read {p['send_read_us_per_recipient']:.1f}"
        f" + parts {p['send_parts_us_per_recipient']:.1f}",
    )
    table.row(
        "cpu",
        f"dispatch, stubbed ({p['dispatch_recipients']:,} recipients)",
        f"{p['dispatch_us_per_recipient']:.1f} us/recipient",
    )
    at_1m = m["send_peak_mb"] if m["send_recipients"] >= FULL_RECIPIENTS else m["send_peak_mb_at_1m"]
    how = "measured" if m["send_recipients"] >= FULL_RECIPIENTS else f"linear from {m['send_recipients']:,}"
    table.row(
        "memory",
        f"send peak, {m['send_recipients']:,} recipients (tracemalloc)",
        f"{m['send_peak_mb']:.1f} MB",
        f"answer {m['send_accept_peak_mb']:.1f}, read {m['send_read_peak_mb']:.1f},"
        f" one part {m['send_part_peak_mb']:.1f}",
    )
    table.row(
        "memory",
        "send peak at 1,000,000 recipients",
        f"{at_1m:.0f} MB",
        f"< 512 MB ({how})",
        table.target("send memory at 1M", at_1m, TARGET_SEND_MB, False),
    )
    table.row(
        "memory",
        f"dispatch peak, one chunk of {m['dispatch_chunk']} (tracemalloc)",
        f"{m['dispatch_peak_mb']:.1f} MB",
    )
