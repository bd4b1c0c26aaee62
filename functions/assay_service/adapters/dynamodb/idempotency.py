"""Idempotency-Key claims: the run a key created, claimed in that run's create transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.dynamodb.keys import idempotency_pk
from assay_service.adapters.dynamodb.table import Table
from assay_service.errors import ConflictError
from assay_service.models.domain import Run

IDEMPOTENCY_TTL_S = 24 * 3600


def claim_op(table: Table, run: Run, key: str, request_hash: str) -> tuple[str, dict[str, Any]]:
    """The claim's key and its put (once only: a second claim of the key fails)."""
    claim_pk = idempotency_pk(run.tenant_id, key)
    op = table.put_op(
        {
            "PK": claim_pk,
            "SK": "IDEM",
            "tenant_id": str(run.tenant_id),
            "run_id": str(run.id),
            "request_hash": request_hash,
            "ttl": int(run.created_at.timestamp()) + IDEMPOTENCY_TTL_S,
        },
        condition="attribute_not_exists(PK)",
    )
    return claim_pk, op


def replay(
    table: Table, claim_pk: str, request_hash: str, exc: ClientError, run_exists: Callable[[UUID, UUID], bool]
) -> UUID:
    """The id of the run a claimed key created, for a request with that key (ConflictError
    when the request differs, the claim expired meanwhile or the run was deleted)."""
    claim = table.get(claim_pk, "IDEM")
    if claim is None:  # expired between the two calls
        raise ConflictError("Idempotency-Key is being reused; retry") from exc
    if claim["request_hash"] != request_hash:
        raise ConflictError(
            "Idempotency-Key was used with a different request", details={"header": "Idempotency-Key"}
        ) from exc
    if not run_exists(UUID(claim["tenant_id"]), UUID(claim["run_id"])):
        raise ConflictError(
            "Idempotency-Key created a run that has since been deleted; send a new key to schedule again",
            details={"header": "Idempotency-Key"},
        ) from exc
    return UUID(claim["run_id"])
