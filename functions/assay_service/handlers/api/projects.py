"""ProjectsFunction: the tenant's projects (Aymara's workspaces)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, WRITE, create_app, json_response, lambda_entry, principal
from assay_service.models.api import CreateProjectRequest, ProjectListResponse, ProjectResponse
from assay_service.services import catalog

router = APIGatewayHttpRouter()
TAGS = ["projects"]


@router.post(
    "/v1/projects", tags=TAGS, summary="Create a project", responses={201: {"description": "Created"}}
)
def create_project(body: CreateProjectRequest) -> Response[ProjectResponse]:
    project = catalog.create_project(principal(router, WRITE), body)
    return json_response(201, ProjectResponse(**project.model_dump()))


@router.get("/v1/projects", tags=TAGS, summary="List projects, newest first")
def list_projects(
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[ProjectListResponse]:
    items, next_cursor = catalog.list_projects(principal(router, READ), limit=limit, cursor=cursor)
    return json_response(
        200,
        ProjectListResponse(
            items=[ProjectResponse(**p.model_dump()) for p in items],
            count=len(items),
            next_cursor=next_cursor,
        ),
    )


@router.get("/v1/projects/<id>", tags=TAGS, summary="Get a project")
def get_project(id: UUID) -> Response[ProjectResponse]:
    return json_response(
        200, ProjectResponse(**catalog.get_project(principal(router, READ), id).model_dump())
    )


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
