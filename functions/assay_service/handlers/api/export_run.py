"""ExportRunFunction: GET /v1/eval-runs/{id}/export — inline, 303 to S3, or a link."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunExportResponse, ExportLinkResponse
from assay_service.services import runs

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
    export = runs.export_run(principal(router, READ), id, format, link=delivery == "link")
    disposition = {"Content-Disposition": f'attachment; filename="{export.filename}"'}
    if export.link is not None:
        url, expires_at = export.link
        if delivery == "link":
            return json_response(
                200, ExportLinkResponse(url=url, expires_at=expires_at, format=format, size_bytes=export.size)
            )
        return Response(status_code=303, headers={"Location": url, **disposition}, body="")
    return Response(status_code=200, content_type=export.content_type, body=export.body, headers=disposition)


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
