"""Functions invoked in-process as Lambda would invoke them.

Each function gets a pool of "execution environments": separate imports of its app.py, each
running one invocation at a time, like Lambda's. That keeps module-level state (a Powertools
BatchProcessor, an API resolver) private to one invocation while invocations still run in
parallel. Cold starts happen per environment, as they do on Lambda.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import queue
import sys
import threading
import time
import types
import uuid
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from .template import ACCOUNT_ID, FunctionSpec

log = logging.getLogger("smsrelay.local")
_module_ids = itertools.count()
_import_lock = threading.Lock()  # one import at a time: each may set its own variables


class LambdaContext:
    """What the Lambda runtime passes as `context` (the attributes Powertools reads)."""

    def __init__(self, spec: FunctionSpec, region: str) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self.region = region
        self.account_id = ACCOUNT_ID
        self._deadline = time.monotonic() + spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class FunctionError(RuntimeError):
    """The handler raised (Lambda's `Unhandled` error); the original is the __cause__."""


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    cold_starts: int = 0
    cold_start_ms: list[float] = field(default_factory=list)
    durations_ms: list[float] = field(default_factory=list)
    timeouts: int = 0


class LocalFunction:
    """One template function: imports, context, invocation, stats."""

    def __init__(
        self,
        spec: FunctionSpec,
        region: str,
        max_environments: int = 16,
        import_env: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.region = region
        #: set in os.environ while this function's module is imported (and only then)
        self.import_env = dict(import_env or {})
        limit = spec.reserved_concurrency or max_environments
        self.max_environments = max(1, limit)
        self.stats = FunctionStats()
        self._idle: queue.LifoQueue[types.ModuleType] = queue.LifoQueue()  # warm environments first
        self._created = 0
        self._lock = threading.Lock()
        self._module_names: list[str] = []
        module_path, _, self._attr = spec.handler.rpartition(".")
        self._file = spec.code_dir / (module_path.replace(".", "/") + ".py")
        if not self._file.is_file():
            raise FileNotFoundError(f"{spec.logical_id}: handler file {self._file} does not exist")

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    def warm_up(self) -> None:
        """Import one environment now, so that a broken handler fails the stack's start."""
        self._idle.put(self._new_environment())

    def _new_environment(self) -> types.ModuleType:
        name = f"_smsrelay_fn_{self.spec.logical_id}_{next(_module_ids)}"
        started = time.perf_counter()
        spec = importlib.util.spec_from_file_location(name, self._file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pydantic look their module up here
        try:
            with _import_lock, mock.patch.dict(os.environ, self.import_env):
                spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        if not callable(getattr(module, self._attr, None)):
            raise AttributeError(f"{self._file} has no handler {self._attr!r}")
        with self._lock:
            self._module_names.append(name)
            self.stats.cold_starts += 1
            self.stats.cold_start_ms.append((time.perf_counter() - started) * 1000)
        return module

    def _acquire(self) -> types.ModuleType:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = self._created < self.max_environments
            if grow:
                self._created += 1
        if grow:
            try:
                return self._new_environment()
            except BaseException:
                with self._lock:
                    self._created -= 1
                raise
        return self._idle.get()  # at the concurrency limit: wait for a free environment

    def invoke(self, event: Any) -> Any:
        """Run the handler once; raises FunctionError when it raises."""
        module = self._acquire()
        context = LambdaContext(self.spec, self.region)
        started = time.perf_counter()
        failed = False
        try:
            return getattr(module, self._attr)(event, context)
        except Exception as exc:
            failed = True
            log.exception("%s failed (request %s)", self.spec.logical_id, context.aws_request_id)
            raise FunctionError(f"{self.spec.logical_id}: {type(exc).__name__}: {exc}") from exc
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self._idle.put(module)
            with self._lock:
                self.stats.invocations += 1
                self.stats.errors += failed
                self.stats.durations_ms.append(elapsed_ms)
                if elapsed_ms > self.spec.timeout_s * 1000:
                    # Threads cannot be killed; Lambda would have stopped it here.
                    self.stats.timeouts += 1
                    log.warning(
                        "%s ran %.0f ms, past its Timeout of %d s (Lambda would have killed it)",
                        self.spec.logical_id,
                        elapsed_ms,
                        self.spec.timeout_s,
                    )

    def unload(self) -> None:
        with self._lock:
            for name in self._module_names:
                sys.modules.pop(name, None)
            self._module_names.clear()
