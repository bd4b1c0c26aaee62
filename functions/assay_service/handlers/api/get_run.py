"""GetRunFunction: GET /v1/eval-runs/{id} — details, aggregates, verdict."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunResponse
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.get("/v1/eval-runs/<id>", tags=["eval-runs"], summary="Get an eval run")
def get_run(id: UUID) -> Response[EvalRunResponse]:  # noqa: A002
    return json_response(200, EvalRunResponse.of(runs.get_run(principal(router, READ), id)))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
