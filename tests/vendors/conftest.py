"""Fixture factories of the vendor tests: one simulator (or push receiver) server per module,
handed to every test as it was built. Starting a server is cheap, stopping one costs up to half a
second (serve_forever's poll), so a module shares its servers and each test gets them reset.

    _sim_server, sim = simulator_fixtures("kxt3", receiver="_receiver_server", report_delay_s=0.02)
    _receiver_server, receiver = receiver_fixtures(Receiver)
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from smsrelay_local.simulators import VendorSimulator, simulator_class

from .push_receiver import PushReceiver

R = TypeVar("R", bound=PushReceiver)


def _options(cls: type[VendorSimulator]) -> list[str]:
    """The constructor's keyword options of a simulator class and its bases, which the simulator
    keeps as attributes of the same name (its account, balance, delays, push_url...)."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names += [
                p.name
                for p in inspect.signature(vars(klass)["__init__"]).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
            ]
    return names


def simulator_fixtures(
    vendor: str,
    *,
    name: str = "sim",
    receiver: str | None = None,
    settle: Callable[[VendorSimulator], None] | None = None,
    **options: Any,
) -> tuple[Any, Any]:
    """Two fixtures for a module to bind: `_<name>_server`, the vendor's simulator started once
    for the module (pushing to the module-scoped receiver fixture named by `receiver`), and
    `<name>`, that simulator reset for one test with every constructor option put back to its
    value at start. `settle(sim)` runs first (e.g. to let an earlier test's pushes go out)."""
    server_name = f"_{name}_server"

    @pytest.fixture(scope="module", name=server_name)
    def server(request: pytest.FixtureRequest) -> Iterator[VendorSimulator]:
        push_url = request.getfixturevalue(receiver).url if receiver else None
        sim = simulator_class(vendor)(**({"push_url": push_url} if receiver else {}), **options)
        sim.initial = {  # type: ignore[attr-defined]
            key: copy.deepcopy(getattr(sim, key)) for key in _options(type(sim)) if hasattr(sim, key)
        }
        sim.start()
        yield sim
        sim.stop()

    @pytest.fixture(name=name)
    def fresh(request: pytest.FixtureRequest) -> VendorSimulator:
        sim: VendorSimulator = request.getfixturevalue(server_name)
        if settle is not None:
            settle(sim)
        sim.reset()
        for key, value in sim.initial.items():  # type: ignore[attr-defined]
            setattr(sim, key, copy.deepcopy(value))
        if receiver:
            request.getfixturevalue(receiver).clear()  # after settle: no push of an earlier test
        return sim

    return server, fresh


def receiver_fixtures(make: Callable[[], R], *, name: str = "receiver") -> tuple[Any, Any]:
    """`_<name>_server`, a push receiver started once for the module, and `<name>`: the same
    receiver with no requests and its first reply, for one test."""
    server_name = f"_{name}_server"

    @pytest.fixture(scope="module", name=server_name)
    def server() -> Iterator[R]:
        with make() as started:
            yield started  # type: ignore[misc]

    @pytest.fixture(name=name)
    def fresh(request: pytest.FixtureRequest) -> R:
        rec: R = request.getfixturevalue(server_name)
        rec.clear()
        rec.reply_status = 200
        rec.reply_body = rec.first_reply
        return rec

    return server, fresh
