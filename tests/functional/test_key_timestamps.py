"""API-key timestamps: an ``expires_at`` without a timezone is refused at creation, one
already stored without it is read as UTC (never a 500), and every listed timestamp is
RFC 3339 with an offset."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from assay_service import dependencies as deps
from assay_service.errors import InvalidRequestError
from assay_service.models.api import CreateApiKeyRequest
from assay_service.models.domain import Principal
from assay_service.services import keys as key_service

from tests.functional.harness import OWNER_KEY, api_event, environment

# RFC 3339 date-time: a 'T', and a 'Z' or a numeric offset at the end.
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def naive(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).replace(tzinfo=None).isoformat(timespec="seconds")


def stored_key(stack, expires_at: str) -> tuple[str, str]:
    """A key stored with ``expires_at`` exactly as given (as older versions could)."""
    secret = key_service.generate_key()
    with environment(stack.env("ApiKeysFunction")):
        key_id = uuid.uuid4()
        assert deps.tenants().put_key(
            key_hash=key_service.hash_key(secret, deps.keyring().hmac_key()),
            key_id=key_id,
            tenant_id=uuid.UUID(stack.tenant_id),
            role="member",
            prefix=key_service.display_prefix(secret),
            created_at=datetime.now(UTC).replace(tzinfo=None).isoformat(),
            expires_at=expires_at,
        )
    return secret, str(key_id)


def listed(stack, key_id: str) -> dict:
    status, body, _ = stack.call("ApiKeysFunction", api_event("list_api_keys"))
    assert status == 200, body
    return next(k for k in body["items"] if k["id"] == key_id)


def test_a_naive_expires_at_is_refused_with_400_naming_the_field(stack):
    status, body, _ = stack.call(
        "ApiKeysFunction",
        api_event(
            "create_api_key", key=OWNER_KEY, body={"role": "viewer", "expires_at": naive(timedelta(days=7))}
        ),
    )
    assert status == 400, body
    assert body["code"].startswith("validation.") and "body.expires_at" in body["error"]
    # With an offset the same instant is accepted, and listed as RFC 3339 with an offset.
    aware = (
        (datetime.now(UTC) + timedelta(days=7))
        .astimezone(timezone(timedelta(hours=2)))
        .isoformat(timespec="seconds")
    )
    status, created, _ = stack.call(
        "ApiKeysFunction",
        api_event("create_api_key", key=OWNER_KEY, body={"role": "viewer", "expires_at": aware}),
    )
    assert status == 201, created
    assert RFC3339.match(created["expires_at"]) and RFC3339.match(created["created_at"])
    assert datetime.fromisoformat(created["expires_at"]) == datetime.fromisoformat(aware)
    assert stack.call("DatasetsFunction", api_event("list_datasets", key=created["key"]))[0] == 200


def test_the_service_refuses_a_naive_expires_at_whatever_the_request_model_allows(stack):
    """The check holds in the service itself, not only in the request model's validation."""
    request = CreateApiKeyRequest.model_construct(
        name=None, role="viewer", expires_at=datetime.now() + timedelta(days=7)
    )
    caller = Principal(tenant_id=uuid.UUID(stack.tenant_id), key_id=uuid.uuid4(), role="owner")
    with environment(stack.env("ApiKeysFunction")), pytest.raises(InvalidRequestError) as caught:
        key_service.create_key(caller, request)
    message = caught.value.message
    assert message.startswith("body.expires_at:") and "timezone" in message
    example = re.search(r"e\.g\. (\S+Z)", message)
    assert example and datetime.fromisoformat(example.group(1)).utcoffset() == timedelta(0)
    assert caught.value.details == {"field": "expires_at"}


@pytest.mark.parametrize(
    ("delta", "expected", "code"),
    [
        (timedelta(days=3), 200, None),
        (timedelta(seconds=-5), 401, "auth.expired_key"),
    ],
)
def test_a_stored_naive_expires_at_is_read_as_utc(stack, delta, expected, code):
    """GIVEN a key stored with a naive ``expires_at`` (and naive ``created_at``) THEN a
    request with it is 200 before that instant in UTC and 401 expired after it, never a
    500; and the key list shows both timestamps with an offset."""
    secret, key_id = stored_key(stack, naive(delta))
    status, body, _ = stack.call("DatasetsFunction", api_event("list_datasets", key=secret))
    assert status == expected, body
    if code:
        assert body["code"] == code
    mine = listed(stack, key_id)
    assert RFC3339.match(mine["expires_at"]) and RFC3339.match(mine["created_at"]), mine
    assert mine["expires_at"].endswith(("Z", "+00:00"))
    if expected == 200:
        assert RFC3339.match(mine["last_used_at"]), mine
