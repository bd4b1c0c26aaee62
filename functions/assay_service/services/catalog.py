"""Datasets and evals: creation, immutable versions, listing — all tenant-scoped."""

from __future__ import annotations

import uuid
from uuid import UUID

from assay_service import dependencies as deps
from assay_service.adapters.s3 import dataset_version_key
from assay_service.domain.scoring import check_metrics
from assay_service.errors import InvalidRequestError, NotFoundError
from assay_service.models.api import (
    CreateDatasetRequest,
    CreateEvalRequest,
    CreateEvalVersionRequest,
    RecordIn,
)
from assay_service.models.domain import (
    Dataset,
    DatasetVersion,
    Eval,
    EvalVersion,
    Metric,
    Principal,
    Record,
    utcnow,
)
from assay_service.services.pagination import decode_cursor, encode_cursor

MAX_REPORTED_RECORD_ERRORS = 20


def default_project(tenant_id: UUID) -> UUID:
    """Every tenant has a default project until it creates its own."""
    return uuid.uuid5(tenant_id, "default-project")


# ---------------------------------------------------------------- datasets
def create_dataset(principal: Principal, req: CreateDatasetRequest) -> Dataset:
    dataset = Dataset(id=uuid.uuid4(), tenant_id=principal.tenant_id,
                      project_id=req.project_id or default_project(principal.tenant_id),
                      name=req.name, description=req.description, created_at=utcnow())
    deps.datasets().create(dataset)
    return dataset


def get_dataset(principal: Principal, dataset_id: UUID) -> Dataset:
    dataset = deps.datasets().get(principal.tenant_id, dataset_id)
    if dataset is None:
        raise NotFoundError("dataset")
    return dataset


def list_datasets(principal: Principal, *, limit: int, cursor: str | None
                  ) -> tuple[list[Dataset], str | None]:
    start = decode_cursor(cursor, partition=("GSI1PK", f"T#{principal.tenant_id}#DS"))
    items, last = deps.datasets().list(principal.tenant_id, limit=limit, start=start)
    return items, encode_cursor(last)


def normalize_records(records: list[RecordIn]) -> list[Record]:
    """Assign missing ids; reject the whole version if ids repeat (record numbers are 1-based)."""
    out: list[Record] = []
    first_seen: dict[str, int] = {}
    problems: list[str] = []
    for number, rec in enumerate(records, start=1):
        record_id = rec.id if rec.id is not None else f"rec-{number:06d}"
        if record_id in first_seen:
            problems.append(f"record {number}: id {record_id!r} repeats record {first_seen[record_id]}")
        else:
            first_seen[record_id] = number
        out.append(Record(**rec.model_dump(exclude={"id", "trace_id"}), id=record_id,
                          trace_id=rec.trace_id or uuid.uuid4()))
    if problems:
        raise InvalidRequestError(
            f"{len(problems)} invalid record(s); the version was not created: {problems[0]}",
            details={"records": problems[:MAX_REPORTED_RECORD_ERRORS]})
    return out


def create_dataset_version(principal: Principal, dataset_id: UUID, records: list[RecordIn]
                           ) -> DatasetVersion:
    dataset = get_dataset(principal, dataset_id)
    normalized = normalize_records(records)
    body = b"".join(r.model_dump_json().encode() + b"\n" for r in normalized)
    version = DatasetVersion(id=uuid.uuid4(), dataset_id=dataset.id,
                             version=dataset.version_count + 1, record_count=len(normalized),
                             size_bytes=len(body), created_at=utcnow())
    key = dataset_version_key(principal.tenant_id, dataset.id, version.id)
    # The object first, then the item that makes it visible: a failure in between leaves
    # an unreachable object, never a version without records.
    deps.artifacts().put_bytes(key, body, "application/x-ndjson")
    deps.datasets().add_version(principal.tenant_id, dataset, version, key)
    return version


def list_dataset_versions(principal: Principal, dataset_id: UUID) -> list[DatasetVersion]:
    get_dataset(principal, dataset_id)
    return deps.datasets().list_versions(principal.tenant_id, dataset_id)


# ---------------------------------------------------------------- evals
def create_eval(principal: Principal, req: CreateEvalRequest) -> Eval:
    ev = Eval(id=uuid.uuid4(), tenant_id=principal.tenant_id,
              project_id=req.project_id or default_project(principal.tenant_id),
              name=req.name, description=req.description, created_at=utcnow())
    deps.evals().create(ev)
    return ev


def get_eval(principal: Principal, eval_id: UUID) -> Eval:
    ev = deps.evals().get(principal.tenant_id, eval_id)
    if ev is None:
        raise NotFoundError("eval")
    return ev


def list_evals(principal: Principal, *, limit: int, cursor: str | None
               ) -> tuple[list[Eval], str | None]:
    start = decode_cursor(cursor, partition=("GSI1PK", f"T#{principal.tenant_id}#EVAL"))
    items, last = deps.evals().list(principal.tenant_id, limit=limit, start=start)
    return items, encode_cursor(last)


def create_eval_version(principal: Principal, eval_id: UUID, req: CreateEvalVersionRequest
                        ) -> EvalVersion:
    ev = get_eval(principal, eval_id)
    metrics = [Metric(**m.model_dump()) for m in req.metrics]
    check_metrics(metrics)
    version = EvalVersion(id=uuid.uuid4(), eval_id=ev.id, version=ev.version_count + 1,
                          metrics=metrics, threshold=req.threshold, judge=req.judge,
                          created_at=utcnow())
    deps.evals().add_version(principal.tenant_id, ev, version)
    return version


def get_eval_version(principal: Principal, version_id: UUID) -> EvalVersion:
    version = deps.evals().get_version(principal.tenant_id, version_id)
    if version is None:
        raise NotFoundError("eval version")
    return version


def list_eval_versions(principal: Principal, eval_id: UUID) -> list[EvalVersion]:
    get_eval(principal, eval_id)
    return deps.evals().list_versions(principal.tenant_id, eval_id)
