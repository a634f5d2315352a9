"""A status transition's write, as DynamoDB receives it: the attribute values built by hand are
exactly what boto3's serializer would make of them, for every move and every field."""

from __future__ import annotations

import datetime as dt

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st
from smsrelay.dal import Transition
from smsrelay.models import ALLOWED_FROM, Status
from smsrelay.vendors import VENDOR_IDS

MOVES = [(previous, status) for status, sources in ALLOWED_FROM.items() for previous in sorted(sources)]
SER, DESER = TypeSerializer(), TypeDeserializer()
text = st.none() | st.text(min_size=1, max_size=40)


@given(
    move=st.sampled_from(MOVES),
    index=st.integers(min_value=0, max_value=999_999),
    at=st.datetimes(timezones=st.just(dt.UTC)),
    vendor=st.none() | st.sampled_from(VENDOR_IDS),
    vendor_ref=text,
    code=text,
    description=text,
)
def test_hand_built_values_are_what_the_serializer_makes(
    move: tuple[Status, Status],
    index: int,
    at: dt.datetime,
    vendor: str | None,
    vendor_ref: str | None,
    code: str | None,
    description: str | None,
) -> None:
    previous, status = move
    t = Transition(
        request_id="01a212e9f5b75439ede89607",
        index=index,
        previous=previous,
        status=status,
        at=at,
        to="+8613800000001",
        vendor=vendor,
        vendor_ref=vendor_ref,
        code=code,
        description=description,
    )
    update = t.update("smsrelay")
    values = update["ExpressionAttributeValues"]
    # serialising the plain values again gives the same wire form
    assert {k: SER.serialize(DESER.deserialize(v)) for k, v in values.items()} == values
    # ...and every value is a string, as the old serialiser made of these str fields
    assert all(list(v) == ["S"] for k, v in values.items() if k not in (":empty", ":h"))
    entry = DESER.deserialize(values[":h"])[0]
    assert entry["status"] == status.value and entry.get("code") == code and entry.get("vendor") == vendor
    assert "vendor_ref" not in entry
    assert DESER.deserialize(values[":old"]) == previous.value
    assert update["ConditionExpression"] == "#s = :old"
    for name in ("vendor", "vendor_ref", "code", "description"):
        assert (f":{name}" in values) == (getattr(t, name) is not None)
