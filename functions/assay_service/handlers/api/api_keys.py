"""ApiKeysFunction: create, list and revoke the tenant's API keys."""

from __future__ import annotations

from uuid import UUID

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from assay_service.handlers.api.app import READ, WRITE, create_app, json_response, lambda_entry, principal
from assay_service.models.api import (
    ApiKeyListResponse,
    ApiKeyResponse,
    CreateApiKeyRequest,
    CreatedApiKeyResponse,
)
from assay_service.services import keys

router = APIGatewayHttpRouter()
TAGS = ["api-keys"]


@router.post(
    "/v1/api-keys",
    tags=TAGS,
    responses={201: {"description": "Created"}},
    summary="Create an API key (the secret is in this response only)",
)
def create_key(body: CreateApiKeyRequest) -> Response[CreatedApiKeyResponse]:
    created, secret = keys.create_key(principal(router, WRITE), body)
    return json_response(201, CreatedApiKeyResponse(**created.model_dump(), key=secret))


@router.get("/v1/api-keys", tags=TAGS, summary="List the tenant's API keys (never the secrets)")
def list_keys() -> Response[ApiKeyListResponse]:
    items = keys.list_keys(principal(router, READ))
    return json_response(200, ApiKeyListResponse(items=items, count=len(items)))


@router.delete("/v1/api-keys/<id>", tags=TAGS, summary="Revoke an API key (effective at once)")
def revoke_key(id: UUID) -> Response[ApiKeyResponse]:
    return json_response(200, keys.revoke_key(principal(router, WRITE), id))


app = create_app()
app.include_router(router)
handler = lambda_entry(app)
