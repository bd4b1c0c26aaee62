"""Authenticating records a key's last use at most once a minute, without a write otherwise."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from assay_service import dependencies as deps
from assay_service.services import keys

RAW = "assay_" + "k" * 40
HMAC = b"h" * 32


class Keyring:
    def hmac_key(self) -> bytes:
        return HMAC


class Tenants:
    def __init__(self, last_used: datetime | None) -> None:
        self.item = {
            "PK": f"APIKEY#{keys.hash_key(RAW, HMAC)}",
            "tenant_id": str(uuid.uuid4()),
            "key_id": str(uuid.uuid4()),
            "role": "member",
            "last_used_at": last_used.isoformat() if last_used else None,
        }
        self.touches: list[str] = []

    def get_key(self, digest: str) -> dict:
        return self.item

    def touch_key(self, digest: str, now: str, not_since: str) -> None:
        self.touches.append(now)


@pytest.mark.parametrize(("age", "writes"), [(None, 1), (timedelta(seconds=5), 0), (timedelta(minutes=2), 1)])
def test_a_use_is_written_only_when_the_stored_one_is_a_minute_old(monkeypatch, age, writes):
    now = datetime.now(UTC)
    tenants = Tenants(None if age is None else now - age)
    monkeypatch.setattr(deps, "tenants", lambda: tenants)
    monkeypatch.setattr(deps, "keyring", lambda: Keyring())
    principal = keys.authenticate(RAW)
    assert str(principal.key_id) == tenants.item["key_id"]
    assert len(tenants.touches) == writes
