"""GetEvaluationFunction: one evaluation (GET /v1/eval/{id}) and a run's evaluations."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import (
    EvaluationResponse,
    RunEvaluationListResponse,
    RunEvaluationResponse,
    TruncatedRecord,
)
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.get("/v1/eval/<id>", tags=["evals"], summary="Get evaluation result")
def get_evaluation(id: UUID) -> Response[EvaluationResponse]:
    evaluation = runs.get_evaluation(principal(router, READ), id)
    return json_response(200, EvaluationResponse.of(evaluation))


@router.get(
    "/v1/eval-runs/<id>/evaluations",
    tags=["eval-runs"],
    summary="List a run's evaluations (record order, cursor-paged, filterable)",
)
def list_evaluations(
    id: UUID,
    metric: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[Literal["complete", "failed"] | None, Query()] = None,
    passed: Annotated[bool | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[RunEvaluationListResponse]:
    rows, next_cursor = runs.list_evaluations(
        principal(router, READ), id, metric=metric, status=status, passed=passed, limit=limit, cursor=cursor
    )
    items = [
        RunEvaluationResponse(
            **EvaluationResponse.of(e).model_dump(), record=TruncatedRecord(**r) if r else None
        )
        for e, r in rows
    ]
    return json_response(
        200, RunEvaluationListResponse(items=items, count=len(items), next_cursor=next_cursor)
    )


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
