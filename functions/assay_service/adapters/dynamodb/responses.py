"""The response cache: a model's answer to a request, per tenant, for ``RESPONSE_TTL_S``.

One item per request (``T#{tid}#RESP#{sha256}`` / ``RESP``); the table's ``ttl`` attribute
expires it. DynamoDB deletes expired items within days, not at once, so a read checks the
expiry itself. An answer too large for an item (over ``MAX_RESPONSE_BYTES``) is not cached.
"""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from assay_service.adapters.dynamodb.keys import response_pk
from assay_service.adapters.dynamodb.table import Table

RESPONSE_TTL_S = 30 * 24 * 3600
MAX_RESPONSE_BYTES = 300_000


class DynamoDBResponseCache:
    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, tenant_id: UUID, key: str) -> dict[str, Any] | None:
        # Eventually consistent: a miss just costs a call (half the read units).
        item = self.table.get(response_pk(tenant_id, key), "RESP", consistent=False)
        if item is None or int(item.get("ttl", 0)) <= time.time():
            return None
        data = json.loads(item["response"])
        return data if isinstance(data, dict) else None

    def put(self, tenant_id: UUID, key: str, response: dict[str, Any]) -> None:
        body = json.dumps(response, separators=(",", ":"), ensure_ascii=False)
        if len(body.encode()) > MAX_RESPONSE_BYTES:
            return
        self.table.put(
            {
                "PK": response_pk(tenant_id, key),
                "SK": "RESP",
                "tenant_id": str(tenant_id),
                "response": body,
                "ttl": int(time.time()) + RESPONSE_TTL_S,
            }
        )
