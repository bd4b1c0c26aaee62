"""ListRunsFunction: GET /v1/eval-runs — newest first, from the tenant's index partition."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunListResponse, EvalRunResponse
from assay_service.models.domain import RunStatus
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.get("/v1/eval-runs", tags=["eval-runs"], summary="List eval runs, newest first")
def list_runs(
    eval_id: Annotated[UUID | None, Query()] = None,
    eval_version_id: Annotated[UUID | None, Query()] = None,
    dataset_id: Annotated[UUID | None, Query()] = None,
    project_id: Annotated[UUID | None, Query()] = None,
    status: Annotated[RunStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[EvalRunListResponse]:
    """`count` is the total number of matching runs, not the size of the page."""
    criteria = {
        k: str(v)
        for k, v in {
            "eval_id": eval_id,
            "eval_version_id": eval_version_id,
            "dataset_id": dataset_id,
            "project_id": project_id,
            "status": status,
        }.items()
        if v is not None
    }
    items, next_cursor, total = runs.list_runs(
        principal(router, READ), criteria=criteria, limit=limit, offset=offset, cursor=cursor
    )
    return json_response(
        200,
        EvalRunListResponse(
            items=[EvalRunResponse.of(r) for r in items], count=total, next_cursor=next_cursor
        ),
    )


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
