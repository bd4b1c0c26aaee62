"""API keys through services/keys.py on the in-memory fakes: who may authenticate, and a
key's last use written at most once a minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from assay_service.errors import (
    ExpiredKeyError,
    InsufficientPermissionsError,
    InvalidKeyError,
    InvalidRequestError,
)
from assay_service.models.api import CreateApiKeyRequest
from assay_service.services import keys

from tests.support import fakes
from tests.unit.test_service_runs import principal

ports_fixture = fakes.ports_fixture


def new_key(ports: fakes.Ports, **request) -> tuple[str, str]:
    """(raw key, its hash) of a member key of a new tenant."""
    view, raw = keys.create_key(
        principal(), CreateApiKeyRequest.model_validate({"role": "member", **request}), ports=ports
    )
    return raw, keys.hash_key(raw, ports.keyring.hmac_key())


def test_a_key_authenticates_as_its_tenant_and_role(ports: fakes.Ports):
    owner = principal()
    view, raw = keys.create_key(owner, CreateApiKeyRequest(role="viewer", name="ci"), ports=ports)
    who = keys.authenticate(raw, ports=ports)
    assert (who.tenant_id, who.key_id, who.role) == (owner.tenant_id, view.id, "viewer")
    assert raw not in str(ports.tenants.keys)  # only its keyed hash is stored
    assert view.prefix == raw[:8]


def test_a_revoked_key_is_refused(ports: fakes.Ports):
    owner = principal()
    view, raw = keys.create_key(owner, CreateApiKeyRequest(role="member"), ports=ports)
    keys.authenticate(raw, ports=ports)
    assert keys.revoke_key(owner, view.id, ports=ports).revoked is True
    with pytest.raises(InvalidKeyError):
        keys.authenticate(raw, ports=ports)
    assert [k.revoked for k in keys.list_keys(owner, ports=ports)] == [True]


def test_an_expired_key_is_refused_as_expired(ports: fakes.Ports):
    tenant = principal().tenant_id
    raw = keys.generate_key()
    keys.store_key(
        tenant_id=tenant,
        role="member",
        raw=raw,
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
        ports=ports,
    )
    with pytest.raises(ExpiredKeyError):
        keys.authenticate(raw, ports=ports)
    assert ports.tenants.touches == []  # a refused key records no use


def test_a_key_expiring_later_still_works_and_a_naive_stored_expiry_reads_as_utc(ports: fakes.Ports):
    raw, digest = new_key(ports, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    keys.authenticate(raw, ports=ports)
    past = (datetime.now(UTC) - timedelta(minutes=5)).replace(tzinfo=None)
    ports.tenants.keys[digest]["expires_at"] = past.isoformat()  # stored before offsets were required
    with pytest.raises(ExpiredKeyError):
        keys.authenticate(raw, ports=ports)


@pytest.mark.parametrize("raw", [None, "", "ask_short", "ask_" + "x" * 300, "ask_" + "u" * 43])
def test_missing_malformed_or_unknown_keys_are_refused(ports: fakes.Ports, raw):
    new_key(ports)
    with pytest.raises(InvalidKeyError):
        keys.authenticate(raw, ports=ports)


def test_last_use_is_written_at_most_once_a_minute(ports: fakes.Ports):
    raw, digest = new_key(ports)
    for _ in range(3):
        keys.authenticate(raw, ports=ports)
    assert len(ports.tenants.touches) == 1
    assert len(ports.tenants.touch_calls) == 1  # no write is even asked for within the minute
    first = ports.tenants.keys[digest]["last_used_at"]
    assert first == ports.tenants.touches[0]
    ports.tenants.keys[digest]["last_used_at"] = (datetime.now(UTC) - timedelta(seconds=59)).isoformat()
    keys.authenticate(raw, ports=ports)
    assert (len(ports.tenants.touch_calls), len(ports.tenants.touches)) == (1, 1)
    ports.tenants.keys[digest]["last_used_at"] = (datetime.now(UTC) - timedelta(seconds=61)).isoformat()
    keys.authenticate(raw, ports=ports)
    assert (len(ports.tenants.touch_calls), len(ports.tenants.touches)) == (2, 2)
    assert keys.list_keys(principal(), ports=ports)[:1] == []  # another tenant sees none of it


def test_a_touch_that_fails_does_not_fail_the_request(ports: fakes.Ports, monkeypatch):
    raw, _ = new_key(ports)

    def broken(*args):
        raise RuntimeError("store down")

    monkeypatch.setattr(ports.tenants, "touch_key", broken)
    assert keys.authenticate(raw, ports=ports).role == "member"


def test_a_key_cannot_grant_more_than_its_own_role(ports: fakes.Ports):
    member = principal().model_copy(update={"role": "member"})
    with pytest.raises(InsufficientPermissionsError, match="a member key cannot manage owner keys"):
        keys.create_key(member, CreateApiKeyRequest(role="owner"), ports=ports)
    assert ports.tenants.keys == {}


@pytest.mark.parametrize(
    "expires_at",
    [
        datetime.now() + timedelta(days=1),  # naive: refused
        datetime.now(UTC) - timedelta(minutes=1),
        datetime.now(UTC) + timedelta(days=400),
    ],
)
def test_an_expiry_must_have_an_offset_and_lie_within_366_days(ports: fakes.Ports, expires_at):
    with pytest.raises(InvalidRequestError):
        keys.create_key(principal(), CreateApiKeyRequest(role="member", expires_at=expires_at), ports=ports)
    assert ports.tenants.keys == {}
