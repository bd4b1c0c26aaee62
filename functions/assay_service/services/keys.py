"""API keys: 256 bits of entropy, stored only as an HMAC, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from uuid import UUID

from assay_service import dependencies as deps
from assay_service.errors import ExpiredKeyError, InvalidKeyError
from assay_service.models.domain import Principal, Role, utcnow

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


def store_key(*, tenant_id: UUID, role: Role, raw: str, expires_at: datetime | None = None
              ) -> UUID | None:
    """Store ``raw`` for the tenant; returns the key id, or None if it is already stored."""
    key_id = UUID(bytes=secrets.token_bytes(16), version=4)
    stored = deps.tenants().put_key(
        key_hash=hash_key(raw, deps.keyring().hmac_key()), key_id=key_id, tenant_id=tenant_id,
        role=role, prefix=display_prefix(raw), created_at=utcnow().isoformat(),
        expires_at=expires_at.isoformat() if expires_at else None)
    return key_id if stored else None


def authenticate(raw: str | None) -> Principal:
    if not raw or not MIN_KEY_LENGTH <= len(raw) <= MAX_KEY_LENGTH:
        raise InvalidKeyError()
    digest = hash_key(raw, deps.keyring().hmac_key())
    item = deps.tenants().get_key(digest)
    if not item or not hmac.compare_digest(item["PK"], f"APIKEY#{digest}") or item.get("revoked"):
        raise InvalidKeyError()
    expires = item.get("expires_at")
    if expires and datetime.fromisoformat(expires) <= datetime.now(UTC):
        raise ExpiredKeyError()
    return Principal(tenant_id=UUID(item["tenant_id"]), key_id=UUID(item["key_id"]),
                     role=item["role"])
