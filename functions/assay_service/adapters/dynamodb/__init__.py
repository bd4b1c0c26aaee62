"""DynamoDB adapters: one table, tenant-scoped keys, no Scan anywhere.

Key design (docs/decisions/0002-storage-layout.md):

============================  ==============================  ==========================
item                          PK / SK                         GSI1PK / GSI1SK
============================  ==============================  ==========================
tenant                        TENANT#{tid} / TENANT           —
tenant slug (unique)          TENANTSLUG#{slug} / SLUG        —
API key (by keyed hash)       APIKEY#{hmac} / APIKEY          T#{tid}#APIKEYS / created#id
dataset                       T#{tid}#DS#{id} / DS            T#{tid}#DS / created#id
dataset version               T#{tid}#DS#{id} / V#{n:08}      —
eval                          T#{tid}#EVAL#{id} / EVAL        T#{tid}#EVAL / created#id
eval version                  T#{tid}#EVALVER#{id} / EVALVER  T#{tid}#EVAL#{eval}#V / {n:08}
run                           T#{tid}#RUN#{key} / RUN         RunsBy* indexes (below)
batch of evaluations          T#{tid}#RUN#{key} / B#{i:07}    —
 …its continuation parts      T#{tid}#RUN#{key} / B#{i:07}#{n:03} —
run counter                   T#{tid}#RUNCOUNT / {dim}#{v}    —
cached model response         T#{tid}#RESP#{sha256} / RESP    —
provider rate limit           LIMIT#{provider:model} / …      —
============================  ==============================  ==========================

Runs are listed through six sparse indexes — ``RunsByTenant`` (``T#{tid}``) and
``RunsByEval``/``EvalVersion``/``Dataset``/``Project``/``Status`` (``T#{tid}#{value}``) —
sorted by ``RunCreated`` (``{created_at}#{id}``), projecting only the filter attributes.
How many runs match one criterion (or none) is an exact counter item (``ALL``,
``status#{s}``, ``eval_id#{id}``…), moved in the transactions that create runs and change
their status (docs/decisions/0007-run-counters.md).

The tenant id is part of every key a request can reach, so a query can only ever
return the caller's items: isolation is in the key condition, not in a filter.

One job per module: ``codec`` (attribute values, models as items), ``table`` (the raw
operations, paging and error classification), ``keys`` (every key format above),
``counters`` (run counters and the deletes they guard), ``idempotency`` (Idempotency-Key
claims), ``batches`` (a batch's packed parts), and a repository per kind of item:
``tenants`` (with API keys), ``projects``, ``datasets``, ``evals``, ``runs``.
"""

from __future__ import annotations

from assay_service.adapters.dynamodb.batches import BATCH_MAX_BYTES, BATCH_PART_BYTES, _pack, _unpack
from assay_service.adapters.dynamodb.codec import (
    _attribute,
    _value,
    deserialize,
    expression_values,
    item_model,
    model_item,
    serialize,
)
from assay_service.adapters.dynamodb.counters import RUN_COUNTERS
from assay_service.adapters.dynamodb.datasets import DynamoDBDatasetRepository
from assay_service.adapters.dynamodb.evals import DynamoDBEvalRepository
from assay_service.adapters.dynamodb.idempotency import IDEMPOTENCY_TTL_S
from assay_service.adapters.dynamodb.projects import DynamoDBProjectRepository
from assay_service.adapters.dynamodb.responses import DynamoDBResponseCache
from assay_service.adapters.dynamodb.runs import (
    CREATE_ATTEMPTS,
    CREATE_BACKOFF_S,
    RUN_INDEX_PRIORITY,
    SET_STATUS_ATTEMPTS,
    DynamoDBRunRepository,
    RunQuery,
)
from assay_service.adapters.dynamodb.table import Table, cancellation_codes, is_condition_failure
from assay_service.adapters.dynamodb.tenants import DynamoDBTenantRepository

__all__ = [
    "BATCH_MAX_BYTES",
    "BATCH_PART_BYTES",
    "CREATE_ATTEMPTS",
    "CREATE_BACKOFF_S",
    "IDEMPOTENCY_TTL_S",
    "RUN_COUNTERS",
    "RUN_INDEX_PRIORITY",
    "SET_STATUS_ATTEMPTS",
    "DynamoDBDatasetRepository",
    "DynamoDBEvalRepository",
    "DynamoDBProjectRepository",
    "DynamoDBResponseCache",
    "DynamoDBRunRepository",
    "DynamoDBTenantRepository",
    "RunQuery",
    "Table",
    "_attribute",
    "_pack",
    "_unpack",
    "_value",
    "cancellation_codes",
    "deserialize",
    "expression_values",
    "is_condition_failure",
    "item_model",
    "model_item",
    "serialize",
]

# Provider rate limits shared by every batch (``LIMIT#{key}`` / ``BUCKET`` and ``SLOT#{n}``;
# docs/decisions/0016-shared-rate-limiter.md).
from assay_service.adapters.dynamodb.ratelimit import DynamoDBPermit, DynamoDBRateLimiter

__all__ += ["DynamoDBPermit", "DynamoDBRateLimiter"]
