"""EvalsFunction: evals and their immutable versions."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import (
    READ,
    WRITE,
    create_app,
    json_response,
    lambda_entry,
    no_body,
    principal,
)
from assay_service.models.api import (
    CreatedEvalResponse,
    CreateEvalRequest,
    CreateEvalVersionRequest,
    EvalListResponse,
    EvalResponse,
    EvalVersionListResponse,
    EvalVersionResponse,
)
from assay_service.services import catalog

router = APIGatewayHttpRouter()
TAGS = ["evals"]
CREATED: dict[int, OpenAPIResponse] = {201: {"description": "Created"}}


@router.post(
    "/v1/evals",
    tags=TAGS,
    responses=CREATED,
    summary="Create an eval (with `metrics`: and its version 1, atomically)",
    description="Without `metrics`: an eval with no version (`version` is null). "
    "With `metrics` (and optionally `threshold`, `judge`: the body of "
    "`POST /v1/evals/{id}/versions`): the eval and version 1 in one write "
    "— a bad metric is a 400 naming it and nothing is created; the "
    "response's `version` is version 1.",
)
def create_eval(body: CreateEvalRequest) -> Response[CreatedEvalResponse]:
    ev, version = catalog.create_eval(principal(router, WRITE), body)
    return json_response(
        201,
        CreatedEvalResponse(
            **ev.model_dump(), version=EvalVersionResponse(**version.model_dump()) if version else None
        ),
    )


@router.get("/v1/evals", tags=TAGS, summary="List evals, newest first")
def list_evals(
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[EvalListResponse]:
    items, next_cursor = catalog.list_evals(principal(router, READ), limit=limit, cursor=cursor)
    return json_response(
        200,
        EvalListResponse(
            items=[EvalResponse(**e.model_dump()) for e in items], count=len(items), next_cursor=next_cursor
        ),
    )


@router.get("/v1/evals/<id>", tags=TAGS, summary="Get an eval")
def get_eval(id: UUID) -> Response[EvalResponse]:
    return json_response(200, EvalResponse(**catalog.get_eval(principal(router, READ), id).model_dump()))


@router.delete(
    "/v1/evals/<id>",
    tags=TAGS,
    responses={204: {"description": "Deleted (no body)"}},
    summary="Delete an eval and all its versions",
    description="Takes no body. 409 while runs use the eval (`details.runs` says "
    "how many): delete those runs first. Another tenant's or a deleted "
    "eval is a 404.",
)
def delete_eval(id: UUID) -> Response[None]:
    no_body(router)
    catalog.delete_eval(principal(router, WRITE), id)
    return Response(status_code=204)


@router.post(
    "/v1/evals/<id>/versions",
    tags=TAGS,
    summary="Create an immutable version: metrics, threshold, judge settings",
    responses=CREATED,
)
def create_version(
    id: UUID,
    body: CreateEvalVersionRequest,
) -> Response[EvalVersionResponse]:
    version = catalog.create_eval_version(principal(router, WRITE), id, body)
    return json_response(201, EvalVersionResponse(**version.model_dump()))


@router.get("/v1/evals/<id>/versions", tags=TAGS, summary="List an eval's versions")
def list_versions(id: UUID) -> Response[EvalVersionListResponse]:
    items = catalog.list_eval_versions(principal(router, READ), id)
    return json_response(
        200,
        EvalVersionListResponse(
            items=[EvalVersionResponse(**v.model_dump()) for v in items], count=len(items)
        ),
    )


@router.get("/v1/eval-versions/<id>", tags=TAGS, summary="Get an eval version")
def get_version(id: UUID) -> Response[EvalVersionResponse]:
    return json_response(
        200, EvalVersionResponse(**catalog.get_eval_version(principal(router, READ), id).model_dump())
    )


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
