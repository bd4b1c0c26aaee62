"""The whole API's OpenAPI 3.1 document, generated from the route code of every function."""

from __future__ import annotations

import json

from assay_service.handlers.api import (
    api_keys,
    cancel_run,
    compat,
    datasets,
    delete_run,
    evals,
    export_run,
    get_evaluation,
    get_run,
    list_runs,
    meta,
    projects,
    schedule_run,
)

ROUTERS = [
    meta,
    datasets,
    evals,
    schedule_run,
    get_run,
    list_runs,
    get_evaluation,
    export_run,
    cancel_run,
    delete_run,
    compat,
    api_keys,
    projects,
]


PUBLIC = {("/v1/health", "get"), ("/v1/openapi.json", "get")}
_ERRORS = {
    "400": "Bad input: what is wrong and where (`validation.*`)",
    "401": "Missing, invalid or expired API key (`auth.invalid_key`, `auth.expired_key`)",
    "403": "The key's role may not do this (`auth.insufficient_permissions`)",
    "404": "No such object in the caller's tenant (`resource.not_found`)",
    "405": "Another method than this path's (`validation.invalid_request`); `Allow` lists the path's methods",
    "409": "Conflicts with the object's state (`resource.conflict`)",
    "413": "The body is over 10 MB (`validation.invalid_request`; on AWS, API Gateway "
    "answers it before the API, outside the envelope)",
    "415": "The body is not sent as application/json (`validation.invalid_format`)",
    "431": "The request's headers are too large (`validation.invalid_request`; on AWS, API "
    "Gateway answers it before the API, outside the envelope)",
    "429": "Too many runs pending or running for the tenant (`quota.limit_exceeded`)",
    "500": "Internal error (`server.internal_error`)",
    "503": "Temporarily unavailable; retry (`server.internal_error`)",
}
_DROP_SCHEMAS = ("HTTPValidationError", "ValidationError", "ResponseValidationError")


def _document_errors(doc: dict) -> dict:
    """Replace Powertools' default 422 with the envelope this API really answers with."""
    from assay_service.models.api import ErrorResponse, ExportLinkResponse

    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorResponse, ExportLinkResponse):
        schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in _DROP_SCHEMAS:
        schemas.pop(name, None)
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    allow = {"Allow": {"description": "The path's methods, e.g. `GET, POST`", "schema": {"type": "string"}}}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            # 405: every path refuses other methods; 431: any request can carry too much
            codes = ["400", "405", "431", "500", "503"]
            if (path, method) in PUBLIC:
                op["security"] = []
            else:
                codes += ["401", "403"]
            if "{" in path or "requestBody" in op:  # bodies reference objects (project_id…)
                codes.append("404")
            if method == "post" and path.endswith("/runs"):
                codes.append("429")
            if (
                method == "post"
                or path.endswith("/export")
                or (method == "delete" and not path.startswith("/v1/api-keys"))
            ):
                codes.append("409")
            if "requestBody" in op:
                codes += ["413", "415"]
            for code in sorted(codes):
                responses.setdefault(code, {"description": _ERRORS[code], "content": envelope})
            responses["405"].setdefault("headers", allow)
            if "204" in responses:  # No Content: no body to describe
                responses["204"].pop("content", None)
    export = doc["paths"]["/v1/eval-runs/{id}/export"]["get"]["responses"]
    export["200"]["content"] = {
        "application/json": {
            "schema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/EvalRunExportResponse"},
                    {"$ref": "#/components/schemas/ExportLinkResponse"},
                ]
            }
        },
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
    }
    export["303"] = {
        "description": "Too large to inline: follow `Location` (a presigned S3 "
        "URL, same Content-Disposition)",
        "headers": {"Location": {"schema": {"type": "string"}}},
    }
    return doc


def build_openapi_json() -> str:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    app = APIGatewayHttpResolver(enable_validation=True)
    # include_router re-points a router's request state at the including resolver; give
    # every router back to its own function's resolver afterwards.
    owners = [(module.router, module.router.api_resolver) for module in ROUTERS]
    try:
        for module in ROUTERS:
            app.include_router(module.router)
        raw = _schema(app)
    finally:
        for router, owner in owners:
            router.api_resolver = owner
    return json.dumps(_document_errors(json.loads(raw)), indent=2, sort_keys=True) + "\n"


def _schema(app: object) -> str:
    from aws_lambda_powertools.event_handler.openapi.models import (
        APIKey,
        APIKeyIn,
        HTTPBearer,
    )

    return app.get_openapi_json_schema(  # type: ignore[attr-defined]
        title="Assay API",
        version=meta.service_version(),
        openapi_version="3.1.0",
        summary="Self-hosted, serverless LLM eval runs",
        description="Datasets, evals, eval runs, evaluations and exports. "
        "Errors use the envelope {error, code, details, request_id}.",
        security_schemes={
            "BearerAuth": HTTPBearer(description="API key (`ask_…`)"),
            "ApiKeyHeader": APIKey.model_validate({"name": "x-api-key", "in": APIKeyIn.header}),
        },
        security=[{"BearerAuth": []}, {"ApiKeyHeader": []}],
    )


if __name__ == "__main__":
    print(build_openapi_json(), end="")
