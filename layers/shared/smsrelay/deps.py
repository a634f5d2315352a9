"""What every function needs, built once per cold start and passed explicitly: settings, the
store, the vendor adapters and the event publisher. Nothing else reads a global setting."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .dal import Store
from .events import Publisher
from .vendor_config import Vendors


@dataclass(frozen=True)
class Deps:
    settings: Settings
    store: Store
    vendors: Vendors
    events: Publisher

    @classmethod
    def build(cls, settings: Settings) -> Deps:
        return cls(settings, Store(settings), Vendors(settings), Publisher(settings.event_bus_name))

    @classmethod
    def from_env(cls) -> Deps:
        """A function's cold start: the settings its template set in the environment."""
        return cls.build(Settings.from_env())
