"""TruLayer's documented shapes, transcribed verbatim from ../shared/seeds (000–002: OpenAPI
components; 001: the Evaluation page). ``nullable: true`` is OpenAPI 3.0 spelling; it is
rendered here as JSON Schema ``type: [T, "null"]``, which is what it means."""

from __future__ import annotations

from typing import Any

UUID = {"type": "string", "format": "uuid"}
DATETIME = {"type": "string", "format": "date-time"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


EVAL_RUN: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "tenant_id",
        "dataset_id",
        "eval_version_id",
        "status",
        "item_count",
        "completed_count",
        "created_at",
    ],
    "properties": {
        "id": UUID,
        "tenant_id": UUID,
        "dataset_id": UUID,
        "eval_version_id": UUID,
        "status": {"type": "string", "enum": ["pending", "running", "completed", "failed"]},
        "item_count": {"type": "integer"},
        "completed_count": {"type": "integer"},
        "started_at": nullable(DATETIME),
        "completed_at": nullable(DATETIME),
        "error_message": nullable({"type": "string"}),
        "created_at": DATETIME,
    },
}

EVAL_RUN_EXPORT_ITEM: dict[str, Any] = {
    "type": "object",
    "required": ["id", "trace_id", "metric_name", "evaluator_type", "status", "created_at"],
    "properties": {
        "id": UUID,
        "trace_id": UUID,
        "metric_name": {"type": "string"},
        "evaluator_type": {"type": "string"},
        "status": {"type": "string"},
        "score": nullable({"type": "number"}),
        "label": nullable({"type": "string"}),
        "reasoning": nullable({"type": "string"}),
        "created_at": DATETIME,
    },
}

EVAL_RUN_EXPORT_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["run", "items"],
    "properties": {"run": EVAL_RUN, "items": {"type": "array", "items": EVAL_RUN_EXPORT_ITEM}},
}

EVALUATION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "trace_id", "project_id", "metric_name", "evaluator_type", "status", "context"],
    "properties": {
        "id": UUID,
        "trace_id": UUID,
        "project_id": UUID,
        "metric_name": {"type": "string"},
        "evaluator_type": {"type": "string", "enum": ["llm", "rule"]},
        "status": {"type": "string", "enum": ["pending", "running", "complete", "failed"]},
        "context": {"type": "string", "enum": ["fresh", "remediation"]},
        "score": nullable({"type": "number"}),
        "label": nullable({"type": "string"}),
        "reasoning": nullable({"type": "string"}),
        "source_action_id": nullable(UUID),
        "original_evaluation_id": nullable(UUID),
    },
}

ERROR_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


def validate(instance: Any, schema: dict[str, Any]) -> None:
    """Validate with formats checked (uuid, date-time), raising on the first violation."""
    import jsonschema

    jsonschema.validate(
        instance,
        schema,
        cls=jsonschema.Draft202012Validator,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
