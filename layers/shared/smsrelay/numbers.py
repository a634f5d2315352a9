"""Phone numbers: parse, validate and format to E.164 with phonenumbers."""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat


class InvalidNumber(ValueError):
    pass


def normalise(raw: str, default_region: str = "CN") -> str:
    """A number as a caller wrote it -> E.164 ('+8613800000001'); InvalidNumber with the reason."""
    text = str(raw).strip()
    if not text:
        raise InvalidNumber("empty number")
    try:
        parsed = phonenumbers.parse(text, default_region)
    except NumberParseException as exc:
        raise InvalidNumber(f"not a phone number ({exc._msg})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid number for its country; write it in E.164 like +8613800138000")
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
