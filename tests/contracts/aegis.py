"""Aegis's ``GET /runs/{run_id}`` (seed 003), transcribed from its type sketch. The one
deliberate change, from the product spec: ids are UUID strings, not integers."""

from __future__ import annotations

from typing import Any

S = {"type": "string"}
S_NULL = {"type": ["string", "null"]}
NUM_NULL = {"type": ["number", "null"]}
BOOL_NULL = {"type": ["boolean", "null"]}
OBJ_NULL = {"type": ["object", "null"]}
ID = {"type": "string", "format": "uuid"}

RECORD = {
    "type": "object",
    "required": ["id", "prompt", "input", "context", "output", "golden_answer"],
    "properties": {
        "id": {"type": ["string", "null"]},
        **{
            k: {**S_NULL, "maxLength": 100} for k in ("prompt", "input", "context", "output", "golden_answer")
        },
    },
}

EVALUATION: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "run_id",
        "record_index",
        "metric",
        "record",
        "result",
        "threshold",
        "explanation",
        "model_slug",
        "metric_args",
        "started_at",
        "finished_at",
        "evaluation_cost",
        "is_success",
        "is_gte_threshold",
        "eval_metadata",
    ],
    "properties": {
        "id": ID,
        "run_id": ID,
        "record_index": {"type": "integer"},
        "metric": S,
        "record": RECORD,
        "result": {**NUM_NULL, "minimum": 0, "maximum": 100},
        "threshold": {"type": "number", "minimum": 0, "maximum": 100},
        "explanation": S_NULL,
        "model_slug": S_NULL,
        "metric_args": OBJ_NULL,
        "started_at": S,
        "finished_at": S_NULL,
        "evaluation_cost": S_NULL,
        "is_success": BOOL_NULL,
        "is_gte_threshold": BOOL_NULL,
        "eval_metadata": OBJ_NULL,
    },
}

RUN: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "user",
        "author_email",
        "run_type",
        "run_source",
        "dataset",
        "data_collection",
        "org_id",
        "number_of_metrics",
        "result",
        "threshold",
        "model_slug",
        "alias",
        "aggregate_results",
        "total_cost",
        "started_at",
        "finished_at",
        "is_gte_threshold",
        "evaluations",
    ],
    "properties": {
        "id": ID,
        "user": S_NULL,
        "author_email": S,
        "run_type": S,
        "run_source": S,
        "dataset": S_NULL,
        "data_collection": S_NULL,
        "org_id": {"type": ["integer", "null"]},
        "number_of_metrics": {"type": "integer"},
        "result": {**NUM_NULL, "minimum": 0, "maximum": 100},
        "threshold": {"type": "number", "minimum": 0, "maximum": 100},
        "model_slug": S_NULL,
        "alias": S_NULL,
        "aggregate_results": {
            "type": ["object", "null"],
            "additionalProperties": {**NUM_NULL, "minimum": 0, "maximum": 100},
        },
        "total_cost": {"type": ["number", "string", "null"]},
        "started_at": S,
        "finished_at": S_NULL,
        "is_gte_threshold": BOOL_NULL,
        "evaluations": {"type": "array", "items": EVALUATION},
    },
}
