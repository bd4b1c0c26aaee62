"""ListRunsFunction: GET /v1/eval-runs — newest first, from the tenant's index partition."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunListResponse, EvalRunResponse
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.get("/v1/eval-runs", tags=["eval-runs"], summary="List eval runs, newest first")
def list_runs(
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[EvalRunListResponse]:
    items, next_cursor = runs.list_runs(principal(router, READ), limit=limit, cursor=cursor)
    return json_response(200, EvalRunListResponse(
        items=[EvalRunResponse.of(r) for r in items], count=len(items), next_cursor=next_cursor))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
