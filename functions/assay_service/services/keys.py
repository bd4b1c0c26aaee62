"""API keys: 256 bits of entropy, stored only as an HMAC (the tenant repository looks a key up
by it and compares the item found in constant time)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from assay_service.dependencies import DEPLOYED
from assay_service.errors import (
    ConflictError,
    ExpiredKeyError,
    InsufficientPermissionsError,
    InvalidKeyError,
    InvalidRequestError,
    NotFoundError,
)
from assay_service.models.api import ApiKeyResponse, CreateApiKeyRequest
from assay_service.models.domain import Principal, Role, utcnow
from assay_service.observability import get_logger
from assay_service.ports import Ports

KEY_PREFIX = "ask_"
MIN_KEY_LENGTH = 20
MAX_KEY_LENGTH = 256


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)  # 32 bytes = 256 bits


def hash_key(raw: str, hmac_key: bytes) -> str:
    return hmac.new(hmac_key, raw.encode(), hashlib.sha256).hexdigest()


def display_prefix(raw: str) -> str:
    """What a key list may show: enough to recognise a key, useless to an attacker."""
    return raw[: len(KEY_PREFIX) + 4] if raw.startswith(KEY_PREFIX) else raw[:4]


ROLE_RANK = {"viewer": 0, "member": 1, "owner": 2}
MAX_KEY_LIFETIME = timedelta(days=366)
TOUCH_INTERVAL = timedelta(minutes=1)


def _aware(value: datetime) -> datetime:
    """``value`` with an offset: a naive one (no timezone) is read as UTC."""
    return value if value.utcoffset() is not None else value.replace(tzinfo=UTC)


def _instant(text: str | None) -> datetime | None:
    """A stored timestamp as an aware datetime. Keys stored before naive ``expires_at``
    values were refused may hold one without an offset: it is read as UTC."""
    return _aware(datetime.fromisoformat(text)) if text else None


def store_key(
    *,
    tenant_id: UUID,
    role: Role,
    raw: str,
    expires_at: datetime | None = None,
    name: str | None = None,
    created_at: datetime | None = None,
    ports: Ports = DEPLOYED,
) -> UUID | None:
    """Store ``raw`` for the tenant; returns the key id, or None if it is already stored."""
    key_id = UUID(bytes=secrets.token_bytes(16), version=4)
    stored = ports.tenants.put_key(
        key_hash=hash_key(raw, ports.keyring.hmac_key()),
        key_id=key_id,
        tenant_id=tenant_id,
        role=role,
        prefix=display_prefix(raw),
        created_at=(created_at or utcnow()).isoformat(),
        expires_at=_aware(expires_at).astimezone(UTC).isoformat() if expires_at else None,
        name=name,
    )
    return key_id if stored else None


def _view(item: dict[str, Any]) -> ApiKeyResponse:
    """What may be shown of a stored key: never its hash, never the secret. Timestamps
    are RFC 3339 with an offset, also those stored without one (read as UTC)."""
    return ApiKeyResponse(
        id=UUID(item["key_id"]),
        name=item.get("name"),
        prefix=item["prefix"],
        role=item["role"],
        created_at=_aware(datetime.fromisoformat(item["created_at"])),
        last_used_at=_instant(item.get("last_used_at")),
        expires_at=_instant(item.get("expires_at")),
        revoked=bool(item.get("revoked")),
    )


def _may_manage(caller: Principal, role: str) -> None:
    if ROLE_RANK[role] > ROLE_RANK[caller.role]:
        raise InsufficientPermissionsError(f"a {caller.role} key cannot manage {role} keys")


def create_key(
    caller: Principal, req: CreateApiKeyRequest, *, ports: Ports = DEPLOYED
) -> tuple[ApiKeyResponse, str]:
    _may_manage(caller, req.role)
    now = utcnow()
    if req.expires_at is not None:
        if req.expires_at.utcoffset() is None:
            # A naive instant means a different moment in each reader's zone: refused.
            example = (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
            raise InvalidRequestError(
                f"body.expires_at: give a timezone (an offset or Z), e.g. {example}Z or {example}+02:00",
                details={"field": "expires_at"},
            )
        if not now < req.expires_at <= now + MAX_KEY_LIFETIME:
            raise InvalidRequestError(
                "body.expires_at: must be in the future, within 366 days", details={"field": "expires_at"}
            )
    raw = generate_key()
    key_id = store_key(
        tenant_id=caller.tenant_id,
        role=req.role,
        raw=raw,
        expires_at=req.expires_at,
        name=req.name,
        created_at=now,
        ports=ports,
    )
    if key_id is None:  # 256 random bits collided: not in this universe
        raise ConflictError("could not create a unique key; retry")
    item = ports.tenants.get_key_by_id(caller.tenant_id, key_id)
    return _view(item or {}), raw


def list_keys(caller: Principal, *, ports: Ports = DEPLOYED) -> list[ApiKeyResponse]:
    return [_view(item) for item in ports.tenants.list_keys(caller.tenant_id)]


def revoke_key(caller: Principal, key_id: UUID, *, ports: Ports = DEPLOYED) -> ApiKeyResponse:
    item = ports.tenants.get_key_by_id(caller.tenant_id, key_id)
    if item is None:
        raise NotFoundError("api key")
    _may_manage(caller, item["role"])
    ports.tenants.revoke_key(item["key_hash"])
    return _view({**item, "revoked": True})


def authenticate(raw: str | None, *, ports: Ports = DEPLOYED) -> Principal:
    if not raw or not MIN_KEY_LENGTH <= len(raw) <= MAX_KEY_LENGTH:
        raise InvalidKeyError()
    digest = hash_key(raw, ports.keyring.hmac_key())
    item = ports.tenants.get_key(digest)
    if not item or item.get("revoked"):
        raise InvalidKeyError()
    now = datetime.now(UTC)
    expires = _instant(item.get("expires_at"))
    if expires is not None and expires <= now:
        raise ExpiredKeyError()
    used = _instant(item.get("last_used_at"))
    if used is None or used < now - TOUCH_INTERVAL:  # the conditional write would refuse it
        _touch(digest, now, ports=ports)
    return Principal(tenant_id=UUID(item["tenant_id"]), key_id=UUID(item["key_id"]), role=item["role"])


def _touch(digest: str, now: datetime, *, ports: Ports) -> None:
    """Best effort: ``last_used_at`` is telemetry and must never fail a request."""
    try:
        ports.tenants.touch_key(digest, now.isoformat(), (now - TOUCH_INTERVAL).isoformat())
    except Exception:
        get_logger().warning("could not record the key's last use")
