"""GetRunFunction: GET /v1/eval-runs/{id} — details, aggregates, verdict — and
GET /v1/eval-runs/{id}/compare — the run against a baseline run, record by record."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunResponse
from assay_service.models.compare import EvalRunComparisonResponse
from assay_service.services import compare, runs

router = APIGatewayHttpRouter()


@router.get("/v1/eval-runs/<id>", tags=["eval-runs"], summary="Get an eval run")
def get_run(id: UUID) -> Response[EvalRunResponse]:
    return json_response(200, EvalRunResponse.of(runs.get_run(principal(router, READ), id)))


@router.get(
    "/v1/eval-runs/<id>/compare",
    tags=["eval-runs"],
    summary="Compare a run with a baseline run, record by record",
)
def compare_runs(
    id: UUID,
    baseline: Annotated[UUID, Query(description="The run to compare against (same tenant).")],
    confidence: Annotated[float, Query(ge=0.8, le=0.99)] = 0.95,
    limit: Annotated[int, Query(ge=1, le=100, description="Size of `regressions` and `improvements`.")] = 20,
) -> Response[EvalRunComparisonResponse]:
    """Per-metric deltas over records matched by id, a sign test and a paired bootstrap CI;
    `significant` = the CI excludes 0 and p < 1 − confidence. Both runs must be completed."""
    result = compare.compare(principal(router, READ), id, baseline, confidence=confidence, limit=limit)
    return json_response(200, EvalRunComparisonResponse.model_validate(asdict(result)))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
