"""Create a tenant and its first owner key — used by the CLI against a deployed stack
and by the local stack for ``ASSAY_BOOTSTRAP_KEY`` (one code path for both)."""

from __future__ import annotations

import re
import uuid

from assay_service.dependencies import DEPLOYED
from assay_service.errors import InvalidRequestError
from assay_service.models.domain import Project, Tenant, utcnow
from assay_service.ports import Ports
from assay_service.services.catalog import default_project
from assay_service.services.keys import MAX_KEY_LENGTH, MIN_KEY_LENGTH, store_key

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def bootstrap_tenant(*, slug: str, owner_key: str, ports: Ports = DEPLOYED) -> Tenant:
    """Idempotent: an existing tenant keeps its id; an already stored key stays as it is."""
    if not _SLUG.match(slug):
        raise InvalidRequestError("tenant slug must be lowercase letters, digits and dashes")
    if not MIN_KEY_LENGTH <= len(owner_key) <= MAX_KEY_LENGTH or owner_key != owner_key.strip():
        raise InvalidRequestError(
            f"owner key must be {MIN_KEY_LENGTH}–{MAX_KEY_LENGTH} characters without spaces"
        )
    repo = ports.tenants
    tenant = repo.get_by_slug(slug) or repo.create(Tenant(id=uuid.uuid4(), slug=slug, created_at=utcnow()))
    ports.projects.create(
        Project(
            id=default_project(tenant.id), tenant_id=tenant.id, name="default", created_at=tenant.created_at
        ),
        exist_ok=True,
    )
    store_key(tenant_id=tenant.id, role="owner", raw=owner_key, ports=ports)
    return tenant
