"""Ports: what the services need of storage and of the services around them, as Protocols.

Services are typed against these, never against an adapter (docs/decisions/0014-ports.md):
the deployed adapters (``adapters/``, built in ``dependencies.py``) satisfy them
structurally, which mypy checks through the getters' return annotations. Every key format,
index and cursor partition stays in the adapters; a cursor crosses a port as an opaque
string. The LLM judge's port is ``domain.scorers.judges.JudgeClient`` (the scorers call it).

``Ports`` bundles them: a service takes ``ports: Ports = DEPLOYED`` (keyword-only), the
deployed adapters by default (``dependencies.DEPLOYED``), in-memory fakes in tests.

Each Protocol lists exactly the methods services, handlers and ``bootstrap`` call. This
module is imported at run time (for ``RunQuery``), so it imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from assay_service.domain.generation import ModelClient
    from assay_service.domain.ratelimit import Limits
    from assay_service.models.domain import (
        Dataset,
        DatasetVersion,
        Eval,
        Evaluation,
        EvalVersion,
        Project,
        Run,
        Tenant,
    )
    from assay_service.models.workflow import BatchOutcome


@dataclass(frozen=True)
class RunQuery:
    """Which runs to list or count: the tenant's runs matching every criterion (equality on
    ``eval_id``, ``status``…). ``cursor`` continues a previous page (``offset`` is then
    ignored); which index serves the query is the store's business."""

    tenant_id: UUID
    criteria: Mapping[str, str]
    limit: int = 100
    offset: int = 0
    cursor: str | None = None


# ---------------------------------------------------------------- tenants and API keys
class TenantRepository(Protocol):
    """Tenants and their API keys. A key is stored by its keyed hash (``key_hash``); a key
    record is a dict of its fields (``key_id``, ``tenant_id``, ``role``, ``prefix``,
    ``name``, ``created_at``, ``expires_at``, ``last_used_at``, ``revoked``) and its
    ``key_hash``."""

    def get_by_slug(self, slug: str) -> Tenant | None: ...

    def create(self, tenant: Tenant) -> Tenant: ...

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
    ) -> bool: ...

    def get_key(self, key_hash: str) -> dict[str, Any] | None: ...

    def get_key_by_id(self, tenant_id: UUID, key_id: UUID) -> dict[str, Any] | None: ...

    def list_keys(self, tenant_id: UUID) -> list[dict[str, Any]]: ...

    def revoke_key(self, key_hash: str) -> None: ...

    def touch_key(self, key_hash: str, now: str, not_since: str) -> None: ...


# ---------------------------------------------------------------- catalog
class ProjectRepository(Protocol):
    def create(self, project: Project, *, exist_ok: bool = False) -> None: ...

    def get(self, tenant_id: UUID, project_id: UUID) -> Project | None: ...

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Project], str | None]: ...


class DatasetRepository(Protocol):
    """Datasets and their versions; a version's records are an object of the artifact
    store, named by the object key stored with the version.

    A dataset whose delete has begun (``begin_delete``) reads as gone (``get``,
    ``list_page``), takes no version (``add_version``: NotFoundError) and no run
    (``RunRepository.create``: NotFoundError) until ``delete`` removes it."""

    def create(self, dataset: Dataset) -> None: ...

    def get(self, tenant_id: UUID, dataset_id: UUID) -> Dataset | None: ...

    def get_for_delete(self, tenant_id: UUID, dataset_id: UUID) -> tuple[Dataset, bool] | None:
        """The dataset even while it is being deleted, and whether its delete has begun."""
        ...

    def begin_delete(self, dataset: Dataset) -> None:
        """Mark the dataset as being deleted, only while no run counts it and its version
        count is ``dataset``'s (ConflictError otherwise); a dataset already marked stays so."""
        ...

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Dataset], str | None]: ...

    def add_version(
        self, tenant_id: UUID, dataset: Dataset, version: DatasetVersion, object_key: str
    ) -> None: ...

    def get_version(
        self, tenant_id: UUID, dataset_id: UUID, version: int | None
    ) -> tuple[DatasetVersion, str] | None: ...

    def list_versions(self, tenant_id: UUID, dataset_id: UUID) -> list[DatasetVersion]: ...

    def version_objects(self, tenant_id: UUID, dataset_id: UUID) -> list[tuple[str, str]]:
        """(version handle, object key) of every version: the handles go to ``delete``."""
        ...

    def delete(self, dataset: Dataset, version_keys: Sequence[str]) -> None: ...


class EvalRepository(Protocol):
    def create(self, ev: Eval) -> None: ...

    def get(self, tenant_id: UUID, eval_id: UUID) -> Eval | None: ...

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Eval], str | None]: ...

    def add_version(self, tenant_id: UUID, ev: Eval, version: EvalVersion) -> None: ...

    def get_version(self, tenant_id: UUID, version_id: UUID) -> EvalVersion | None: ...

    def list_versions(self, tenant_id: UUID, eval_id: UUID) -> list[EvalVersion]: ...

    def create_with_version(self, ev: Eval, version: EvalVersion) -> None: ...

    def delete(self, ev: Eval) -> None: ...


# ---------------------------------------------------------------- runs
class RunRepository(Protocol):
    """Runs, their counters and their recorded batches of evaluations (a batch is a dict
    with ``batch``, ``parts``, ``records`` and ``evaluations``)."""

    def create(self, run: Run, *, max_in_flight: int, idempotency: tuple[str, str] | None = None) -> UUID: ...

    def get(self, tenant_id: UUID, run_id: UUID) -> Run | None: ...

    def get_by_key(self, tenant_id: UUID, key: str) -> Run | None: ...

    def list_page(self, query: RunQuery) -> tuple[list[Run], str | None]: ...

    def count(self, query: RunQuery) -> int: ...

    def set_status(
        self, run: Run, status: str, *, expect: Sequence[str], fields: Mapping[str, Any] | None = None
    ) -> bool: ...

    def delete(self, run: Run) -> bool: ...

    def record_batch(
        self,
        run: Run,
        index: int,
        *,
        completed: int,
        failed: int,
        records: list[dict[str, Any]],
        evaluations: Sequence[Evaluation],
        now: str,
        usage: Sequence[Mapping[str, Any]] = (),
        cache: tuple[int, int] = (0, 0),
    ) -> BatchOutcome: ...

    def batch_recorded(self, run: Run, index: int) -> bool: ...

    def get_batch(self, tenant_id: UUID, key: str, index: int) -> dict[str, Any] | None: ...

    def iter_batches(self, run: Run, *, first: int = 0) -> Iterator[dict[str, Any]]: ...


# ---------------------------------------------------------------- objects
class ObjectWriter(Protocol):
    """One object written as a stream: ``close`` stores it (returns its size), ``abort``
    drops what was written."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> int: ...

    def abort(self) -> None: ...


class ArtifactStore(Protocol):
    """Objects: dataset versions, uploads, run manifests and exports, presigned links. The
    store names its objects (the ``*_key`` methods); services pass those names back."""

    def dataset_version_key(self, tenant_id: UUID, dataset_id: UUID, version_id: UUID) -> str: ...

    def upload_key(self, tenant_id: UUID, dataset_id: UUID, upload_id: UUID) -> str: ...

    def upload_prefix(self, tenant_id: UUID, dataset_id: UUID) -> str: ...

    def dataset_prefix(self, tenant_id: UUID, dataset_id: UUID) -> str:
        """Where every object of a dataset's versions lives (and nothing else)."""
        ...

    def manifest_key(self, tenant_id: UUID, run_id: UUID) -> str: ...

    def export_key(self, tenant_id: UUID, run_id: UUID, fmt: str) -> str: ...

    def openai_file_key(self, tenant_id: UUID, file_id: UUID) -> str:
        """Where a file uploaded through the OpenAI-compatible Files API lives."""
        ...

    def put_json(self, key: str, payload: Any) -> int: ...

    def get_bytes(self, key: str, *, byte_range: tuple[int, int] | None = None) -> bytes: ...

    def iter_lines(self, key: str) -> Iterator[bytes]: ...

    def size(self, key: str) -> int | None: ...

    def list_keys(self, prefix: str) -> Iterator[str]: ...

    def delete_keys(self, keys: list[str]) -> None: ...

    def presign_put(self, key: str, *, content_type: str, expires_in: int) -> tuple[str, datetime]: ...

    def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> tuple[str, datetime]: ...

    def writer(self, key: str, content_type: str) -> ObjectWriter: ...


# ---------------------------------------------------------------- workflow and secrets
class Workflow(Protocol):
    """A run's execution: started once (starting again is a no-op), stopped on cancel."""

    def start(self, *, tenant_id: UUID, run_id: UUID) -> str: ...

    def stop(self, run_id: UUID, *, cause: str) -> None: ...


# ---------------------------------------------------------------- model calls
class Permit(Protocol):
    """A granted model call: ``settle`` once it is done, with the tokens it really used
    (the bucket is charged the difference from the estimate; the concurrency slot, if
    any, is freed). Settling twice is a no-op."""

    def settle(self, used_tokens: int) -> None: ...


class RateLimiter(Protocol):
    """Provider limits shared by every batch of every run of the deployment, per ``key``
    (``provider:model``): requests/min, tokens/min and calls in flight (``Limits``).

    ``acquire`` blocks until the call may go (or ``deadline``, a ``time.time()`` value,
    passes: then TransientScoringError); ``tokens`` is the call's estimate.
    ``back_off`` makes every caller of ``key`` wait ``seconds`` (a provider's 429
    ``Retry-After``)."""

    def acquire(self, key: str, limits: Limits, *, tokens: int, deadline: float) -> Permit: ...

    def back_off(self, key: str, seconds: float) -> None: ...


class ResponseCache(Protocol):
    """Stored model responses of a tenant, by the request's hash (``ChatRequest.cache_key``)."""

    def get(self, tenant_id: UUID, key: str) -> dict[str, Any] | None: ...

    def get_many(self, tenant_id: UUID, keys: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    def put_many(self, tenant_id: UUID, responses: Mapping[str, dict[str, Any]]) -> None: ...


class Keyring(Protocol):
    """The deployment's HMAC key for API keys."""

    def hmac_key(self) -> bytes: ...


class OpenAIObjects(Protocol):
    """The OpenAI Evals API's own objects (``eval``, ``run``, ``file``) as JSON documents,
    each listed in creation order under its kind (and its parent: a run under its eval)."""

    def put(
        self,
        tenant_id: UUID,
        kind: str,
        object_id: UUID,
        doc: dict[str, Any],
        *,
        created_at: str,
        parent: UUID | None = None,
    ) -> None: ...

    def get(self, tenant_id: UUID, kind: str, object_id: UUID) -> dict[str, Any] | None: ...

    def replace(self, tenant_id: UUID, kind: str, object_id: UUID, doc: dict[str, Any]) -> bool:
        """False when the object no longer exists."""
        ...

    def delete(self, tenant_id: UUID, kind: str, object_id: UUID) -> None: ...

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
        """Up to ``limit`` documents after the object ``after``, and whether more follow."""
        ...


# ---------------------------------------------------------------- all of them
class Ports(Protocol):
    """Every port a service may use. Services take it as ``ports`` (the deployed adapters,
    ``dependencies.DEPLOYED``, by default); tests pass fakes (``tests/support/fakes.py``)."""

    @property
    def tenants(self) -> TenantRepository: ...

    @property
    def projects(self) -> ProjectRepository: ...

    @property
    def datasets(self) -> DatasetRepository: ...

    @property
    def evals(self) -> EvalRepository: ...

    @property
    def runs(self) -> RunRepository: ...

    @property
    def artifacts(self) -> ArtifactStore: ...

    @property
    def workflow(self) -> Workflow: ...

    @property
    def keyring(self) -> Keyring: ...

    def model_client(self, provider: str) -> ModelClient:
        """The model client of a provider (``bedrock`` or ``openai``), for generation and judges."""
        ...

    def judge_prices(self) -> dict:
        """The judge models' prices (``domain.pricing.price_table``)."""
        ...

    @property
    def rate_limiter(self) -> RateLimiter: ...

    @property
    def response_cache(self) -> ResponseCache: ...

    @property
    def openai(self) -> OpenAIObjects: ...
