"""CompatViewsFunction: Aegis's run details and Aymara's run list, over the native data."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.compat import AegisRun, AymaraEvalRunList
from assay_service.services import compat

router = APIGatewayHttpRouter()


@router.get(
    "/runs/<run_id>",
    tags=["compatibility"],
    summary="Aegis: run details (0–100 scale, evaluations with truncated records)",
)
def aegis_run(run_id: UUID) -> Response[AegisRun]:
    # A plain dict: the resolver validates it against AegisRun once, on the way out.
    return json_response(200, compat.aegis_run(principal(router, READ), run_id))


@router.get("/v2/eval-runs", tags=["compatibility"], summary="Aymara: list eval runs")
def aymara_runs(
    eval_uuid: Annotated[UUID | None, Query()] = None,
    workspace_uuid: Annotated[UUID | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    include_responses: Annotated[
        bool, Query(description="Fill `responses` (first 100 records of each finished run).")
    ] = False,
) -> Response[AymaraEvalRunList]:
    body: dict[str, Any] = compat.aymara_runs(
        principal(router, READ),
        eval_uuid=eval_uuid,
        workspace_uuid=workspace_uuid,
        limit=limit,
        offset=offset,
        with_responses=include_responses,
    )
    return json_response(200, body)


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
