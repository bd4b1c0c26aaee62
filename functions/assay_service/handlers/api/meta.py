"""ApiMetaFunction: GET /v1/health and GET /v1/openapi.json (no authentication), and the
template's catch-all route: what no other route takes is answered here in the error
envelope, 405 with ``Allow`` when the path exists with other methods, else 404."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
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
    from assay_service.handlers.api.openapi import build_openapi_json

    return build_openapi_json()


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
