"""Aymara's ``GET /v2/eval-runs`` (seed 004), transcribed from its response attributes."""

from __future__ import annotations

from typing import Any

S = {"type": "string"}
S_NULL = {"type": ["string", "null"]}
DT = {"type": "string", "format": "date-time"}
STATUS = {"type": "string", "enum": ["created", "processing", "finished", "failed"]}

EVALUATION: dict[str, Any] = {
    "type": ["object", "null"],
    "required": ["ai_description", "eval_type"],
    "properties": {
        "eval_uuid": S_NULL,
        "name": S_NULL,
        "ai_description": S,
        "ai_instructions": S_NULL,
        "eval_type": S,
        "eval_instructions": S_NULL,
        "language": S_NULL,
        "modality": {"type": "string", "enum": ["text", "image"]},
        "ground_truth": {"type": ["string", "object", "null"]},
        "num_prompts": {"type": ["integer", "null"]},
        "prompt_examples": {"type": ["array", "null"]},
        "is_jailbreak": {"type": "boolean"},
        "is_sandbox": {"type": "boolean"},
        "workspace_uuid": S_NULL,
        "status": {"anyOf": [STATUS, {"type": "null"}]},
        "created_at": {"anyOf": [DT, {"type": "null"}]},
        "updated_at": {"anyOf": [DT, {"type": "null"}]},
    },
}

RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["prompt_uuid"],
    "properties": {
        "prompt_uuid": S,
        "thread_uuid": S_NULL,
        "turn_number": {"type": "integer"},
        "continue_thread": {"type": "boolean"},
        "content": {"type": ["string", "object", "null"]},
        "content_type": {"type": "string", "enum": ["text", "image"]},
        "exclude_from_scoring": {"type": "boolean"},
        "ai_refused": {"type": "boolean"},
        "response_uuid": S_NULL,
        "explanation": S_NULL,
        "confidence": {"type": ["number", "null"]},
        "is_passed": {"type": ["boolean", "null"]},
        "next_prompt": {"type": ["object", "null"]},
    },
}

EVAL_RUN: dict[str, Any] = {
    "type": "object",
    "required": ["eval_run_uuid", "eval_uuid", "status", "created_at", "updated_at"],
    "properties": {
        "eval_run_uuid": S,
        "eval_uuid": S,
        "name": S_NULL,
        "status": STATUS,
        "created_at": DT,
        "updated_at": DT,
        "evaluation": EVALUATION,
        "ai_description": S_NULL,
        "workspace_uuid": S_NULL,
        "pass_rate": {"type": ["number", "null"]},
        "num_prompts": {"type": ["integer", "null"]},
        "num_responses_scored": {"type": ["integer", "null"]},
        "responses": {"type": ["array", "null"], "items": RESPONSE},
    },
}

LIST: dict[str, Any] = {
    "type": "object",
    "required": ["items", "count"],
    "properties": {"items": {"type": "array", "items": EVAL_RUN}, "count": {"type": "integer"}},
}

ERROR: dict[str, Any] = {  # Aymara's error body; ours is compatible through `code` + message
    "type": "object",
    "required": ["error"],
}
