"""ScheduleRunFunction: POST /v1/datasets/{id}/runs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import WRITE, create_app, json_response, lambda_entry, principal
from assay_service.models.api import EvalRunResponse, ScheduleEvalRunRequest
from assay_service.services import runs

router = APIGatewayHttpRouter()


@router.post("/v1/datasets/<id>/runs", tags=["eval-runs"],
             summary="Schedule an eval run against a dataset version",
             responses={202: {"description": "Run scheduled"}})
def schedule(
    id: UUID,  # noqa: A002
    body: ScheduleEvalRunRequest,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255,
                                                  description="Same key + same body → the same run; "
                                                  "same key + another body → 409.")] = None,
) -> Response[EvalRunResponse]:
    run = runs.schedule_run(principal(router, WRITE), id, body, idempotency_key=idempotency_key)
    return json_response(202, EvalRunResponse.of(run))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
