"""AWS::LanguageExtensions' Fn::ForEach, expanded as CloudFormation expands it before the SAM transform.

template.yaml generates its per-vendor resources, conditions and outputs from the one `Vendors`
list with Fn::ForEach. The local stack's reader expands them here; Fn::FindInMap's DefaultValue
is the reader's (template.py). Standard library only: tests/sam_transform.py imports this file
under the SAM CLI's venv.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FOR_EACH = "Fn::ForEach::"
SECTIONS = ("Conditions", "Resources", "Outputs")  # where CloudFormation allows Fn::ForEach


class LanguageExtensionError(ValueError):
    """A Fn::ForEach the expansion cannot apply (bad shape, unknown collection, duplicate key)."""


def uses_language_extensions(template: Mapping[str, Any]) -> bool:
    transform = template.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return "AWS::LanguageExtensions" in names


def expand(template: Mapping[str, Any], parameters: Mapping[str, str | list[str]]) -> dict[str, Any]:
    """A copy of `template` with every Fn::ForEach loop expanded.

    `parameters` are the parameter values a collection `{"Ref": Name}` reads (a string is split on
    commas, as a CommaDelimitedList is).
    """
    out = dict(template)
    for section in SECTIONS:
        if isinstance(out.get(section), dict):
            out[section] = _expand(out[section], parameters)
    return out


def _expand(value: Any, parameters: Mapping[str, str | list[str]]) -> Any:
    if isinstance(value, list):
        return [_expand(v, parameters) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        generated = (
            _loop(key, item, parameters) if key.startswith(FOR_EACH) else {key: _expand(item, parameters)}
        )
        for new_key, new_value in generated.items():
            if new_key in out:
                raise LanguageExtensionError(f"{key}: {new_key} is defined twice")
            out[new_key] = new_value
    return _plain_reference(out)


def _loop(name: str, spec: Any, parameters: Mapping[str, str | list[str]]) -> dict[str, Any]:
    if not (
        isinstance(spec, list) and len(spec) == 3 and isinstance(spec[0], str) and isinstance(spec[2], dict)
    ):
        raise LanguageExtensionError(f"{name}: expected [Identifier, Collection, {{OutputKey: OutputValue}}]")
    identifier, collection, fragment = spec
    out: dict[str, Any] = {}
    for item in _collection(name, collection, parameters):
        for key, value in _expand(_substitute(fragment, identifier, item), parameters).items():
            if key in out:
                raise LanguageExtensionError(f"{name}: {key} is generated twice (is {item!r} listed twice?)")
            out[key] = value
    return out


def _collection(name: str, collection: Any, parameters: Mapping[str, str | list[str]]) -> list[str]:
    if isinstance(collection, dict) and list(collection) == ["Ref"]:
        parameter = collection["Ref"]
        if parameter not in parameters:
            raise LanguageExtensionError(f"{name}: its collection names no parameter ({parameter!r})")
        given = parameters[parameter]
        collection = given.split(",") if isinstance(given, str) else list(given)
    if not isinstance(collection, list) or not all(isinstance(i, str | int | float) for i in collection):
        raise LanguageExtensionError(
            f"{name}: the collection must be a list of values or a Ref to a list parameter"
        )
    return [str(i) for i in collection]


def _substitute(value: Any, identifier: str, item: str) -> Any:
    """${Identifier} -> the item, &{Identifier} -> the item's letters and digits, Ref Identifier -> the item."""
    if isinstance(value, str):
        alphanumeric = re.sub(r"[^A-Za-z0-9]", "", item)
        return value.replace("${" + identifier + "}", item).replace("&{" + identifier + "}", alphanumeric)
    if isinstance(value, list):
        return [_substitute(v, identifier, item) for v in value]
    if isinstance(value, dict):
        if value == {"Ref": identifier}:
            return item
        return {_substitute(k, identifier, item): _substitute(v, identifier, item) for k, v in value.items()}
    return value


def _plain_reference(value: dict[str, Any]) -> dict[str, Any]:
    """Ref/GetAtt of a name the loop spelt (`{"Ref": {"Fn::Sub": "Callback${Vendor}LogGroup"}}`, the
    form cfn-lint follows) becomes the plain reference once nothing is left to substitute."""
    if list(value) == ["Ref"] and _resolved_sub(value["Ref"]) is not None:
        return {"Ref": _resolved_sub(value["Ref"])}
    if list(value) == ["Fn::GetAtt"] and isinstance(value["Fn::GetAtt"], list) and value["Fn::GetAtt"]:
        target = _resolved_sub(value["Fn::GetAtt"][0])
        if target is not None:
            return {"Fn::GetAtt": [target, *value["Fn::GetAtt"][1:]]}
    return value


def _resolved_sub(value: Any) -> str | None:
    if not (isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str)):
        return None
    return value["Fn::Sub"] if "${" not in value["Fn::Sub"] else None
