"""The whole API's OpenAPI 3.1 document, generated from the route code of every function."""

from __future__ import annotations

import json

from assay_service.handlers.api import (
    cancel_run,
    compat,
    datasets,
    evals,
    export_run,
    get_evaluation,
    get_run,
    list_runs,
    meta,
    schedule_run,
)

ROUTERS = [meta, datasets, evals, schedule_run, get_run, list_runs, get_evaluation, export_run,
           cancel_run, compat]


def build_openapi_json() -> str:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
    from aws_lambda_powertools.event_handler.openapi.models import (
        APIKey,
        APIKeyIn,
        HTTPBearer,
    )

    app = APIGatewayHttpResolver(enable_validation=True)
    for module in ROUTERS:
        app.include_router(module.router)
    return app.get_openapi_json_schema(
        title="Assay API",
        version=meta.service_version(),
        openapi_version="3.1.0",
        summary="Self-hosted, serverless LLM eval runs",
        description="Datasets, evals, eval runs, evaluations and exports. "
                    "Errors use the envelope {error, code, details, request_id}.",
        security_schemes={"BearerAuth": HTTPBearer(description="API key (`ask_…`)"),
                          "ApiKeyHeader": APIKey(name="x-api-key", **{"in": APIKeyIn.header})},
        security=[{"BearerAuth": []}, {"ApiKeyHeader": []}],
    )


if __name__ == "__main__":
    print(json.dumps(json.loads(build_openapi_json()), indent=2))
