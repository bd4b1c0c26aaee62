"""DynamoDB attribute values from Python values and back, and models as items."""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

# DynamoDB attribute values are built here, not by boto3.dynamodb.types: importing that
# module imports boto3 and s3transfer (~380 ms of every cold start, uncompiled) for two small
# functions. Same wire format as boto3's TypeSerializer/TypeDeserializer (property-tested
# against them in tests/unit/test_dynamodb_values.py), except: floats are accepted (stored
# exactly as ``repr`` prints them), numbers come back as int or float rather than Decimal,
# and binary values as ``bytes`` rather than boto3's ``Binary`` wrapper.
_NUMBER_CONTEXT = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


def _number(value: int | float | Decimal) -> str:
    text = str(_NUMBER_CONTEXT.create_decimal(repr(value) if isinstance(value, float) else value))
    if text in ("Infinity", "-Infinity", "NaN", "-NaN", "sNaN", "-sNaN"):
        raise TypeError(f"DynamoDB cannot store the number {value!r}")
    return text


def _attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB attribute value (``{"S": ...}``, ``{"M": ...}``, …)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": value}
    if isinstance(value, Mapping):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [_attribute(v) for v in value]}
    if isinstance(value, AbstractSet) and value:
        if all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
            return {"NS": [_number(v) for v in value]}
        if all(isinstance(v, bytes | bytearray) for v in value):
            return {"BS": list(value)}
    raise TypeError(f"DynamoDB cannot store a {type(value).__name__}: {value!r:.80}")


def _python_number(text: str) -> int | float:
    number = _NUMBER_CONTEXT.create_decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def _value(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value as Python (numbers as int or float, binary as bytes)."""
    ((kind, raw),) = attribute.items()
    if kind == "S":
        return raw
    if kind == "N":
        return _python_number(raw)
    if kind == "M":
        return {k: _value(v) for k, v in raw.items()}
    if kind == "L":
        return [_value(v) for v in raw]
    if kind in ("BOOL", "B"):
        return raw
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(raw)
    if kind == "NS":
        return {_python_number(v) for v in raw}
    if kind == "BS":
        return set(raw)
    raise TypeError(f"unknown DynamoDB attribute type {kind!r}")


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _attribute(v) for k, v in item.items() if v is not None}


def expression_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """ExpressionAttributeValues: every value named, None as NULL. (``serialize`` drops
    None, which suits an item, but a value an expression names must be there, or DynamoDB
    rejects the whole request: "An expression attribute value used in expression is not
    defined".)"""
    return {k: _attribute(v) for k, v in values.items()}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _value(v) for k, v in item.items()}


# Attributes holding nested data are stored as JSON text: cheaper to read and write
# than DynamoDB maps, and never updated in place.
_JSON_FIELDS = frozenset(
    {"metrics", "aggregates", "judge", "metadata", "generation", "rate_limits", "per_model_usage"}
)


def model_item(model: BaseModel, **keys: Any) -> dict[str, Any]:
    data = model.model_dump(mode="json")
    for name in _JSON_FIELDS & data.keys():
        data[name] = json.dumps(data[name], separators=(",", ":"))
    return {**data, **keys}


def item_model(cls: type[M], item: Mapping[str, Any]) -> M:
    fields = cls.model_fields
    data = {k: v for k, v in item.items() if k in fields}
    for name in _JSON_FIELDS & data.keys():
        if isinstance(data[name], str):
            data[name] = json.loads(data[name])
    return cls.model_validate(data)
