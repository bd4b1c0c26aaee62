"""In-memory fakes of the ports (``assay_service.ports``): plain dicts and lists, one lock
per store where the real one is atomic (a DynamoDB transaction, a conditional write).

Each fake reproduces what the services rely on of its deployed adapter (compare
``adapters/dynamodb/*.py`` and ``adapters/s3.py``): conditional creates, the
Idempotency-Key claim and its replay/conflict, the tenant's runs in flight against its
quota, exact run counters moved with every create, status move and delete, a batch recorded
once (``duplicate`` on a second delivery, ``inactive`` once the run is not running), the
deletes refused while a run counts the dataset or eval, a dataset being deleted (its
tombstone) reading as gone and taking no version and no run, a run refused on a dataset or
eval that is gone. Where the adapter raises a domain
error (``assay_service.errors``) the fake raises the same one, with the same message;
where it lets a botocore ``ClientError`` through (a duplicate id, a missing object) the
fake raises a ``ClientError`` with the same code.

``Ports`` holds one of each and satisfies ``assay_service.ports.Ports``: a test passes it
to the services (``runs.get_run(who, run_id, ports=ports)``). ``Ports.install(monkeypatch)``
makes a fresh one and sets the settings services read; the ``ports`` fixture does that for a
test. Nothing here opens a socket.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from assay_service.adapters.dynamodb.batches import pack_parts
from assay_service.domain.cursors import decode_cursor, encode_cursor
from assay_service.domain.generation import ChatReply, ChatRequest, judge_request
from assay_service.domain.ids import run_key
from assay_service.domain.scorers.judges import JudgeChatClient, JudgeClient, JudgeReply
from assay_service.errors import ConflictError, NotFoundError, QuotaExceededError, TransientStoreError
from assay_service.models.domain import (
    TERMINAL_STATUSES,
    Dataset,
    DatasetVersion,
    Eval,
    Evaluation,
    EvalVersion,
    JudgeSettings,
    Project,
    Run,
    Tenant,
    utcnow,
)
from assay_service.models.workflow import BatchOutcome
from assay_service.ports import (
    ArtifactStore,
    DatasetRepository,
    EvalRepository,
    Keyring,
    ObjectWriter,
    OpenAIObjects,
    ProjectRepository,
    ResponseCache,
    RunQuery,
    RunRepository,
    TenantRepository,
    Workflow,
)
from assay_service.ports import Ports as PortsProtocol
from assay_service.settings import get_settings
from botocore.exceptions import ClientError

RUN_COUNTERS = ("status", "eval_id", "eval_version_id", "dataset_id", "project_id")
RUN_INDEX_PRIORITY = ("eval_version_id", "dataset_id", "eval_id", "project_id", "status")
IDEMPOTENCY_TTL_S = 24 * 3600


def condition_failed(operation: str, reasons: Sequence[str] | None = None) -> ClientError:
    """The botocore error a failed condition surfaces as (a transaction's carries reasons)."""
    if reasons is None:
        error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "condition failed"}}
        return ClientError(error, operation)
    response = {
        "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
        "CancellationReasons": [{"Code": r} for r in reasons],
    }
    return ClientError(response, operation)


def _page(
    rows: list[tuple[str, Any]], partition: str, limit: int, cursor: str | None
) -> tuple[list, str | None]:
    """Newest first by sort key, with an opaque cursor bound to ``partition`` (a cursor of
    another list is a 400, as ``Table.page`` answers)."""
    start = decode_cursor(cursor, partition=("list", partition))
    ordered = sorted(rows, key=lambda r: r[0], reverse=True)
    if start is not None:
        ordered = [r for r in ordered if r[0] < start["after"]]
    page = ordered[:limit]
    more = len(ordered) > limit
    after = encode_cursor({"list": partition, "after": page[-1][0]}) if page and more else None
    return [value for _, value in page], after


def _sort_key(created_at: datetime, item_id: UUID) -> str:
    return f"{created_at.isoformat()}#{item_id}"


# ---------------------------------------------------------------- tenants and API keys
class FakeTenantRepository:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tenants: dict[UUID, Tenant] = {}
        self.slugs: dict[str, UUID] = {}
        self.keys: dict[str, dict[str, Any]] = {}  # key hash → stored item (no table keys)
        self.key_ids: dict[tuple[UUID, UUID], str] = {}  # (tenant, key id) → key hash
        self.touch_calls: list[str] = []  # every touch_key asked for (a write request)
        self.touches: list[str] = []  # every last_used_at actually written

    def get_by_slug(self, slug: str) -> Tenant | None:
        tenant_id = self.slugs.get(slug)
        return self.tenants.get(tenant_id) if tenant_id else None

    def create(self, tenant: Tenant) -> Tenant:
        """The tenant and its slug at once; an existing slug wins (its tenant is returned)."""
        with self.lock:
            if tenant.slug in self.slugs:
                return self.tenants[self.slugs[tenant.slug]]
            if tenant.id in self.tenants:
                raise condition_failed("TransactWriteItems", ["None", "ConditionalCheckFailed"])
            self.slugs[tenant.slug] = tenant.id
            self.tenants[tenant.id] = tenant
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
        with self.lock:
            if key_hash in self.keys or (tenant_id, key_id) in self.key_ids:
                return False
            self.keys[key_hash] = {
                "key_id": str(key_id),
                "tenant_id": str(tenant_id),
                "role": role,
                "name": name,
                "prefix": prefix,
                "created_at": created_at,
                "expires_at": expires_at,
                "revoked": False,
            }
            self.key_ids[(tenant_id, key_id)] = key_hash
            return True

    def get_key(self, key_hash: str) -> dict[str, Any] | None:
        item = self.keys.get(key_hash)
        return {**item, "key_hash": key_hash} if item else None

    def get_key_by_id(self, tenant_id: UUID, key_id: UUID) -> dict[str, Any] | None:
        key_hash = self.key_ids.get((tenant_id, key_id))
        return self.get_key(key_hash) if key_hash else None

    def list_keys(self, tenant_id: UUID) -> list[dict[str, Any]]:
        mine = [(h, i) for h, i in self.keys.items() if i["tenant_id"] == str(tenant_id)]
        mine.sort(key=lambda hi: f"{hi[1]['created_at']}#{hi[1]['key_id']}", reverse=True)
        return [{**item, "key_hash": h} for h, item in mine]

    def revoke_key(self, key_hash: str) -> None:
        with self.lock:
            if key_hash in self.keys:  # DynamoDB would upsert a stub; services revoke found keys
                self.keys[key_hash]["revoked"] = True

    def touch_key(self, key_hash: str, now: str, not_since: str) -> None:
        """``last_used_at = now`` only if unset or older than ``not_since`` (string order,
        as DynamoDB compares the stored strings); losing the condition is silent."""
        with self.lock:
            self.touch_calls.append(now)
            item = self.keys.get(key_hash)
            if item is None:
                return
            used = item.get("last_used_at")
            if used is None or used < not_since:
                item["last_used_at"] = now
                self.touches.append(now)


# ---------------------------------------------------------------- catalog
class FakeProjectRepository:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[tuple[UUID, UUID], Project] = {}

    def create(self, project: Project, *, exist_ok: bool = False) -> None:
        with self.lock:
            key = (project.tenant_id, project.id)
            if key in self.items:
                if exist_ok:
                    return
                raise condition_failed("PutItem")
            self.items[key] = project

    def get(self, tenant_id: UUID, project_id: UUID) -> Project | None:
        return self.items.get((tenant_id, project_id))

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Project], str | None]:
        rows = [(_sort_key(p.created_at, p.id), p) for (t, _), p in self.items.items() if t == tenant_id]
        return _page(rows, f"{tenant_id}#PROJ", limit, cursor)


def _delete_unreferenced(runs: FakeRunRepository, tenant_id: UUID, counter: str, kind: str) -> None:
    if runs.counter(tenant_id, counter):
        raise ConflictError(
            f"a run of this {kind} was scheduled while it was being deleted; delete the run first, then retry"
        )


def _changed_meanwhile(kind: str) -> ConflictError:
    return ConflictError(
        f"the {kind} changed while it was being deleted (a version "
        "was added, or it was deleted meanwhile); retry"
    )


class FakeDatasetRepository:
    """Datasets and versions; a delete is refused while the run counter of the dataset is
    not zero (the same counters ``FakeRunRepository`` moves). A dataset whose delete has
    begun is in ``deleting`` (the adapter's tombstone): it reads as gone, takes no version,
    and ``FakeRunRepository.create`` refuses a run on it."""

    def __init__(self, runs: FakeRunRepository) -> None:
        self.runs = runs
        self.lock = runs.lock  # one table: the delete's guard reads the run counters
        runs.datasets = self  # and a run's create checks its dataset
        self.items: dict[tuple[UUID, UUID], Dataset] = {}
        self.versions: dict[tuple[UUID, UUID], dict[int, tuple[DatasetVersion, str]]] = {}
        self.deleting: set[tuple[UUID, UUID]] = set()

    def create(self, dataset: Dataset) -> None:
        with self.lock:
            key = (dataset.tenant_id, dataset.id)
            if key in self.items:
                raise condition_failed("PutItem")
            self.items[key] = dataset
            self.versions.setdefault(key, {})

    def get(self, tenant_id: UUID, dataset_id: UUID) -> Dataset | None:
        key = (tenant_id, dataset_id)
        return None if key in self.deleting else self.items.get(key)

    def get_for_delete(self, tenant_id: UUID, dataset_id: UUID) -> tuple[Dataset, bool] | None:
        key = (tenant_id, dataset_id)
        stored = self.items.get(key)
        return (stored, key in self.deleting) if stored is not None else None

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Dataset], str | None]:
        rows = [
            (_sort_key(d.created_at, d.id), d)
            for (t, i), d in self.items.items()
            if t == tenant_id and (t, i) not in self.deleting
        ]
        return _page(rows, f"{tenant_id}#DS", limit, cursor)

    def add_version(
        self, tenant_id: UUID, dataset: Dataset, version: DatasetVersion, object_key: str
    ) -> None:
        """Only if the stored version count is still the one ``dataset`` was read with, and
        no delete of it has begun (NotFoundError then, as the adapter)."""
        with self.lock:
            key = (tenant_id, dataset.id)
            stored = self.items.get(key)
            if stored is None or key in self.deleting:
                raise NotFoundError("dataset")
            versions = self.versions.setdefault(key, {})
            if stored is None or stored.version_count != dataset.version_count or version.version in versions:
                raise ConflictError("another version of this dataset was created at the same time; retry")
            self.items[key] = stored.model_copy(update={"version_count": version.version})
            versions[version.version] = (version, object_key)

    def get_version(
        self, tenant_id: UUID, dataset_id: UUID, version: int | None
    ) -> tuple[DatasetVersion, str] | None:
        versions = self.versions.get((tenant_id, dataset_id), {})
        if version is None:
            return versions[max(versions)] if versions else None
        return versions.get(version)

    def list_versions(self, tenant_id: UUID, dataset_id: UUID) -> list[DatasetVersion]:
        versions = self.versions.get((tenant_id, dataset_id), {})
        return [versions[n][0] for n in sorted(versions, reverse=True)]

    def version_objects(self, tenant_id: UUID, dataset_id: UUID) -> list[tuple[str, str]]:
        versions = self.versions.get((tenant_id, dataset_id), {})
        return [(f"V#{n:08d}", versions[n][1]) for n in sorted(versions)]

    def begin_delete(self, dataset: Dataset) -> None:
        """The tombstone, only while no run counts the dataset and its version count is
        still ``dataset``'s (ConflictError otherwise, nothing changed); again: no change."""
        with self.lock:
            key = (dataset.tenant_id, dataset.id)
            _delete_unreferenced(self.runs, dataset.tenant_id, f"dataset_id#{dataset.id}", "dataset")
            stored = self.items.get(key)
            if stored is None or stored.version_count != dataset.version_count:
                raise _changed_meanwhile("dataset")
            self.deleting.add(key)

    def delete(self, dataset: Dataset, version_keys: Sequence[str]) -> None:
        """The named versions go first (and stay gone), then the dataset only while no run
        counts it and its version count is still ``dataset``'s (ConflictError otherwise)."""
        with self.lock:
            key = (dataset.tenant_id, dataset.id)
            versions = self.versions.get(key, {})
            for handle in version_keys:
                versions.pop(int(handle.removeprefix("V#")), None)
            _delete_unreferenced(self.runs, dataset.tenant_id, f"dataset_id#{dataset.id}", "dataset")
            stored = self.items.get(key)
            if stored is None or stored.version_count != dataset.version_count:
                raise _changed_meanwhile("dataset")
            del self.items[key]
            self.deleting.discard(key)


class FakeEvalRepository:
    def __init__(self, runs: FakeRunRepository) -> None:
        self.runs = runs
        self.lock = runs.lock
        runs.evals = self  # a run's create checks its eval
        self.items: dict[tuple[UUID, UUID], Eval] = {}
        self.versions: dict[tuple[UUID, UUID], EvalVersion] = {}  # (tenant, version id)

    def create(self, ev: Eval) -> None:
        with self.lock:
            if (ev.tenant_id, ev.id) in self.items:
                raise condition_failed("PutItem")
            self.items[(ev.tenant_id, ev.id)] = ev

    def get(self, tenant_id: UUID, eval_id: UUID) -> Eval | None:
        return self.items.get((tenant_id, eval_id))

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Eval], str | None]:
        rows = [(_sort_key(e.created_at, e.id), e) for (t, _), e in self.items.items() if t == tenant_id]
        return _page(rows, f"{tenant_id}#EVAL", limit, cursor)

    def add_version(self, tenant_id: UUID, ev: Eval, version: EvalVersion) -> None:
        with self.lock:
            stored = self.items.get((tenant_id, ev.id))
            if (
                stored is None
                or stored.version_count != ev.version_count
                or (tenant_id, version.id) in self.versions
            ):
                raise ConflictError("another version of this eval was created at the same time; retry")
            self.items[(tenant_id, ev.id)] = stored.model_copy(update={"version_count": version.version})
            self.versions[(tenant_id, version.id)] = version

    def get_version(self, tenant_id: UUID, version_id: UUID) -> EvalVersion | None:
        return self.versions.get((tenant_id, version_id))

    def list_versions(self, tenant_id: UUID, eval_id: UUID) -> list[EvalVersion]:
        mine = [v for (t, _), v in self.versions.items() if t == tenant_id and v.eval_id == eval_id]
        return sorted(mine, key=lambda v: v.version, reverse=True)

    def create_with_version(self, ev: Eval, version: EvalVersion) -> None:
        """Both or neither."""
        with self.lock:
            reasons = [
                "ConditionalCheckFailed" if (ev.tenant_id, ev.id) in self.items else "None",
                "ConditionalCheckFailed" if (ev.tenant_id, version.id) in self.versions else "None",
            ]
            if "ConditionalCheckFailed" in reasons:
                raise condition_failed("TransactWriteItems", reasons)
            self.items[(ev.tenant_id, ev.id)] = ev
            self.versions[(ev.tenant_id, version.id)] = version

    def delete(self, ev: Eval) -> None:
        """As the adapter: fewer versions found than ``ev.version_count`` is a
        TransientStoreError (there: GSI1 lagging), then the eval and its versions go
        together, only while no run counts it and its version count is unchanged."""
        with self.lock:
            found = [k for k, v in self.versions.items() if k[0] == ev.tenant_id and v.eval_id == ev.id]
            if len(found) < ev.version_count:
                raise TransientStoreError(
                    f"eval {ev.id}: {len(found)} of {ev.version_count} versions indexed yet; retry"
                )
            _delete_unreferenced(self.runs, ev.tenant_id, f"eval_id#{ev.id}", "eval")
            stored = self.items.get((ev.tenant_id, ev.id))
            if stored is None or stored.version_count != ev.version_count:
                raise _changed_meanwhile("eval")
            for key in found:
                del self.versions[key]
            del self.items[(ev.tenant_id, ev.id)]


# ---------------------------------------------------------------- runs
def _counter_keys(run: Run) -> list[str]:
    return ["ALL", *(f"{name}#{getattr(run, name)}" for name in RUN_COUNTERS)]


def _matches(run: Run, criteria: Mapping[str, str]) -> bool:
    return all(str(getattr(run, name, None)) == value for name, value in criteria.items())


@dataclass
class _Claim:
    run_id: UUID
    request_hash: str
    ttl: int


class FakeRunRepository:
    """Runs by (tenant, run key), their batches, the tenant's run counters and runs in
    flight: every write under one lock, as the adapter's transactions are atomic. Once the
    catalog fakes are made on it (``Ports`` does), a run's create checks its dataset (and
    that no delete of it has begun) and its eval still stand, as the adapter's transaction."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.datasets: FakeDatasetRepository | None = None
        self.evals: FakeEvalRepository | None = None
        self.runs: dict[tuple[UUID, str], Run] = {}
        self.batches: dict[tuple[UUID, str], dict[int, dict[str, Any]]] = {}
        self.claims: dict[tuple[UUID, str], _Claim] = {}
        self.counters: dict[tuple[UUID, str], int] = {}
        self.in_flight: dict[UUID, int] = {}

    # -- counters
    def counter(self, tenant_id: UUID, sk: str) -> int:
        return self.counters.get((tenant_id, sk), 0)

    def _add(self, tenant_id: UUID, sk: str, delta: int) -> None:
        self.counters[(tenant_id, sk)] = self.counter(tenant_id, sk) + delta

    def create(self, run: Run, *, max_in_flight: int, idempotency: tuple[str, str] | None = None) -> UUID:
        """As the adapter's transaction: the key's claim first (a replay returns the run it
        created, another request with it is a ConflictError, even at the quota), then the
        run's dataset (not being deleted) and eval (NotFoundError), then the tenant's
        in-flight count below ``max_in_flight`` (QuotaExceededError), then the run and its
        counters."""
        with self.lock:
            if idempotency is not None:
                claim = self.claims.get((run.tenant_id, idempotency[0]))
                if claim is not None:
                    return self._replay(run.tenant_id, claim, idempotency[1])
            if self.datasets is not None and self.datasets.get(run.tenant_id, run.dataset_id) is None:
                raise NotFoundError("dataset")
            if self.evals is not None and self.evals.get(run.tenant_id, run.eval_id) is None:
                raise NotFoundError("eval version")
            if self.in_flight.get(run.tenant_id, 0) >= max_in_flight:
                raise QuotaExceededError(
                    f"the tenant already has {max_in_flight} runs pending or running; wait for one to finish",
                    details={"limit": max_in_flight},
                )
            key = (run.tenant_id, run_key(run.id))
            if key in self.runs:
                raise condition_failed("TransactWriteItems", ["ConditionalCheckFailed"])
            if idempotency is not None:
                ttl = int(run.created_at.timestamp()) + IDEMPOTENCY_TTL_S
                self.claims[(run.tenant_id, idempotency[0])] = _Claim(run.id, idempotency[1], ttl)
            self.runs[key] = run
            self.in_flight[run.tenant_id] = self.in_flight.get(run.tenant_id, 0) + 1
            for sk in _counter_keys(run):
                self._add(run.tenant_id, sk, +1)
            return run.id

    def _replay(self, tenant_id: UUID, claim: _Claim, request_hash: str) -> UUID:
        if claim.request_hash != request_hash:
            raise ConflictError(
                "Idempotency-Key was used with a different request", details={"header": "Idempotency-Key"}
            )
        if self.get(tenant_id, claim.run_id) is None:
            raise ConflictError(
                "Idempotency-Key created a run that has since been deleted; send a new key to schedule again",
                details={"header": "Idempotency-Key"},
            )
        return claim.run_id

    def get(self, tenant_id: UUID, run_id: UUID) -> Run | None:
        run = self.runs.get((tenant_id, run_key(run_id)))
        return run if run is not None and run.id == run_id else None

    def get_by_key(self, tenant_id: UUID, key: str) -> Run | None:
        return self.runs.get((tenant_id, key))

    def _placement(self, query: RunQuery) -> str:
        chosen = next((name for name in RUN_INDEX_PRIORITY if name in query.criteria), None)
        if chosen is None:
            return f"{query.tenant_id}#RunsByTenant"
        return f"{query.tenant_id}#{chosen}#{query.criteria[chosen]}"

    def list_page(self, query: RunQuery) -> tuple[list[Run], str | None]:
        """Newest first; ``offset`` skips unless a cursor continues (bound to the list)."""
        partition = self._placement(query)
        rows = [
            (_sort_key(r.created_at, r.id), r)
            for (t, _), r in self.runs.items()
            if t == query.tenant_id and _matches(r, query.criteria)
        ]
        if query.cursor is None and query.offset:
            rows = sorted(rows, key=lambda r: r[0], reverse=True)[query.offset :]
        return _page(rows, partition, query.limit, query.cursor)

    def count(self, query: RunQuery) -> int:
        """One criterion or none: the counter (what creates, moves and deletes maintain);
        combined criteria: the matching runs."""
        if len(query.criteria) > 1 or not set(query.criteria) <= set(RUN_COUNTERS):
            return sum(
                1 for (t, _), r in self.runs.items() if t == query.tenant_id and _matches(r, query.criteria)
            )
        sk = next((f"{k}#{v}" for k, v in query.criteria.items()), "ALL")
        return self.counter(query.tenant_id, sk)

    def set_status(
        self, run: Run, status: str, *, expect: Sequence[str], fields: Mapping[str, Any] | None = None
    ) -> bool:
        """Move the stored run to ``status`` only if its *current* status is expected; the
        status counters move with it and a finishing move frees the in-flight slot."""
        with self.lock:
            key = (run.tenant_id, run_key(run.id))
            current = self.runs.get(key)
            if current is None or current.id != run.id or current.status not in expect:
                return False
            data = current.model_dump(mode="json")
            data.update({"status": status, "updated_at": utcnow().isoformat(), **(fields or {})})
            self.runs[key] = Run.model_validate(data)
            if status != current.status:
                self._add(run.tenant_id, f"status#{current.status}", -1)
                self._add(run.tenant_id, f"status#{status}", +1)
            if status in TERMINAL_STATUSES and current.status not in TERMINAL_STATUSES:
                self.in_flight[run.tenant_id] = self.in_flight.get(run.tenant_id, 0) - 1
            return True

    def delete(self, run: Run) -> bool:
        """Its batches, then the run only while it is still in ``run.status`` (False
        otherwise), leaving every counter it is in."""
        with self.lock:
            key = (run.tenant_id, run_key(run.id))
            self.batches.pop(key, None)
            current = self.runs.get(key)
            if current is None or current.status != run.status:
                return False
            del self.runs[key]
            for sk in _counter_keys(run):
                self._add(run.tenant_id, sk, -1)
            if run.status not in TERMINAL_STATUSES:
                self.in_flight[run.tenant_id] = self.in_flight.get(run.tenant_id, 0) - 1
            return True

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
    ) -> BatchOutcome:
        """Once: a batch already there is ``duplicate`` (nothing counted), a run not running
        is ``inactive`` (nothing written); else the batch and the counts, together."""
        body: dict[str, Any] = {
            "records": records,
            "evaluations": [e.model_dump(mode="json") for e in evaluations],
        }
        if usage:
            body["usage"] = list(usage)
        payload = json.loads(json.dumps(body))
        parts = len(pack_parts(index, payload))  # BatchTooLargeError as the adapter
        with self.lock:
            key = (run.tenant_id, run_key(run.id))
            batches = self.batches.setdefault(key, {})
            if index in batches:
                return "duplicate"
            current = self.runs.get(key)
            if current is None or current.status != "running":
                return "inactive"
            batches[index] = {
                "batch": index,
                "parts": parts,
                "completed": completed,
                "failed": failed,
                **payload,
            }
            self.runs[key] = current.model_copy(
                update={
                    "completed_count": current.completed_count + completed,
                    "failed_count": current.failed_count + failed,
                    "cache_hits": current.cache_hits + cache[0],
                    "cache_misses": current.cache_misses + cache[1],
                    "updated_at": datetime.fromisoformat(now),
                }
            )
            return "recorded"

    def batch_recorded(self, run: Run, index: int) -> bool:
        return index in self.batches.get((run.tenant_id, run_key(run.id)), {})

    @staticmethod
    def _view(batch: dict[str, Any]) -> dict[str, Any]:
        return {k: batch[k] for k in ("batch", "parts", "records", "evaluations", "usage") if k in batch}

    def get_batch(self, tenant_id: UUID, key: str, index: int) -> dict[str, Any] | None:
        batch = self.batches.get((tenant_id, key), {}).get(index)
        return self._view(batch) if batch else None

    def iter_batches(self, run: Run, *, first: int = 0) -> Iterator[dict[str, Any]]:
        batches = dict(self.batches.get((run.tenant_id, run_key(run.id)), {}))
        return iter([self._view(batches[i]) for i in sorted(batches) if i >= first])


# ---------------------------------------------------------------- objects
def _no_such_key(key: str) -> ClientError:
    return ClientError({"Error": {"Code": "NoSuchKey", "Message": key}}, "GetObject")


class FakeObjectWriter:
    def __init__(self, store: FakeArtifactStore, key: str, content_type: str) -> None:
        self.store, self.key, self.content_type = store, key, content_type
        self.buffer = bytearray()
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        if self.closed or self.aborted:
            raise ValueError(f"{self.key}: the writer is finished")
        self.buffer += data

    def close(self) -> int:
        self.closed = True
        self.store.put(self.key, bytes(self.buffer), self.content_type)
        return len(self.buffer)

    def abort(self) -> None:
        self.aborted = True  # nothing was stored: the object appears only on close


class FakeArtifactStore:
    """Objects by key, laid out as the S3 store names them; links are ``memory://``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}

    def dataset_version_key(self, tenant_id: UUID, dataset_id: UUID, version_id: UUID) -> str:
        return f"{self.dataset_prefix(tenant_id, dataset_id)}versions/{version_id}.jsonl"

    def dataset_prefix(self, tenant_id: UUID, dataset_id: UUID) -> str:
        return f"tenants/{tenant_id}/datasets/{dataset_id}/"

    def upload_key(self, tenant_id: UUID, dataset_id: UUID, upload_id: UUID) -> str:
        return f"{self.upload_prefix(tenant_id, dataset_id)}{upload_id}.jsonl"

    def upload_prefix(self, tenant_id: UUID, dataset_id: UUID) -> str:
        return f"uploads/{tenant_id}/{dataset_id}/"

    def manifest_key(self, tenant_id: UUID, run_id: UUID) -> str:
        return f"tenants/{tenant_id}/runs/{run_id}/manifest.json"

    def export_key(self, tenant_id: UUID, run_id: UUID, fmt: str) -> str:
        return f"tenants/{tenant_id}/runs/{run_id}/export.{fmt}"

    def openai_file_key(self, tenant_id: UUID, file_id: UUID) -> str:
        return f"tenants/{tenant_id}/openai-files/{file_id}"

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        with self.lock:
            self.objects[key] = body
            self.content_types[key] = content_type

    def put_json(self, key: str, payload: Any) -> int:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.put(key, body, "application/json")
        return len(body)

    def get_bytes(self, key: str, *, byte_range: tuple[int, int] | None = None) -> bytes:
        if key not in self.objects:
            raise _no_such_key(key)
        body = self.objects[key]
        return body[byte_range[0] : byte_range[1] + 1] if byte_range else body  # inclusive, as S3

    def iter_lines(self, key: str) -> Iterator[bytes]:
        if key not in self.objects:
            raise _no_such_key(key)
        return iter(self.objects[key].splitlines(keepends=True))

    def size(self, key: str) -> int | None:
        body = self.objects.get(key)
        return None if body is None else len(body)

    def list_keys(self, prefix: str) -> Iterator[str]:
        return iter(sorted(k for k in self.objects if k.startswith(prefix)))

    def delete_keys(self, keys: list[str]) -> None:
        with self.lock:
            for key in keys:  # a missing key is no error
                self.objects.pop(key, None)
                self.content_types.pop(key, None)

    def presign_put(self, key: str, *, content_type: str, expires_in: int) -> tuple[str, datetime]:
        return f"memory://put/{key}?type={content_type}", datetime.now(UTC) + timedelta(seconds=expires_in)

    def presign_get(
        self, key: str, *, filename: str, content_type: str, expires_in: int
    ) -> tuple[str, datetime]:
        return f"memory://get/{key}?filename={filename}", datetime.now(UTC) + timedelta(seconds=expires_in)

    def writer(self, key: str, content_type: str) -> ObjectWriter:
        return FakeObjectWriter(self, key, content_type)


# ---------------------------------------------------------------- workflow and secrets
class FakeWorkflow:
    """Executions named by run id: starting one again is a no-op; stopping one that never
    started is fine. ``fail_start`` makes ``start`` raise it (a Step Functions outage)."""

    def __init__(self) -> None:
        self.started: dict[UUID, UUID] = {}  # run id → tenant id
        self.start_calls = 0
        self.stopped: list[tuple[UUID, str]] = []
        self.fail_start: Exception | None = None

    def start(self, *, tenant_id: UUID, run_id: UUID) -> str:
        self.start_calls += 1
        if self.fail_start is not None:
            raise self.fail_start
        self.started.setdefault(run_id, tenant_id)
        return f"arn:memory:execution:{run_id}"

    def stop(self, run_id: UUID, *, cause: str) -> None:
        self.stopped.append((run_id, cause))


class FakeJudgeClient:
    """A model: a judge's call (one JSON object wanted) is answered with ``reply``, a
    generation with ``answer(request)`` (default: the last user message upper-cased), an
    embeddings call with ``embedding(text)`` per text (default: ``hashed_embedding``, a
    hashed bag of lowercase words in 64 dimensions, normalized; tokens: characters / 4).
    Keeps the judges' prompts (``calls``), every chat request (``requests``) and every
    embeddings call (``embeddings``: (model, texts))."""

    def __init__(self, reply: str = '{"score": 1, "reasoning": "fine"}', answer: Any = None) -> None:
        self.reply = reply
        self.answer = answer or (lambda request: request.messages[-1][1].upper())
        self.calls: list[tuple[str, str]] = []
        self.requests: list[ChatRequest] = []
        self.embeddings: list[tuple[str, list[str]]] = []
        self.embedding: Any = None  # text -> vector; None: hashed_embedding
        self.lock = threading.Lock()

    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        reply = self.chat(judge_request(system, user, settings))
        return JudgeReply(
            text=reply.text, input_tokens=reply.prompt_tokens, output_tokens=reply.completion_tokens
        )

    def complete_chat(self, request: ChatRequest) -> JudgeReply:
        """A whole conversation (OpenAI's model graders): answered like a judge's call."""
        reply = self.chat(request)
        return JudgeReply(
            text=reply.text, input_tokens=reply.prompt_tokens, output_tokens=reply.completion_tokens
        )

    def chat(self, request: ChatRequest) -> ChatReply:
        with self.lock:
            self.requests.append(request)
            if request.json_object:
                self.calls.append((request.messages[0][1], request.messages[-1][1]))
        text = self.reply if request.json_object else self.answer(request)
        return ChatReply(text=text, finish_reason="stop", prompt_tokens=10, completion_tokens=5)

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int | None]:
        from tests.support.judge_server import hashed_embedding, tokens_of

        with self.lock:
            self.embeddings.append((model, list(texts)))
        embedding = self.embedding or hashed_embedding
        return [embedding(text) for text in texts], sum(tokens_of(len(text)) for text in texts)


class FakeResponseCache:
    def __init__(self) -> None:
        self.items: dict[tuple[UUID, str], dict[str, Any]] = {}
        self.gets = 0  # one answer at a time (get_many reads a batch's)

    def get(self, tenant_id: UUID, key: str) -> dict[str, Any] | None:
        self.gets += 1
        return self.items.get((tenant_id, key))

    def get_many(self, tenant_id: UUID, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {key: self.items[tenant_id, key] for key in keys if (tenant_id, key) in self.items}

    def put_many(self, tenant_id: UUID, responses: Mapping[str, dict[str, Any]]) -> None:
        for key, response in responses.items():
            self.items[tenant_id, key] = dict(response)


class FakeOpenAIObjects:
    """Documents by (tenant, kind, id), listed in the order they were put."""

    def __init__(self) -> None:
        self.docs: dict[tuple[UUID, str, UUID], tuple[str, dict[str, Any]]] = {}

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
        key = (tenant_id, kind, object_id)
        if key in self.docs:
            raise AssertionError("put twice")
        self.docs[key] = (f"{parent}#{created_at}#{object_id}", json.loads(json.dumps(doc)))

    def get(self, tenant_id: UUID, kind: str, object_id: UUID) -> dict[str, Any] | None:
        found = self.docs.get((tenant_id, kind, object_id))
        return json.loads(json.dumps(found[1])) if found else None

    def replace(self, tenant_id: UUID, kind: str, object_id: UUID, doc: dict[str, Any]) -> bool:
        key = (tenant_id, kind, object_id)
        if key not in self.docs:
            return False
        self.docs[key] = (self.docs[key][0], json.loads(json.dumps(doc)))
        return True

    def delete(self, tenant_id: UUID, kind: str, object_id: UUID) -> None:
        self.docs.pop((tenant_id, kind, object_id), None)

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
        listed = sorted(
            (order, oid, doc)
            for (tid, k, oid), (order, doc) in self.docs.items()
            if tid == tenant_id and k == kind and order.startswith(f"{parent}#")
        )
        if not ascending:
            listed.reverse()
        if after is not None:
            ids = [oid for _, oid, _ in listed]
            if after not in ids:
                return [], False
            listed = listed[ids.index(after) + 1 :]
        return [json.loads(json.dumps(doc)) for _, _, doc in listed[:limit]], len(listed) > limit


class FakeKeyring:
    def __init__(self, key: bytes = b"k" * 32) -> None:
        self.key = key

    def hmac_key(self) -> bytes:
        return self.key


# ---------------------------------------------------------------- all of them
@dataclass
class Ports:
    """One fake of every port: pass it to a service as ``ports=``."""

    runs: FakeRunRepository = field(default_factory=FakeRunRepository)
    tenants: FakeTenantRepository = field(default_factory=FakeTenantRepository)
    projects: FakeProjectRepository = field(default_factory=FakeProjectRepository)
    artifacts: FakeArtifactStore = field(default_factory=FakeArtifactStore)
    workflow: FakeWorkflow = field(default_factory=FakeWorkflow)
    keyring: FakeKeyring = field(default_factory=FakeKeyring)
    judge: FakeJudgeClient = field(default_factory=FakeJudgeClient)
    response_cache: FakeResponseCache = field(default_factory=FakeResponseCache)
    rate_limiter: Any = field(default_factory=lambda: FakeRateLimiter())
    openai: FakeOpenAIObjects = field(default_factory=FakeOpenAIObjects)
    datasets: FakeDatasetRepository = field(init=False)
    evals: FakeEvalRepository = field(init=False)

    def __post_init__(self) -> None:
        self.datasets = FakeDatasetRepository(self.runs)
        self.evals = FakeEvalRepository(self.runs)

    def model_client(self, provider: str) -> FakeJudgeClient:
        """``judge``, whichever the provider."""
        return self.judge

    def judge_prices(self) -> dict:
        """No prices: every judge call costs nothing."""
        return {}

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch, **settings: Any) -> Ports:
        """Fresh fakes, and the settings services read (``TABLE_NAME``/``BUCKET_NAME``
        placeholders plus ``settings``, e.g. ``max_runs_in_flight=2``). Call
        ``get_settings.cache_clear()`` after the test."""
        monkeypatch.setenv("TABLE_NAME", "memory-table")
        monkeypatch.setenv("BUCKET_NAME", "memory-bucket")
        for name, value in settings.items():
            monkeypatch.setenv(name.upper(), str(value))
        get_settings.cache_clear()
        return cls()


@pytest.fixture(name="ports")
def ports_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ports]:
    ports = Ports.install(monkeypatch)
    yield ports
    get_settings.cache_clear()


# mypy checks the fakes against their ports here (tests/unit/test_service_fakes.py checks
# the method names and parameters at test time, since `make check` does not type tests).
def _typed(
    p: Ports,
) -> tuple[
    TenantRepository,
    ProjectRepository,
    DatasetRepository,
    EvalRepository,
    RunRepository,
    ArtifactStore,
    Workflow,
    Keyring,
    ObjectWriter,
    JudgeClient,
    JudgeChatClient,
    ResponseCache,
    OpenAIObjects,
    PortsProtocol,
]:
    return (
        p.tenants,
        p.projects,
        p.datasets,
        p.evals,
        p.runs,
        p.artifacts,
        p.workflow,
        p.keyring,
        FakeObjectWriter(p.artifacts, "k", "t"),
        p.judge,
        p.judge,
        p.response_cache,
        p.openai,
        p,
    )


FAKES: dict[type, type] = {
    TenantRepository: FakeTenantRepository,
    ProjectRepository: FakeProjectRepository,
    DatasetRepository: FakeDatasetRepository,
    EvalRepository: FakeEvalRepository,
    RunRepository: FakeRunRepository,
    ArtifactStore: FakeArtifactStore,
    ObjectWriter: FakeObjectWriter,
    Workflow: FakeWorkflow,
    Keyring: FakeKeyring,
    JudgeClient: FakeJudgeClient,
    JudgeChatClient: FakeJudgeClient,
    ResponseCache: FakeResponseCache,
    OpenAIObjects: FakeOpenAIObjects,
    PortsProtocol: Ports,
}


# ---------------------------------------------------------------- model call limits
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import replace  # noqa: E402

from assay_service.domain.ratelimit import Bucket, Limits, charge, take  # noqa: E402
from assay_service.errors import TransientScoringError  # noqa: E402
from assay_service.ports import Permit, RateLimiter  # noqa: E402


class FakePermit:
    """A call granted by ``FakeRateLimiter``; ``settle`` as the adapter's (twice: no-op)."""

    def __init__(self, limiter: FakeRateLimiter | None, key: str, limits: Limits, estimate: int) -> None:
        self.limiter = limiter
        self.key = key
        self.limits = limits
        self.estimate = estimate
        self.settled = False

    def settle(self, used_tokens: int) -> None:
        if self.limiter is None:
            self.settled = True
        else:
            self.limiter._settle(self, max(0, used_tokens))


class FakeRateLimiter:
    """``ports.RateLimiter`` in memory, with the adapter's semantics
    (``adapters/dynamodb/ratelimit.py``): a ``domain.ratelimit`` bucket per key, at most
    ``concurrent`` calls of a key in flight, ``back_off`` blocking every caller of the key,
    TransientScoringError naming the key when a call cannot go before ``deadline``. One
    lock; waits sleep outside it (``clock``/``sleep`` may be a test's fake pair).

    Records what happened, for tests to assert: ``acquisitions`` (key, estimate, time),
    ``settlements`` (key, estimate, used), ``back_offs`` (key, seconds), ``refusals``
    (keys that hit their deadline), ``in_flight`` and ``max_in_flight`` per key."""

    SLOT_POLL_S = 0.005

    def __init__(
        self, *, clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.Lock()
        self.buckets: dict[str, Bucket] = {}
        self.blocked_until: dict[str, float] = defaultdict(float)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self.acquisitions: list[tuple[str, int, float]] = []
        self.settlements: list[tuple[str, int, int]] = []
        self.back_offs: list[tuple[str, float]] = []
        self.refusals: list[str] = []

    def acquire(self, key: str, limits: Limits, *, tokens: int, deadline: float) -> FakePermit:
        tokens = max(0, tokens)
        while True:
            with self.lock:
                now = self.clock()
                if limits.concurrent is not None and self.in_flight[key] >= limits.concurrent:
                    wait, reason = self.SLOT_POLL_S, f"all {limits.concurrent} call slots stayed held"
                else:
                    after, wait = self._take(key, limits, now, tokens)
                    reason = "no call allowed"
                    if after is not None:
                        self.buckets[key] = after
                        if limits.concurrent is not None:
                            self.in_flight[key] += 1
                            self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
                        self.acquisitions.append((key, tokens, now))
                        return FakePermit(self, key, limits, tokens)
                if now + wait > deadline:
                    self.refusals.append(key)
                    raise TransientScoringError(f"rate limit of {key}: {reason} before the deadline")
            self.sleep(wait)

    def _take(self, key: str, limits: Limits, now: float, tokens: int) -> tuple[Bucket | None, float]:
        state = self.buckets.get(key)
        if state is not None:
            state = replace(state, blocked_until=self.blocked_until[key])
        elif self.blocked_until[key]:
            state = replace(Bucket.full(limits, now), blocked_until=self.blocked_until[key])
        if limits.requests_per_minute is None and limits.tokens_per_minute is None:
            if now < self.blocked_until[key]:
                return None, self.blocked_until[key] - now
            return state or Bucket.full(limits, now), 0.0
        return take(state, limits, now, requests=1, tokens=tokens)

    def back_off(self, key: str, seconds: float) -> None:
        with self.lock:
            now = self.clock()
            self.blocked_until[key] = max(self.blocked_until[key], now + max(0.0, seconds))
            self.back_offs.append((key, seconds))

    def _settle(self, permit: FakePermit, used: int) -> None:
        with self.lock:
            if permit.settled:
                return
            permit.settled = True
            if permit.limits.concurrent is not None:
                self.in_flight[permit.key] -= 1
            if permit.limits.tokens_per_minute is not None and used != permit.estimate:
                self.buckets[permit.key] = charge(
                    self.buckets.get(permit.key), permit.limits, self.clock(), used - permit.estimate
                )
            self.settlements.append((permit.key, permit.estimate, used))


FAKES[RateLimiter] = FakeRateLimiter
FAKES[Permit] = FakePermit
