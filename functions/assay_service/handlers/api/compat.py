"""CompatViewsFunction: Aegis's run details and Aymara's runs, responses and evals, over the
native data (read-only)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.compat import (
    AegisRun,
    AymaraEval,
    AymaraEvalList,
    AymaraEvalRun,
    AymaraEvalRunList,
    AymaraResponseList,
)
from assay_service.services import compat

router = APIGatewayHttpRouter()

# Aymara's offset paging: 1–100 a page. A run's responses go as deep as its records (a
# dataset version holds at most 100,000,000, settings.max_records_per_version's bound).
Limit = Annotated[int, Query(ge=1, le=100)]
ListOffset = Annotated[int, Query(ge=0, le=100_000)]
ResponsesOffset = Annotated[int, Query(ge=0, le=100_000_000)]
# Aymara's workspace is a project: a run or eval of another project is a 404, as another
# tenant's is; on a list, a filter.
Workspace = Annotated[
    UUID | None, Query(description="A project (Aymara's workspace): only what belongs to it.")
]
IncludeResponses = Annotated[
    bool, Query(description="Fill `responses` (first 100 records of each finished run).")
]


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
    limit: Limit = 100,
    offset: ListOffset = 0,
    include_responses: IncludeResponses = False,
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


@router.get("/v2/eval-runs/<eval_run_uuid>", tags=["compatibility"], summary="Aymara: get an eval run")
def aymara_run(
    eval_run_uuid: UUID,
    workspace_uuid: Workspace = None,
    include_responses: IncludeResponses = False,
) -> Response[AymaraEvalRun]:
    body = compat.aymara_get_run(
        principal(router, READ),
        eval_run_uuid,
        workspace_uuid=workspace_uuid,
        with_responses=include_responses,
    )
    return json_response(200, body)


@router.get(
    "/v2/eval-runs/<eval_run_uuid>/responses",
    tags=["compatibility"],
    summary="Aymara: an eval run's responses (one per record, in record order), offset-paged",
)
def aymara_run_responses(
    eval_run_uuid: UUID,
    workspace_uuid: Workspace = None,
    limit: Limit = 100,
    offset: ResponsesOffset = 0,
) -> Response[AymaraResponseList]:
    body = compat.aymara_run_responses(
        principal(router, READ), eval_run_uuid, workspace_uuid=workspace_uuid, limit=limit, offset=offset
    )
    return json_response(200, body)


@router.get("/v2/evals", tags=["compatibility"], summary="Aymara: list evals")
def aymara_evals(
    workspace_uuid: Workspace = None,
    limit: Limit = 100,
    offset: ListOffset = 0,
) -> Response[AymaraEvalList]:
    body = compat.aymara_evals(
        principal(router, READ), workspace_uuid=workspace_uuid, limit=limit, offset=offset
    )
    return json_response(200, body)


@router.get("/v2/evals/<eval_uuid>", tags=["compatibility"], summary="Aymara: get an eval")
def aymara_eval(eval_uuid: UUID, workspace_uuid: Workspace = None) -> Response[AymaraEval]:
    body = compat.aymara_get_eval(principal(router, READ), eval_uuid, workspace_uuid=workspace_uuid)
    return json_response(200, body)


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
