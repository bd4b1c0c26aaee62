"""DeleteRunFunction: DELETE /v1/eval-runs/{id}."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import WRITE, create_app, lambda_entry, no_body, principal
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.delete(
    "/v1/eval-runs/<id>",
    tags=["eval-runs"],
    responses={204: {"description": "Deleted (no body)"}},
    summary="Delete a finished run: its evaluations, manifest and exports",
    description="Takes no body. A pending or running run is a 409: cancel it first "
    "(`POST /v1/eval-runs/{id}/cancel`). The run leaves every run count "
    "(`GET /v1/eval-runs` `count`). Another tenant's or a deleted run "
    "is a 404.",
)
def delete_run(id: UUID) -> Response[None]:
    no_body(router)
    runs.delete_run(principal(router, WRITE), id)
    return Response(status_code=204)


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
