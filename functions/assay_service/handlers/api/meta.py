"""ApiMetaFunction: GET /v1/health and GET /v1/openapi.json (no authentication), and the
template's catch-all route: what no other route takes is answered here in the error
envelope, 405 with ``Allow`` when the path exists with other methods, else 404.

The OpenAPI 3.1 document is built here, from every API function's own resolver (Powertools'
``OpenAPIMerge``), because this function serves it and answers from its paths;
``python -m assay_service.handlers.api.openapi`` prints it (``make openapi``, ``make check``)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service import __version__
from assay_service.handlers.api.app import create_app, envelope, json_response, lambda_entry
from assay_service.models.api import HealthResponse
from assay_service.observability import get_logger

router = APIGatewayHttpRouter()

_OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_ECHOED_PATH_CHARS = 200  # an unknown path is echoed in the message, cut to this length


def service_version() -> str:
    """The deployed service's version (not the client's, which may differ)."""
    return __version__


@router.get("/v1/health", tags=["health"], summary="Liveness", security=[])
def health() -> Response[HealthResponse]:
    return json_response(200, HealthResponse(status="ok", version=service_version()))


@router.get(
    "/v1/openapi.json",
    tags=["health"],
    summary="This API's OpenAPI 3.1 document",
    security=[],
    responses={
        200: {
            "description": "OpenAPI 3.1 document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def openapi():  # the body is the generated document, served as is
    return Response(status_code=200, content_type="application/json", body=openapi_document())


@lru_cache(maxsize=1)
def openapi_document() -> str:
    """The whole API's OpenAPI 3.1 document, as JSON (keys sorted, a final newline)."""
    doc = json.loads(_merged_schema(_function_apps()))
    return json.dumps(_document_errors(doc), indent=2, sort_keys=True) + "\n"


def _function_apps() -> list[APIGatewayHttpResolver]:
    """Every API function's resolver. Imported here, on the first document: a health check
    does not load the other functions."""
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
        openai_evals,
        projects,
        schedule_run,
    )

    others = [api_keys, cancel_run, compat, datasets, delete_run, evals, export_run, get_evaluation]
    others += [get_run, list_runs, openai_evals, projects, schedule_run]
    return [app, *(module.app for module in others)]


def _merged_schema(apps: list[APIGatewayHttpResolver]) -> str:
    from aws_lambda_powertools.event_handler.openapi import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

    merge = OpenAPIMerge(
        title="Assay API",
        version=service_version(),
        openapi_version="3.1.0",
        summary="Self-hosted, serverless LLM eval runs",
        description="Datasets, evals, eval runs, evaluations and exports. "
        "Errors use the envelope {error, code, details, request_id}.",
        security_schemes={
            "BearerAuth": HTTPBearer(description="API key (`ask_…`)"),
            "ApiKeyHeader": APIKey.model_validate({"name": "x-api-key", "in": APIKeyIn.header}),
        },
        security=[{"BearerAuth": []}, {"ApiKeyHeader": []}],
        on_conflict="error",  # two functions on one method and path
    )
    models: dict[str, Any] = {}
    for function_app in apps:
        schema = function_app.get_openapi_schema().model_dump(by_alias=True, exclude_none=True)
        # One resolver names two models of one name apart; merged, one would replace the other.
        for name, model in schema.get("components", {}).get("schemas", {}).items():
            if models.setdefault(name, model) != model:
                raise ValueError(f"two API functions document different {name} schemas: rename one")
        merge.add_schema(schema)
    return merge.get_openapi_json_schema()


PUBLIC = {("/v1/health", "get"), ("/v1/openapi.json", "get")}
# No API key, but a signature of their own: a 403 when it is wrong or expired.
SIGNED = {("/openai/v1/reports/{run_id}", "get")}
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


def _add_error_schemas(schemas: dict[str, Any]) -> None:
    """The envelopes (Assay's and OpenAI's) and the export link, with what they reference;
    Powertools' own validation-error schemas out."""
    from assay_service.models.api import ErrorResponse, ExportLinkResponse
    from assay_service.models.openai import OpenAIError

    for model in (ErrorResponse, ExportLinkResponse, OpenAIError):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for name in _DROP_SCHEMAS:
        schemas.pop(name, None)


def _document_errors(doc: dict) -> dict:
    """Replace Powertools' default 422 (and the 500 it documents for a resolver whose response
    validation errors are 500s) with the envelope this API really answers with."""
    _add_error_schemas(doc.setdefault("components", {}).setdefault("schemas", {}))
    assay_envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    openai_envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}
    allow = {"Allow": {"description": "The path's methods, e.g. `GET, POST`", "schema": {"type": "string"}}}
    for path, item in doc["paths"].items():
        # OpenAI's Evals API answers in OpenAI's envelope (docs/openai-evals.md).
        envelope = openai_envelope if path.startswith("/openai/") else assay_envelope
        for method, op in item.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            responses.pop("500", None)
            # 405: every path refuses other methods; 431: any request can carry too much
            codes = ["400", "405", "431", "500", "503"]
            if (path, method) in PUBLIC | SIGNED:
                op["security"] = []
                codes += ["403"] if (path, method) in SIGNED else []
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


@lru_cache(maxsize=1)
def _documented_routes() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """Every path of the API's own OpenAPI document, as a pattern matching a request path
    (a ``{param}`` is one segment), with its methods: the one list of what exists."""
    routes = []
    for path, item in json.loads(openapi_document())["paths"].items():
        segments = [
            "[^/]+" if s.startswith("{") and s.endswith("}") else re.escape(s)
            for s in path.strip("/").split("/")
        ]
        methods = frozenset(m.upper() for m in item if m in _OPENAPI_METHODS)
        routes.append((re.compile("^/" + "/".join(segments) + "$"), methods))
    return tuple(routes)


def allowed_methods(path: str) -> list[str]:
    """The methods the API answers on ``path`` (a request path), sorted; [] if none."""
    methods: set[str] = set()
    for pattern, route_methods in _documented_routes():
        if pattern.match(path):
            methods |= route_methods
    return sorted(methods)


def no_route(method: str, path: str) -> Response:
    """The answer to a request no route of the API takes."""
    allowed = allowed_methods(path)
    shown = path if len(path) <= _ECHOED_PATH_CHARS else path[:_ECHOED_PATH_CHARS] + "…"
    if allowed and method not in allowed:
        response = envelope(
            app,
            405,
            "validation.invalid_request",
            f"method {method} not allowed on {shown}; allowed: {', '.join(allowed)}",
            {"allowed_methods": allowed},
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    if allowed:  # a documented route that API Gateway sent here: the template lost it
        get_logger().error("documented route reached the catch-all", extra={"method": method, "path": shown})
        return envelope(app, 500, "server.internal_error", "internal error")
    return envelope(app, 404, "resource.not_found", f"no such route: {method} {shown}")


app = create_app(authenticated=False)
app.include_router(router)


@app.not_found
def _no_route(exc: RouteNotFound) -> Response:
    return no_route(app.current_event.http_method.upper(), app.current_event.path)


_entry = lambda_entry(app)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # No route of this function reads a body; dropped, so an unknown route or method is a
    # 404 or 405 whatever the body (not a 415 for its Content-Type), as API Gateway's own.
    event = {k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")}
    return _entry(event, context)
