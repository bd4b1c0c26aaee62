"""Datasets and evals: creation, immutable versions, listing — all tenant-scoped."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from assay_service.dependencies import DEPLOYED
from assay_service.domain import coverage, jsondoc
from assay_service.domain.coverage import Coverage
from assay_service.domain.cursors import decode_position, encode_cursor
from assay_service.errors import ConflictError, InvalidRequestError, NotFoundError, found
from assay_service.models.api import (
    CreateDatasetRequest,
    CreateEvalRequest,
    CreateEvalVersionRequest,
    CreateProjectRequest,
    RecordIn,
)
from assay_service.models.domain import (
    Dataset,
    DatasetVersion,
    Eval,
    EvalVersion,
    GenerationSettings,
    Metric,
    Principal,
    Project,
    Record,
    utcnow,
)
from assay_service.observability import get_logger
from assay_service.ports import ArtifactStore, Ports, RunQuery
from assay_service.settings import get_settings

MAX_REPORTED_RECORD_ERRORS = 20
UPLOAD_CONTENT_TYPE = "application/x-ndjson"


def default_project(tenant_id: UUID) -> UUID:
    """Every tenant has a default project until it creates its own."""
    return uuid.uuid5(tenant_id, "default-project")


# ---------------------------------------------------------------- projects
def create_project(principal: Principal, req: CreateProjectRequest, *, ports: Ports = DEPLOYED) -> Project:
    project = Project(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        name=req.name,
        description=req.description,
        created_at=utcnow(),
    )
    ports.projects.create(project)
    return project


def get_project(principal: Principal, project_id: UUID, *, ports: Ports = DEPLOYED) -> Project:
    return found(ports.projects.get(principal.tenant_id, project_id), "project")


def list_projects(
    principal: Principal, *, limit: int, cursor: str | None, ports: Ports = DEPLOYED
) -> tuple[list[Project], str | None]:
    return ports.projects.list_page(principal.tenant_id, limit=limit, cursor=cursor)


def project_for(principal: Principal, project_id: UUID | None, *, ports: Ports = DEPLOYED) -> UUID:
    """The project a new dataset or eval joins: one of the caller's, or the default."""
    if project_id is None:
        return default_project(principal.tenant_id)
    return get_project(principal, project_id, ports=ports).id


# ---------------------------------------------------------------- datasets
def create_dataset(
    principal: Principal, req: CreateDatasetRequest, *, ports: Ports = DEPLOYED
) -> tuple[Dataset, DatasetVersion | None]:
    """A dataset, and with ``req.records`` its version 1: both, or nothing.

    The records are checked before anything is written (any bad record: 400 and no
    dataset). Version 1 is then written by ``create_dataset_version`` — the one path every
    version takes, with all its checks — and if that still fails, the dataset item is
    deleted again before the error is answered."""
    project_id = project_for(principal, req.project_id, ports=ports)
    if req.records is not None:
        normalize_records(req.records)
    dataset = Dataset(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        project_id=project_id,
        name=req.name,
        description=req.description,
        created_at=utcnow(),
    )
    ports.datasets.create(dataset)
    if req.records is None:
        return dataset, None
    try:
        version = create_dataset_version(
            principal, dataset.id, records=req.records, strict=req.strict, ports=ports
        )
    except BaseException:
        try:
            ports.datasets.delete(dataset, [])
        except Exception:
            get_logger().exception(
                "could not remove a dataset whose version 1 failed", extra={"dataset_id": str(dataset.id)}
            )
        raise
    return dataset.model_copy(update={"version_count": version.version}), version


def get_dataset(principal: Principal, dataset_id: UUID, *, ports: Ports = DEPLOYED) -> Dataset:
    return found(ports.datasets.get(principal.tenant_id, dataset_id), "dataset")


def list_datasets(
    principal: Principal, *, limit: int, cursor: str | None, ports: Ports = DEPLOYED
) -> tuple[list[Dataset], str | None]:
    return ports.datasets.list_page(principal.tenant_id, limit=limit, cursor=cursor)


class RecordNormalizer:
    """Streams records in: assigns missing ids and trace ids, remembers what is wrong.

    Record numbers are 1-based (the line number of an uploaded JSONL file)."""

    def __init__(self) -> None:
        self.limit = get_settings().max_records_per_version
        self.first_seen: dict[str, int] = {}
        self.problems: list[str] = []
        self.count = 0
        self.coverage = Coverage()

    def add(self, number: int, record: RecordIn) -> Record:
        self.count += 1
        if self.count == self.limit + 1:
            self.problems.append(
                f"record {number}: more than {self.limit:,} records per version (MaxRecordsPerVersion)"
            )
        record_id = record.id if record.id is not None else f"rec-{number:06d}"
        if record_id in self.first_seen:
            self.problems.append(
                f"record {number}: id {record_id!r} repeats record {self.first_seen[record_id]}"
            )
        else:
            self.first_seen[record_id] = number
        # Field by field: the same record as through model_dump(), for less of an upload's time.
        out = Record(
            id=record_id,
            trace_id=record.trace_id or uuid.uuid4(),
            prompt=record.prompt,
            input=record.input,
            context=record.context,
            output=record.output,
            golden_answer=record.golden_answer,
            metadata=record.metadata,
        )
        self.coverage.add(out)
        return out

    def invalid(self, number: int, problem: str) -> None:
        self.count += 1
        self.problems.append(f"record {number}: {problem}")

    def check(self) -> None:
        if self.problems:
            raise InvalidRequestError(
                f"{len(self.problems)} invalid record(s); the version was not created: {self.problems[0]}",
                details={
                    "records": self.problems[:MAX_REPORTED_RECORD_ERRORS],
                    "invalid_count": len(self.problems),
                },
            )
        if self.count == 0:
            raise InvalidRequestError("the file holds no records", details={"records": []})


def normalize_records(records: list[RecordIn]) -> list[Record]:
    normalizer = RecordNormalizer()
    out = [normalizer.add(number, rec) for number, rec in enumerate(records, start=1)]
    normalizer.check()
    return out


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) + jsondoc.error_suffix(first)
    message = first["msg"] + coverage.unknown_field_hint(first)
    return f"{where}: {message}" if where else message


def parse_record_line(line: bytes) -> RecordIn:
    """One line of an uploaded JSONL file as a record: decoded by jsondoc and validated like
    an inline record of a request body (pydantic's Python mode, as Powertools does), so that
    both ways in give the same verdict on the same record."""
    return RecordIn.model_validate(jsondoc.decode(line, where=""))


def _parse_upload(lines: Iterator[bytes], normalizer: RecordNormalizer) -> Iterator[bytes]:
    """Validate an uploaded JSONL stream line by line; yield normalized lines."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            normalizer.invalid(number, "empty line")
            continue
        try:
            record = parse_record_line(line)
        except jsondoc.JSONDocumentError as exc:
            normalizer.invalid(number, exc.message if exc.where else exc.problem)
            continue
        except ValidationError as exc:
            normalizer.invalid(number, _describe(exc))
            continue
        yield normalizer.add(number, record).model_dump_json().encode() + b"\n"


def create_upload(
    principal: Principal, dataset_id: UUID, *, ports: Ports = DEPLOYED
) -> tuple[UUID, str, datetime]:
    dataset = get_dataset(principal, dataset_id, ports=ports)
    upload_id = uuid.uuid4()
    store = ports.artifacts
    url, expires_at = store.presign_put(
        store.upload_key(principal.tenant_id, dataset.id, upload_id),
        content_type=UPLOAD_CONTENT_TYPE,
        expires_in=get_settings().presign_expiry_seconds,
    )
    return upload_id, url, expires_at


def create_dataset_version(
    principal: Principal,
    dataset_id: UUID,
    records: list[RecordIn] | None = None,
    upload_id: UUID | None = None,
    *,
    strict: bool = False,
    ports: Ports = DEPLOYED,
) -> DatasetVersion:
    """A new immutable version from inline records or an uploaded JSONL file.

    The file is read streaming and written streaming; any invalid record rejects the whole
    version (the first 20 problems are named) and nothing is stored. The records' field
    coverage is stored on the version; with ``strict``, records that draw coverage warnings
    are refused the same way."""
    dataset = get_dataset(principal, dataset_id, ports=ports)
    version_id = uuid.uuid4()
    store = ports.artifacts
    key = store.dataset_version_key(principal.tenant_id, dataset.id, version_id)
    normalizer = RecordNormalizer()
    writer = store.writer(key, "application/x-ndjson")
    try:
        if upload_id is not None:
            source = store.upload_key(principal.tenant_id, dataset.id, upload_id)
            if store.size(source) is None:
                raise NotFoundError("upload")
            lines = _parse_upload(store.iter_lines(source), normalizer)
        else:
            lines = (
                normalizer.add(n, r).model_dump_json().encode() + b"\n"
                for n, r in enumerate(records or [], start=1)
            )
        for line in lines:
            if not normalizer.problems:  # once something is wrong, only keep validating
                writer.write(line)
        normalizer.check()
        fields, unknown = normalizer.coverage.fields, normalizer.coverage.unknown_fields()
        if strict:
            _refuse_on_warnings(coverage.warnings(normalizer.count, fields, unknown))
    except BaseException:
        writer.abort()
        raise
    size = writer.close()
    version = DatasetVersion(
        id=version_id,
        dataset_id=dataset.id,
        version=dataset.version_count + 1,
        record_count=normalizer.count,
        size_bytes=size,
        created_at=utcnow(),
        fields=fields,
        unknown_fields=unknown,
    )
    # The object first, then the item that makes it visible: never a version without
    # records. A refused item (another version first, a delete begun) takes its object
    # with it; an object a crash leaves behind lies under the dataset's prefix, which the
    # dataset's delete empties whole.
    try:
        ports.datasets.add_version(principal.tenant_id, dataset, version, key)
    except (ConflictError, NotFoundError):
        store.delete_keys([key])
        raise
    return version


def _refuse_on_warnings(warnings: list[dict[str, Any]]) -> None:
    """``strict``: a version whose records draw warnings is not created."""
    if warnings:
        named = ", ".join(sorted({w["field"] for w in warnings}, key=str))
        raise InvalidRequestError(
            f"strict: the records do not fit the record fields ({named}); the version was not "
            f"created: {warnings[0]['message']}",
            details={"warnings": warnings},
        )


def version_lines(
    store: ArtifactStore, key: str, size: int, *, start: int = 0
) -> Iterator[tuple[int, bytes]]:
    """Each whole line of a dataset version's file from byte ``start`` on, with its byte
    offset: ranged reads of 256 KB (four times more while one line is longer), so a page of
    records costs the bytes it holds, not the file."""
    offset, chunk = start, 256 * 1024
    while offset < size:
        end = min(offset + chunk, size) - 1
        data = store.get_bytes(key, byte_range=(offset, end))
        consumed = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n") and end + 1 < size:
                break  # a partial line: read it whole next time
            yield offset + consumed, line
            consumed += len(line)
        if consumed == 0:
            chunk *= 4  # one record longer than the chunk
            continue
        offset += consumed


def read_records(
    principal: Principal,
    dataset_id: UUID,
    version: int,
    *,
    limit: int,
    cursor: str | None,
    ports: Ports = DEPLOYED,
) -> tuple[list[Record], str | None]:
    """A page of a version's records; the cursor is a byte offset into the version file."""
    get_dataset(principal, dataset_id, ports=ports)
    meta, key = found(ports.datasets.get_version(principal.tenant_id, dataset_id, version), "dataset version")
    (offset,) = decode_position(
        cursor, partition=("version", str(meta.id)), fields=("offset",), maximum=meta.size_bytes
    )
    records: list[Record] = []
    for at, line in version_lines(ports.artifacts, key, meta.size_bytes, start=offset):
        records.append(Record.model_validate_json(line))
        offset = at + len(line)
        if len(records) == limit:
            break
    more = offset < meta.size_bytes
    return records, encode_cursor({"version": str(meta.id), "offset": offset}) if more else None


def list_dataset_versions(
    principal: Principal, dataset_id: UUID, *, ports: Ports = DEPLOYED
) -> list[DatasetVersion]:
    get_dataset(principal, dataset_id, ports=ports)
    return ports.datasets.list_versions(principal.tenant_id, dataset_id)


# ---------------------------------------------------------------- evals
def create_eval(
    principal: Principal, req: CreateEvalRequest, *, ports: Ports = DEPLOYED
) -> tuple[Eval, EvalVersion | None]:
    """An eval, and with ``req.metrics`` its version 1, checked first and written in one
    transaction with the eval: both, or nothing."""
    project_id = project_for(principal, req.project_id, ports=ports)
    first = req.first_version()
    ev = Eval(
        id=uuid.uuid4(),
        tenant_id=principal.tenant_id,
        project_id=project_id,
        name=req.name,
        description=req.description,
        created_at=utcnow(),
    )
    if first is None:
        ports.evals.create(ev)
        return ev, None
    metrics = _checked_metrics(first)
    ev = ev.model_copy(update={"version_count": 1})
    version = EvalVersion(
        id=uuid.uuid4(),
        eval_id=ev.id,
        version=1,
        metrics=metrics,
        threshold=first.threshold,
        judge=first.judge,
        generation=first.generation,
        created_at=ev.created_at,
    )
    ports.evals.create_with_version(ev, version)
    return ev, version


def _checked_metrics(req: CreateEvalVersionRequest) -> list[Metric]:
    from assay_service.domain.scoring import check_metrics  # the scorers: ~80 ms to import

    metrics = [Metric(**m.model_dump()) for m in req.metrics]
    check_metrics(metrics)
    check_generation(req.generation)
    return metrics


def check_generation(settings: GenerationSettings | None) -> None:
    """A 400 naming the template at fault (``generation.messages[1].content: …``)."""
    from assay_service.domain.generation import check_settings

    problems = check_settings(settings) if settings is not None else []
    if problems:
        raise InvalidRequestError(problems[0], details={"field": "generation", "errors": problems})


def get_eval(principal: Principal, eval_id: UUID, *, ports: Ports = DEPLOYED) -> Eval:
    return found(ports.evals.get(principal.tenant_id, eval_id), "eval")


def list_evals(
    principal: Principal, *, limit: int, cursor: str | None, ports: Ports = DEPLOYED
) -> tuple[list[Eval], str | None]:
    return ports.evals.list_page(principal.tenant_id, limit=limit, cursor=cursor)


def create_eval_version(
    principal: Principal, eval_id: UUID, req: CreateEvalVersionRequest, *, ports: Ports = DEPLOYED
) -> EvalVersion:
    ev = get_eval(principal, eval_id, ports=ports)
    metrics = _checked_metrics(req)
    version = EvalVersion(
        id=uuid.uuid4(),
        eval_id=ev.id,
        version=ev.version_count + 1,
        metrics=metrics,
        threshold=req.threshold,
        judge=req.judge,
        generation=req.generation,
        created_at=utcnow(),
    )
    ports.evals.add_version(principal.tenant_id, ev, version)
    return version


def get_eval_version(principal: Principal, version_id: UUID, *, ports: Ports = DEPLOYED) -> EvalVersion:
    return found(ports.evals.get_version(principal.tenant_id, version_id), "eval version")


def list_eval_versions(principal: Principal, eval_id: UUID, *, ports: Ports = DEPLOYED) -> list[EvalVersion]:
    get_eval(principal, eval_id, ports=ports)
    return ports.evals.list_versions(principal.tenant_id, eval_id)


# ---------------------------------------------------------------- deletes
def _refuse_if_runs(principal: Principal, kind: str, field: str, object_id: UUID, *, ports: Ports) -> None:
    """Runs point at their dataset and eval (and are listed by them): a dataset or eval
    that runs still reference is not deleted (docs/decisions/0012-deletes.md)."""
    count = ports.runs.count(RunQuery(tenant_id=principal.tenant_id, criteria={field: str(object_id)}))
    if count:
        raise ConflictError(
            f"{count} run(s) use this {kind}; delete them first (list them with "
            f"GET /v1/eval-runs?{field}={object_id}, delete each with "
            "DELETE /v1/eval-runs/{id}), then delete the " + kind,
            details={"runs": count, field: str(object_id)},
        )


def delete_dataset(principal: Principal, dataset_id: UUID, *, ports: Ports = DEPLOYED) -> Dataset:
    """The dataset, its versions' items and objects, and its pending uploads.

    First the tombstone (``begin_delete``, guarded by the dataset's run counter): from then
    on the dataset reads as gone and no run or version can be added to it, so nothing
    deleted after it can be needed. A run scheduled before it makes it a 409 and nothing
    is deleted. Then objects, version items and the dataset item last: an interrupted
    delete leaves a marked dataset that deleting again finishes (without the pre-check and
    the tombstone again: a marked dataset has taken no run since)."""
    dataset, begun = found(ports.datasets.get_for_delete(principal.tenant_id, dataset_id), "dataset")
    if not begun:
        _refuse_if_runs(principal, "dataset", "dataset_id", dataset.id, ports=ports)
        ports.datasets.begin_delete(dataset)
    versions = ports.datasets.version_objects(principal.tenant_id, dataset.id)
    store = ports.artifacts
    # Objects first, items last: never an unreachable object. Every object under the
    # dataset's prefix goes, not only the versions' own: one a refused or interrupted
    # version create left behind would otherwise stay with nothing to remove it.
    objects = {key for _, key in versions}
    for prefix in (store.dataset_prefix, store.upload_prefix):
        objects.update(store.list_keys(prefix(principal.tenant_id, dataset.id)))
    store.delete_keys(sorted(objects))
    ports.datasets.delete(dataset, [sk for sk, _ in versions])
    return dataset


def delete_eval(principal: Principal, eval_id: UUID, *, ports: Ports = DEPLOYED) -> Eval:
    """The eval and its versions (runs keep their own copy of the metrics, but a run's
    eval must exist while the run does: see _refuse_if_runs)."""
    ev = get_eval(principal, eval_id, ports=ports)
    _refuse_if_runs(principal, "eval", "eval_id", ev.id, ports=ports)
    ports.evals.delete(ev)
    return ev
