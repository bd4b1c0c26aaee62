"""The response cache: a model's answer to a request, per tenant, for ``RESPONSE_TTL_S``.

One item per request (``T#{tid}#RESP#{sha256}`` / ``RESP``); the table's ``ttl`` attribute
expires it. DynamoDB deletes expired items within days, not at once, so a read checks the
expiry itself. An answer too large for an item (over ``MAX_RESPONSE_BYTES``) is not cached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from assay_service.adapters.dynamodb.keys import response_pk
from assay_service.adapters.dynamodb.table import Table

RESPONSE_TTL_S = 30 * 24 * 3600
MAX_RESPONSE_BYTES = 300_000


def _answer(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None or int(item.get("ttl", 0)) <= time.time():
        return None
    data = json.loads(item["response"])
    return data if isinstance(data, dict) else None


class DynamoDBResponseCache:
    """Reads are eventually consistent (a miss just costs a call; half the read units)."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def get(self, tenant_id: UUID, key: str) -> dict[str, Any] | None:
        return _answer(self.table.get(response_pk(tenant_id, key), "RESP", consistent=False))

    def get_many(self, tenant_id: UUID, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored answers among ``keys``: one BatchGetItem per 100."""
        found: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            chunk = unique[start : start + 100]
            by_pk = {response_pk(tenant_id, key): key for key in chunk}
            for item in self.table.batch_get([(pk, "RESP") for pk in by_pk], consistent=False):
                answer = _answer(item)
                if answer is not None:
                    found[by_pk[item["PK"]]] = answer
        return found

    def put_many(self, tenant_id: UUID, responses: Mapping[str, dict[str, Any]]) -> None:
        """Store answers, 25 per BatchWriteItem (one over ``MAX_RESPONSE_BYTES`` is skipped)."""
        expires = int(time.time()) + RESPONSE_TTL_S
        items = []
        for key, response in responses.items():
            body = json.dumps(response, separators=(",", ":"), ensure_ascii=False)
            if len(body.encode()) <= MAX_RESPONSE_BYTES:
                items.append(
                    {
                        "PK": response_pk(tenant_id, key),
                        "SK": "RESP",
                        "tenant_id": str(tenant_id),
                        "response": body,
                        "ttl": expires,
                    }
                )
        self.table.batch_put(items)
