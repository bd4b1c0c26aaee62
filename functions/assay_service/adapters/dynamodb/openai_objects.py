"""The OpenAI Evals API's own objects (evals, runs, files), beside the Assay objects they
map onto: each is a JSON document under ``T#{tid}#OAI#{kind}#{id}`` / ``OAI``, listed in
creation order through GSI1 (``T#{tid}#OAI#{kind}[#{parent}]`` / ``created#id``)."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.dynamodb.keys import created_sk
from assay_service.adapters.dynamodb.table import Table, is_condition_failure

SK = "OAI"


def object_pk(tenant_id: UUID, kind: str, object_id: UUID) -> str:
    return f"T#{tenant_id}#OAI#{kind}#{object_id}"


def listing_pk(tenant_id: UUID, kind: str, parent: UUID | None) -> str:
    return f"T#{tenant_id}#OAI#{kind}" + (f"#{parent}" if parent else "")


class DynamoDBOpenAIObjects:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put(
        self,
        tenant_id: UUID,
        kind: str,
        object_id: UUID,
        doc: dict[str, Any],
        *,
        created_at: str,
        parent: UUID | None = None,
    ) -> None:
        self.table.put(
            {
                "PK": object_pk(tenant_id, kind, object_id),
                "SK": SK,
                "GSI1PK": listing_pk(tenant_id, kind, parent),
                "GSI1SK": created_sk(created_at, object_id),
                "doc": json.dumps(doc, separators=(",", ":")),
            },
            condition="attribute_not_exists(PK)",
        )

    def get(self, tenant_id: UUID, kind: str, object_id: UUID) -> dict[str, Any] | None:
        item = self.table.get(object_pk(tenant_id, kind, object_id), SK)
        return json.loads(item["doc"]) if item else None

    def replace(self, tenant_id: UUID, kind: str, object_id: UUID, doc: dict[str, Any]) -> bool:
        """Store ``doc`` in place of the object's; False when it no longer exists."""
        try:
            self.table.update(
                object_pk(tenant_id, kind, object_id),
                SK,
                expression="SET #d = :d",
                names={"#d": "doc"},
                values={":d": json.dumps(doc, separators=(",", ":"))},
                condition="attribute_exists(PK)",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def delete(self, tenant_id: UUID, kind: str, object_id: UUID) -> None:
        self.table.delete(object_pk(tenant_id, kind, object_id), SK)

    def page(
        self,
        tenant_id: UUID,
        kind: str,
        *,
        parent: UUID | None = None,
        ascending: bool,
        after: UUID | None,
        limit: int,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` documents in creation order after the object ``after`` (which
        must be listed here: else nothing), and whether more follow."""
        pk = listing_pk(tenant_id, kind, parent)
        start = None
        if after is not None:
            item = self.table.get(object_pk(tenant_id, kind, after), SK)
            if item is None or item.get("GSI1PK") != pk:
                return [], False
            start = {k: item[k] for k in ("PK", "SK", "GSI1PK", "GSI1SK")}
        out: list[dict[str, Any]] = []
        while True:
            items, start = self.table.query(
                pk=pk, index="GSI1", forward=ascending, limit=limit + 1 - len(out), start=start
            )
            out += [json.loads(i["doc"]) for i in items if "doc" in i]
            if len(out) > limit or start is None:
                return out[:limit], len(out) > limit
