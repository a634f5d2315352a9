"""All DynamoDB access: one table, one module per aggregate, every status move conditional.

    requests     request, its parts, its rejections        (requests.py)
    messages     one item per recipient and its moves      (messages.py)
    claims       one dispatch claim per chunk              (claims.py)
    references   vendor references, early reports, inbound (references.py)
    suppression  the opt-out list                          (suppression.py)
    health       vendor calls, circuit, balance            (health.py)

Every write that a retry could repeat is put-if-absent or conditional: ids are derived from the
request and positions, so a retried acceptance or dispatch lands on the same items. The domain
code gets typed items (RequestRecord, PartItem, MessageItem, ReferenceItem, HealthItem,
Suppression, chunk_state.Claim), never the table's raw dicts."""

from __future__ import annotations

from collections.abc import Sequence

from ..config import Settings
from .claims import ClaimStore
from .health import HealthItem, HealthStore
from .messages import MessageItem, MessageStore, NewMessage, Transition
from .references import InboundRecord, ReferenceItem, ReferenceStore
from .requests import PartItem, PartSummary, RequestRecord, RequestStore
from .suppression import Suppression, SuppressionStore
from .table import (
    NotFound,
    StoreError,
    Table,
    derived_id,
    iso,
    message_id,
    new_request_id,
    split_message_id,
    utcnow,
)

__all__ = [
    "HealthItem",
    "InboundRecord",
    "MessageItem",
    "NewMessage",
    "NotFound",
    "PartItem",
    "PartSummary",
    "ReferenceItem",
    "RequestRecord",
    "Store",
    "StoreError",
    "Suppression",
    "Table",
    "Transition",
    "derived_id",
    "iso",
    "message_id",
    "new_request_id",
    "split_message_id",
    "utcnow",
]


class Store:
    """The table's aggregates, built once per cold start."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.table = Table(settings)
        self.requests = RequestStore(self.table)
        self.messages = MessageStore(self.table)
        self.claims = ClaimStore(self.table)
        self.references = ReferenceStore(self.table)
        self.suppression = SuppressionStore(self.table)
        self.health = HealthStore(self.table)

    def apply_transitions(
        self, transitions: Sequence[Transition]
    ) -> tuple[list[Transition], list[Transition]]:
        """Move messages (conditionally, counters with them); their vendor references are
        written first, so a report that comes while the moves run finds its message.
        Returns (applied, conflicts)."""
        self.references.put(transitions)
        return self.messages.apply(transitions)
