"""GIVEN schemas and JSON instances, WHEN the json_schema scorer validates, THEN it agrees
with ``jsonschema``'s Draft202012Validator (validity, and the first violation's path is
one jsonschema reports), and rejects the schemas jsonschema rejects."""

from __future__ import annotations

import json

import jsonschema
import pytest
from assay_service.domain.scorers import get_scorer, validate_args
from assay_service.domain.scorers.jsonschema_lite import first_violation
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

SCHEMAS = [
    True,
    False,
    {},
    {
        "type": "object",
        "required": ["name", "price"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 5},
            "price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 3},
        },
    },
    {"type": ["integer", "null"], "minimum": -3, "maximum": 7},
    {"enum": [1, "1", True, None, [1, 2], {"a": 1}]},
    {"const": {"a": [1, 2.0]}},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "items": False},
    {"type": "array", "contains": {"type": "integer"}, "minContains": 2, "maxContains": 3},
    {"anyOf": [{"type": "string", "pattern": "^a"}, {"type": "integer", "multipleOf": 3}]},
    {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 2}]},
    {"not": {"type": "string"}},
    {"if": {"type": "integer"}, "then": {"minimum": 0}, "else": {"type": "string"}},
    {
        "type": "object",
        "patternProperties": {"^x_": {"type": "integer"}},
        "additionalProperties": {"type": "string"},
        "propertyNames": {"maxLength": 4},
        "minProperties": 1,
        "maxProperties": 3,
    },
    {"type": "object", "dependentRequired": {"a": ["b"]}, "dependentSchemas": {"c": {"required": ["d"]}}},
    {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["value"],
            }
        },
        "$ref": "#/$defs/node",
    },
    {"allOf": [{"type": "string"}, {"minLength": 2}, {"format": "email"}]},
]

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-10, 10)
    | st.floats(-10, 10, allow_nan=False)
    | st.sampled_from(["", "a", "ab", "abcdef", "x_1", "b"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["name", "price", "tags", "a", "b", "c", "d", "x_1", "value", "children", "long_key"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _agree(schema, instance) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    violation = first_violation(instance, schema)
    assert (violation is None) == validator.is_valid(instance), (schema, instance, violation)
    if violation is not None:
        paths = {tuple(e.absolute_path) for e in validator.iter_errors(instance)}
        assert violation.path in paths, (schema, instance, violation, paths)


@settings(derandomize=True, max_examples=150, deadline=None, database=None)
@given(instance=JSON)
@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: json.dumps(s)[:40])
def test_validity_and_path_agree_with_jsonschema(schema, instance):
    _agree(schema, instance)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strin"},
        {"type": []},
        {"minLength": -1},
        {"maxItems": 1.5},
        {"multipleOf": 0},
        {"required": "name"},
        {"required": ["a", "a"]},
        {"properties": {"a": 3}},
        {"allOf": []},
        {"pattern": "("},
        {"enum": "a"},
        {"uniqueItems": "yes"},
        {"$ref": 5},
        42,
        "object",
    ],
)
def test_invalid_schemas_are_rejected_like_jsonschema(schema):
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.Draft202012Validator.check_schema(schema)
    with pytest.raises(ValidationError, match="invalid JSON Schema|valid dictionary|bool"):
        validate_args(get_scorer("json_schema"), {"schema": schema})
