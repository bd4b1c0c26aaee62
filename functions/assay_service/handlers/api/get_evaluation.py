"""GetEvaluationFunction: GET /v1/eval/{id} — one evaluation in TruLayer's shape."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvaluationResponse
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.get("/v1/eval/<id>", tags=["evals"], summary="Get evaluation result")
def get_evaluation(id: UUID) -> Response[EvaluationResponse]:  # noqa: A002
    evaluation = runs.get_evaluation(principal(router, READ), id)
    return json_response(200, EvaluationResponse.of(evaluation))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
