"""DatasetsFunction: datasets and their immutable versions."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
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
    CreateDatasetRequest,
    CreateDatasetVersionRequest,
    CreatedDatasetResponse,
    DatasetListResponse,
    DatasetRecordListResponse,
    DatasetResponse,
    DatasetVersionListResponse,
    DatasetVersionResponse,
    UploadResponse,
)
from assay_service.services import catalog

router = APIGatewayHttpRouter()
TAGS = ["datasets"]
CREATED: dict[int, OpenAPIResponse] = {201: {"description": "Created"}}
DELETED: dict[int, OpenAPIResponse] = {204: {"description": "Deleted (no body)"}}


@router.post(
    "/v1/datasets",
    tags=TAGS,
    responses=CREATED,
    summary="Create a dataset (with `records`: and its version 1, atomically)",
    description="Without `records`: an empty dataset (`version` is null). With "
    "`records`: the dataset and version 1 together — any bad record is a "
    "400 naming it and nothing is created; the response's `version` is "
    "version 1.",
)
def create_dataset(body: CreateDatasetRequest) -> Response[CreatedDatasetResponse]:
    dataset, version = catalog.create_dataset(principal(router, WRITE), body)
    return json_response(
        201,
        CreatedDatasetResponse(
            **dataset.model_dump(),
            version=DatasetVersionResponse(**version.model_dump()) if version else None,
        ),
    )


@router.get("/v1/datasets", tags=TAGS, summary="List datasets, newest first")
def list_datasets(
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[DatasetListResponse]:
    items, next_cursor = catalog.list_datasets(principal(router, READ), limit=limit, cursor=cursor)
    return json_response(
        200,
        DatasetListResponse(
            items=[DatasetResponse(**d.model_dump()) for d in items],
            count=len(items),
            next_cursor=next_cursor,
        ),
    )


@router.get("/v1/datasets/<id>", tags=TAGS, summary="Get a dataset")
def get_dataset(id: UUID) -> Response[DatasetResponse]:
    return json_response(
        200, DatasetResponse(**catalog.get_dataset(principal(router, READ), id).model_dump())
    )


@router.delete(
    "/v1/datasets/<id>",
    tags=TAGS,
    responses=DELETED,
    summary="Delete a dataset: its versions, their records and pending uploads",
    description="Takes no body. 409 while runs use the dataset (`details.runs` "
    "says how many): delete those runs first. Another tenant's or a "
    "deleted dataset is a 404.",
)
def delete_dataset(id: UUID) -> Response[None]:
    no_body(router)
    catalog.delete_dataset(principal(router, WRITE), id)
    return Response(status_code=204)


@router.post(
    "/v1/datasets/<id>/versions",
    tags=TAGS,
    summary="Create an immutable version from inline records",
    responses=CREATED,
)
def create_version(
    id: UUID,
    body: CreateDatasetVersionRequest,
) -> Response[DatasetVersionResponse]:
    version = catalog.create_dataset_version(
        principal(router, WRITE), id, records=body.records, upload_id=body.upload_id, strict=body.strict
    )
    return json_response(201, DatasetVersionResponse(**version.model_dump()))


@router.post(
    "/v1/datasets/<id>/uploads",
    tags=TAGS,
    responses=CREATED,
    summary="Get a presigned URL to PUT a JSONL file, then create a version from it",
    description="Takes no body (none, or `{}`).",
)
def create_upload(id: UUID) -> Response[UploadResponse]:
    no_body(router)
    upload_id, url, expires_at = catalog.create_upload(principal(router, WRITE), id)
    return json_response(
        201,
        UploadResponse(
            upload_id=upload_id,
            url=url,
            expires_at=expires_at,
            headers={"Content-Type": catalog.UPLOAD_CONTENT_TYPE},
        ),
    )


@router.get(
    "/v1/datasets/<id>/versions/<version>/records", tags=TAGS, summary="Read a version's records, paged"
)
def read_records(
    id: UUID,
    version: Annotated[int, Path(ge=1)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[DatasetRecordListResponse]:
    records, next_cursor = catalog.read_records(
        principal(router, READ), id, version, limit=limit, cursor=cursor
    )
    return json_response(
        200, DatasetRecordListResponse(items=records, count=len(records), next_cursor=next_cursor)
    )


@router.get("/v1/datasets/<id>/versions", tags=TAGS, summary="List a dataset's versions")
def list_versions(id: UUID) -> Response[DatasetVersionListResponse]:
    items = catalog.list_dataset_versions(principal(router, READ), id)
    return json_response(
        200,
        DatasetVersionListResponse(
            items=[DatasetVersionResponse(**v.model_dump()) for v in items], count=len(items)
        ),
    )


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
