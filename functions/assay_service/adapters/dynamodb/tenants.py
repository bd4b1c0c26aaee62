"""Tenants (each with a unique slug) and their API keys, stored by keyed hash."""

from __future__ import annotations

import hmac
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.dynamodb.codec import item_model, model_item
from assay_service.adapters.dynamodb.keys import (
    api_key_hash,
    api_key_id_pk,
    api_key_pk,
    api_keys_gsi_pk,
    created_sk,
    tenant_pk,
    tenant_slug_pk,
)
from assay_service.adapters.dynamodb.table import Table, cancellation_codes, is_condition_failure
from assay_service.models.domain import Tenant


class DynamoDBTenantRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get_by_slug(self, slug: str) -> Tenant | None:
        link = self.table.get(tenant_slug_pk(slug), "SLUG")
        if not link:
            return None
        item = self.table.get(tenant_pk(link["tenant_id"]), "TENANT")
        return item_model(Tenant, item) if item else None

    def create(self, tenant: Tenant) -> Tenant:
        """Create the tenant and claim its slug atomically; an existing slug wins."""
        try:
            self.table.transact(
                [
                    self.table.put_op(
                        {"PK": tenant_slug_pk(tenant.slug), "SK": "SLUG", "tenant_id": str(tenant.id)},
                        condition="attribute_not_exists(PK)",
                    ),
                    self.table.put_op(
                        model_item(tenant, PK=tenant_pk(tenant.id), SK="TENANT"),
                        condition="attribute_not_exists(PK)",
                    ),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                existing = self.get_by_slug(tenant.slug)
                if existing:
                    return existing
            raise
        return tenant

    def put_key(
        self,
        *,
        key_hash: str,
        key_id: UUID,
        tenant_id: UUID,
        role: str,
        prefix: str,
        created_at: str,
        expires_at: str | None,
        name: str | None = None,
    ) -> bool:
        """Store a key by its keyed hash, with a tenant-scoped pointer by id (one
        transaction); False when that hash is already stored."""
        item = {
            "PK": api_key_pk(key_hash),
            "SK": "APIKEY",
            "GSI1PK": api_keys_gsi_pk(tenant_id),
            "GSI1SK": created_sk(created_at, key_id),
            "key_id": str(key_id),
            "tenant_id": str(tenant_id),
            "role": role,
            "name": name,
            "prefix": prefix,
            "created_at": created_at,
            "expires_at": expires_at,
            "revoked": False,
        }
        pointer = {
            "PK": api_key_id_pk(tenant_id, key_id),
            "SK": "APIKEYID",
            "tenant_id": str(tenant_id),
            "key_hash": key_hash,
        }
        try:
            self.table.transact(
                [
                    self.table.put_op(item, condition="attribute_not_exists(PK)"),
                    self.table.put_op(pointer, condition="attribute_not_exists(PK)"),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                return False
            raise
        return True

    def get_key(self, key_hash: str) -> dict[str, Any] | None:
        """The key stored under ``key_hash``. Defence in depth: the item found must be the
        one asked for (compared in constant time), or it is not a key of this hash."""
        item = self.table.get(api_key_pk(key_hash), "APIKEY")
        if not item or not hmac.compare_digest(item["PK"], api_key_pk(key_hash)):
            return None
        return _record(item)

    def get_key_by_id(self, tenant_id: UUID, key_id: UUID) -> dict[str, Any] | None:
        pointer = self.table.get(api_key_id_pk(tenant_id, key_id), "APIKEYID")
        return self.get_key(pointer["key_hash"]) if pointer else None

    def list_keys(self, tenant_id: UUID) -> list[dict[str, Any]]:
        return [
            _record(item)
            for item in self.table.query_all(pk=api_keys_gsi_pk(tenant_id), index="GSI1", forward=False)
        ]

    def revoke_key(self, key_hash: str) -> None:
        self.table.update(
            api_key_pk(key_hash), "APIKEY", expression="SET revoked = :t", names={}, values={":t": True}
        )

    def touch_key(self, key_hash: str, now: str, not_since: str) -> None:
        """Record use at most once a minute (a conditional write; losing the race is fine)."""
        try:
            self.table.update(
                api_key_pk(key_hash),
                "APIKEY",
                expression="SET #u = :now",
                names={"#u": "last_used_at"},
                values={":now": now, ":since": not_since},
                condition="attribute_not_exists(#u) OR #u < :since",
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise


_STORAGE_ATTRIBUTES = ("PK", "SK", "GSI1PK", "GSI1SK")


def _record(item: dict[str, Any]) -> dict[str, Any]:
    """A key item as services see it: its fields and its ``key_hash``, no table keys."""
    record = {k: v for k, v in item.items() if k not in _STORAGE_ATTRIBUTES}
    record["key_hash"] = api_key_hash(item["PK"])
    return record
