"""ExportRunFunction: GET /v1/eval-runs/{id}/export — inline, 303 to S3, or a link."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service import dependencies as deps
from assay_service.domain.exports import FORMATS
from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunExportResponse, ExportLinkResponse
from assay_service.services import runs
from assay_service.settings import get_settings

router = APIGatewayHttpRouter()


@router.get(
    "/v1/eval-runs/<id>/export",
    tags=["eval-runs"],
    summary="Export eval run results",
    responses={
        200: {
            "description": "The export (inline, `Content-Disposition: attachment`), "
            "or with `delivery=link` an ExportLinkResponse",
            "content": {"application/json": {"model": EvalRunExportResponse}},
        },
        303: {"description": "Too large to inline: follow Location (presigned S3)"},
    },
)
def export_run(
    id: UUID,
    format: Annotated[Literal["json", "jsonl", "csv"], Query()] = "json",
    delivery: Annotated[Literal["inline", "link"], Query()] = "inline",
):  # the body is the stored artifact, served as is (validated when finalize wrote it)
    run, key, size = runs.export_location(principal(router, READ), id, format)
    filename = f"eval-run-{run.id}.{format}"
    content_type = FORMATS[format]
    settings = get_settings()
    if delivery == "link" or size > settings.export_inline_max_bytes:
        url, expires_at = deps.artifacts().presign_get(
            key, filename=filename, content_type=content_type, expires_in=settings.presign_expiry_seconds
        )
        if delivery == "link":
            return json_response(
                200, ExportLinkResponse(url=url, expires_at=expires_at, format=format, size_bytes=size)
            )
        return Response(
            status_code=303,
            headers={"Location": url, "Content-Disposition": f'attachment; filename="{filename}"'},
            body="",
        )
    body = deps.artifacts().get_bytes(key).decode()
    return Response(
        status_code=200,
        content_type=content_type,
        body=body,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
