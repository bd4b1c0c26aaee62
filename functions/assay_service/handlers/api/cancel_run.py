"""CancelRunFunction: POST /v1/eval-runs/{id}/cancel."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import WRITE, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunResponse
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.post(
    "/v1/eval-runs/<id>/cancel",
    tags=["eval-runs"],
    summary="Cancel a pending or running run (counts freeze as they are)",
)
def cancel(id: UUID) -> Response[EvalRunResponse]:
    return json_response(200, EvalRunResponse.of(runs.cancel_run(principal(router, WRITE), id)))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
