"""A fix for moto, applied by the local stack and the tests (never deployed).

moto's DynamoDB `transact_write_items` deep-copies every table it touches once per item, to
roll back on failure: a 100-item transaction on a table of 100,000 items copies ten million
items. smsrelay moves every message with a transaction (message + request counters), so on the
emulator that cost swamps everything. This version keeps DynamoDB's semantics (every condition
is checked against the state before the transaction; any failure cancels all, with a reason per
item) but backs up only the items it touches.
"""

from __future__ import annotations

import base64
import copy
import threading
import time
from collections.abc import Callable
from typing import Any

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        seen: set[tuple[str, str]] = set()
        plan: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            if op_type == "Put":
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            marker = (op["TableName"], str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None and not get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            ).expr(current):
                old = (
                    current.to_json()["Attributes"]
                    if current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    else None
                )
                errors.append(("ConditionalCheckFailed", "The conditional request failed", old))
            else:
                errors.append((None, None, None))
            plan.append((op_type, op, key))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        backups = [
            (op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key))) for _, op, key in plan
        ]
        try:
            for op_type, op, key in plan:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(
                        op["TableName"],
                        op["Item"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(op["TableName"], key)
                elif op_type == "Update":
                    _update(self, op["TableName"], key, op["UpdateExpression"], names, values)
        except Exception:
            for table_name, key, item in backups:  # put every touched item back as it was
                if item is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, item.to_json()["Attributes"])
            raise

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _cache_update_expressions()
    _check_each_expression_once()
    _patch_sqs()
    _cache_jsonpath()
    _serialize_items_directly()
    _applied = True


def _cache_update_expressions() -> None:
    """moto parses an update expression on every call; validation works on a deep copy of the tree."""
    import functools

    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    UpdateExpressionParser.make = staticmethod(functools.lru_cache(maxsize=1024)(UpdateExpressionParser.make))


def _check_each_expression_once() -> None:
    """Three of moto's ten passes over an update expression (action counts, overlapping paths,
    key attributes) depend only on the expression, its names and the table's keys: run them the
    first time such a combination is seen, not on every item."""
    from moto.dynamodb.parsing.validators import (
        ActionCountValidator,
        OverlappingPathsValidator,
        UpdateExpressionValidator,
        UpdateHashRangeKeyValidator,
    )

    static = (ActionCountValidator, OverlappingPathsValidator, UpdateHashRangeKeyValidator)
    passed: dict[tuple[Any, ...], Any] = {}  # value: the parsed expression, kept alive (ids stay unique)
    original_init = UpdateExpressionValidator.__init__
    original_validate = UpdateExpressionValidator.validate

    def __init__(
        self: Any, expression: Any, expression_attribute_names: Any, *args: Any, **kwargs: Any
    ) -> None:
        original_init(self, expression, expression_attribute_names, *args, **kwargs)
        names = tuple(sorted((expression_attribute_names or {}).items()))
        self._static_key = (id(expression), names, tuple(self.table.table_key_attrs))
        self._static_expression = expression
        if self._static_key in passed:
            self.processors = [p for p in self.processors if not isinstance(p, static)]

    def validate(self: Any) -> Any:
        node = original_validate(self)
        passed.setdefault(self._static_key, self._static_expression)
        return node

    UpdateExpressionValidator.__init__ = __init__  # type: ignore[method-assign]
    UpdateExpressionValidator.validate = validate  # type: ignore[method-assign]


def _update(
    backend: Any,
    table_name: str,
    key: dict[str, Any],
    expression: str,
    names: dict[str, str] | None,
    values: dict[str, Any] | None,
) -> None:
    """An Update inside a transaction whose condition was already checked: moto's update_item
    without its second condition parse and its whole-item deep copy (kept only for streams)."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge, ItemSizeToUpdateTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.parsing.executors import UpdateExpressionExecutor
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    table = backend.get_table(table_name)
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    item = table.get_item(hash_value, range_value)
    if item is None or table.stream_shard is not None:
        backend.update_item(
            table_name,
            key,
            update_expression=expression,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
        return
    validated = UpdateExpressionValidator(
        UpdateExpressionParser.make(expression),
        expression_attribute_names=names,
        expression_attribute_values=values,
        item=item,
        table=table,
    ).validate()
    validated.normalize()
    try:
        UpdateExpressionExecutor(validated, item, names).execute()
    except ItemSizeTooLarge as exc:
        raise ItemSizeToUpdateTooLarge() from exc


def _cache_jsonpath() -> None:
    import functools

    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


_settings_only = threading.local()


def _patch_sqs() -> None:
    from moto.sqs import models as sqs_models
    from moto.sqs.models import Queue, SQSBackend

    def skipped_when_reading_settings(counted: Callable[[Queue], int]) -> property:
        return property(lambda queue: 0 if getattr(_settings_only, "active", False) else counted(queue))

    # moto's `attributes` reads these three (a pass over every message each); only the settings
    # are wanted inside SendMessage / ReceiveMessage
    for name in (
        "approximate_number_of_messages",
        "approximate_number_of_messages_delayed",
        "approximate_number_of_messages_not_visible",
    ):
        counted = getattr(Queue, name).fget
        assert counted is not None
        setattr(Queue, name, skipped_when_reading_settings(counted))

    def settings_only(method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _settings_only.active = True
            try:
                return method(*args, **kwargs)
            finally:
                _settings_only.active = False

        return wrapper

    def unix_time_millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else moto_unix_time_millis(dt)

    moto_unix_time_millis = sqs_models.unix_time_millis
    sqs_models.unix_time_millis = unix_time_millis
    for name in ("send_message", "send_message_batch", "receive_message"):
        setattr(SQSBackend, name, settings_only(getattr(SQSBackend, name)))


#: DynamoDB operations whose answers are items: already in their wire shape after moto's
#: dynamo_to_dict, so they are written as JSON directly.
ITEM_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "TransactGetItems",
    }
)


def dynamodb_wire_json(value: Any) -> Any:
    """A DynamoDB answer as its JSON: binary values in base64, absent (None) members left out (and,
    in execute_result below, members the API does not have) -- what moto's model-driven serializer
    makes of it, without walking the service model for every
    attribute (that walk was a fifth of the harness tests' time)."""
    if isinstance(value, dict):
        return {k: dynamodb_wire_json(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [dynamodb_wire_json(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def _serialize_items_directly() -> None:
    import json

    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    model_driven = ActionResult.execute_result

    def execute_result(self: DynamoResult, context: Any) -> Any:
        if str(context.operation_model.name) not in ITEM_OPERATIONS:
            return model_driven(self, context)
        members = context.operation_model.output_shape.members  # moto adds some of its own
        answer = {k: v for k, v in self.result.items() if k in members}
        body = json.dumps(dynamodb_wire_json(answer))
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    DynamoResult.model_driven_execute_result = model_driven  # type: ignore[attr-defined]
