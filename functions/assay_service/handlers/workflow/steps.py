"""Shared entry for workflow steps: parse the input model, log, return a JSON-safe dict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from assay_service.observability import get_logger

I = TypeVar("I", bound=BaseModel)  # noqa: E741


def step(
    input_model: type[I], fn: Callable[[I], BaseModel], *, log_keys: dict[str, str] | None = None
) -> Callable[[dict, Any], dict]:
    """The handler of one workflow step; ``log_keys`` go on every line it logs."""
    logger = get_logger()

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        parsed = input_model.model_validate(event)
        logger.append_keys(run_id=str(getattr(parsed, "run_id", "")), **(log_keys or {}))
        result = fn(parsed)
        logger.info("step done", extra={"result": result.model_dump(mode="json")})
        return result.model_dump(mode="json")

    return handler
