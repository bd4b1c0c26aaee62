"""Every key the table's items are stored and indexed under (the layout in ``__init__``).

Each tenant-scoped key starts ``T#{tenant_id}``: a query can only ever reach the caller's
items. Sort keys that order things are zero-padded, so string order is number order.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID


# ---------------------------------------------------------------- tenants and API keys
def tenant_pk(tenant_id: Any) -> str:
    return f"TENANT#{tenant_id}"


def tenant_slug_pk(slug: str) -> str:
    return f"TENANTSLUG#{slug}"


def api_key_pk(key_hash: str) -> str:
    return f"APIKEY#{key_hash}"


def api_key_hash(pk: str) -> str:
    """The keyed hash a key item is stored under (its PK without the prefix)."""
    return pk.removeprefix("APIKEY#")


def api_key_id_pk(tenant_id: UUID, key_id: UUID) -> str:
    """The tenant-scoped pointer from a key's id to its keyed hash."""
    return f"T#{tenant_id}#APIKEYID#{key_id}"


def api_keys_gsi_pk(tenant_id: UUID) -> str:
    return f"T#{tenant_id}#APIKEYS"


def created_sk(created_at: str, item_id: Any) -> str:
    """A listing's sort key (GSI1SK, RunCreated): creation time, then id for ties."""
    return f"{created_at}#{item_id}"


# ---------------------------------------------------------------- projects
def project_pk(tenant_id: UUID, project_id: UUID) -> str:
    return f"T#{tenant_id}#PROJ#{project_id}"


def projects_gsi_pk(tenant_id: UUID) -> str:
    return f"T#{tenant_id}#PROJ"


# ---------------------------------------------------------------- datasets
DATASET_VERSION_PREFIX = "V#"


def dataset_pk(tenant_id: UUID, dataset_id: UUID) -> str:
    return f"T#{tenant_id}#DS#{dataset_id}"


def datasets_gsi_pk(tenant_id: UUID) -> str:
    return f"T#{tenant_id}#DS"


def dataset_version_sk(version: int) -> str:
    return f"{DATASET_VERSION_PREFIX}{version:08d}"


# ---------------------------------------------------------------- evals
def eval_pk(tenant_id: UUID, eval_id: UUID) -> str:
    return f"T#{tenant_id}#EVAL#{eval_id}"


def evals_gsi_pk(tenant_id: UUID) -> str:
    return f"T#{tenant_id}#EVAL"


def eval_version_pk(tenant_id: UUID, version_id: UUID) -> str:
    return f"T#{tenant_id}#EVALVER#{version_id}"


def eval_versions_gsi_pk(tenant_id: UUID, eval_id: UUID) -> str:
    """The GSI1 partition listing an eval's versions."""
    return f"T#{tenant_id}#EVAL#{eval_id}#V"


def eval_version_gsi_sk(version: int) -> str:
    return f"{version:08d}"


# ---------------------------------------------------------------- runs
BATCH_PREFIX = "B#"


def run_pk(tenant_id: UUID, key: str) -> str:
    return f"T#{tenant_id}#RUN#{key}"


def run_partition(tenant_id: UUID, value: Any = None) -> str:
    """A RunsBy* index partition: ``T#{tid}`` (RunsByTenant) or ``T#{tid}#{value}``."""
    return f"T#{tenant_id}" if value is None else f"T#{tenant_id}#{value}"


def run_count_pk(tenant_id: UUID) -> str:
    return f"T#{tenant_id}#RUNCOUNT"


def counter_sk(name: str, value: Any) -> str:
    """A run counter's sort key (``status#{s}``, ``eval_id#{id}``…; ``ALL`` counts all)."""
    return f"{name}#{value}"


def idempotency_pk(tenant_id: UUID, key: str) -> str:
    """An Idempotency-Key's claim, by the key's digest (the key itself is the client's)."""
    return f"T#{tenant_id}#IDEM#{hashlib.sha256(key.encode()).hexdigest()}"


def batch_sk(index: int) -> str:
    """A batch's (first) item's sort key: zero-padded, so batches sort in index order."""
    return f"{BATCH_PREFIX}{index:07d}"


def part_sk(index: int, n: int) -> str:
    """A continuation part's sort key: zero-padded, so parts sort in number order."""
    return f"{batch_sk(index)}#{n:03d}"


def response_pk(tenant_id: UUID, request_hash: str) -> str:
    """A cached model response: one partition per request, so no tenant's cache is hot."""
    return f"T#{tenant_id}#RESP#{request_hash}"
