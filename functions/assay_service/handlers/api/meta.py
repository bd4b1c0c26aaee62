"""ApiMetaFunction: GET /v1/health and GET /v1/openapi.json (no authentication)."""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import create_app, json_response, lambda_entry
from assay_service.models.api import HealthResponse

router = APIGatewayHttpRouter()


def service_version() -> str:
    try:
        return version("assay")
    except PackageNotFoundError:
        return "0.1.0"


@router.get("/v1/health", tags=["health"], summary="Liveness", security=[])
def health() -> Response[HealthResponse]:
    return json_response(200, HealthResponse(status="ok", version=service_version()))


@router.get("/v1/openapi.json", tags=["health"], summary="This API's OpenAPI 3.1 document",
            security=[], responses={200: {"description": "OpenAPI 3.1 document",
                                          "content": {"application/json": {"schema": {
                                              "type": "object"}}}}})
def openapi():  # the body is the generated document, served as is
    return Response(status_code=200, content_type="application/json", body=openapi_document())


@lru_cache(maxsize=1)
def openapi_document() -> str:
    from assay_service.handlers.api.openapi import build_openapi_json

    return build_openapi_json()


app = create_app(authenticated=False)
app.include_router(router)
handler = lambda_entry(app)
