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


@router.post(
    "/v1/datasets/<id>/runs",
    tags=["eval-runs"],
    summary="Schedule an eval run against a dataset version",
    description="The metrics are checked against the version's field coverage "
    '(docs/scorers.md, "What each scorer needs"): a metric needing a '
    "record field no record has is a 400 naming the metric, the field and "
    "0 of N records (`details.fields`), and nothing is scheduled; one that "
    "only some records lack is scheduled, with `warnings`.",
    responses={202: {"description": "Run scheduled"}},
)
def schedule(
    id: UUID,
    body: ScheduleEvalRunRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=255,
            description="Same key + same body → the same run; same key + another body → 409.",
        ),
    ] = None,
) -> Response[EvalRunResponse]:
    run, warnings = runs.schedule_run(principal(router, WRITE), id, body, idempotency_key=idempotency_key)
    return json_response(202, EvalRunResponse.of(run, warnings=warnings))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
