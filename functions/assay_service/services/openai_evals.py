"""The OpenAI Evals API over Assay's own objects (docs/openai-evals.md, decision 0018).

* An OpenAI **eval** is an Assay eval with one version: each testing criterion becomes a
  metric (``string_check``, ``text_similarity``, ``score_model``, ``label_model``); the
  eval's OpenAI shape (name, metadata, data source config, criteria as given) is kept as a
  document beside it (``ports.openai``, kind ``eval``).
* An OpenAI **run** is an Assay run over a dataset made for it: one record per data source
  row, the item in ``metadata["item"]`` (and a given sample in ``metadata["sample"]``, its
  ``output_text`` as the record's ``output``). ``completions``/``responses`` runs generate
  each output through Assay's generation. Inline ``file_content`` is kept as a file, and
  the run names that file as its source.
* An **output item** is one record's outcome: its item read back from the dataset version
  (its id carries the record's byte offset there, so a page is one ranged read), its
  evaluations from the run's batches.
* A **file** is an object under the tenant's prefix in the artifacts bucket.

OpenAI ids are the Assay UUIDs with OpenAI's prefixes (``eval_``, ``evalrun_``, ``file-``).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from assay_service.dependencies import DEPLOYED
from assay_service.domain import openai_templates, run_page
from assay_service.errors import (
    ConflictError,
    InsufficientPermissionsError,
    InvalidRequestError,
    NotFoundError,
)
from assay_service.models.api import (
    CreateDatasetRequest,
    CreateEvalRequest,
    CreateEvalVersionRequest,
    RecordIn,
    ScheduleEvalRunRequest,
)
from assay_service.models.domain import (
    TERMINAL_STATUSES,
    ChatMessage,
    GenerationSettings,
    JudgeSettings,
    Principal,
    Run,
    utcnow,
)
from assay_service.models.openai import (
    OpenAICreateEvalRequest,
    OpenAICreateRunRequest,
    OpenAIUpdateEvalRequest,
)
from assay_service.ports import Ports
from assay_service.services import catalog
from assay_service.services import runs as run_service

EVAL, RUN, FILE = "eval", "run", "file"
MAX_ITEMS = 100_000
MAX_FILE_BYTES = 5 * 1024 * 1024  # a Lambda's request payload (6 MB) with the form around it
STATUS = {
    "pending": "queued",
    "running": "in_progress",
    "completed": "completed",
    "cancelled": "canceled",
    "failed": "failed",
}
# OpenAI's run statuses back to Assay's, for the list filter.
STATUS_FILTER = {v: k for k, v in STATUS.items()}
BEDROCK_PREFIXES = ("anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.", "qwen.")
BEDROCK_REGIONS = ("us.", "eu.", "apac.", "global.", "jp.", "au.")
SAMPLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "choices": {"type": "array"},
        "output_text": {"type": "string"},
        "output_json": {"type": "object"},
    },
    "required": ["model", "choices"],
}


# ------------------------------------------------------------------ ids and small helpers
def _oid(prefix: str, value: UUID) -> str:
    return prefix + value.hex


def _uuid(prefix: str, text: str, kind: str) -> UUID:
    """The UUID inside an OpenAI id; anything else is a 404 (never a 500, never a 400 that
    tells ids apart)."""
    if text.startswith(prefix):
        try:
            return UUID(hex=text[len(prefix) :])
        except ValueError:
            pass
    raise NotFoundError(kind)


# Each kind's id prefix and its name in a 404.
_KINDS = {EVAL: ("eval_", "eval"), RUN: ("evalrun_", "eval run"), FILE: ("file-", "file")}


def eval_uuid(text: str) -> UUID:
    return _uuid(_KINDS[EVAL][0], text, _KINDS[EVAL][1])


def run_uuid(text: str) -> UUID:
    return _uuid(_KINDS[RUN][0], text, _KINDS[RUN][1])


def file_uuid(text: str) -> UUID:
    return _uuid(_KINDS[FILE][0], text, _KINDS[FILE][1])


def _doc(principal: Principal, kind: str, text: str, *, ports: Ports) -> tuple[UUID, dict[str, Any]]:
    """The stored document of the caller's object ``text`` (an OpenAI id), or a 404."""
    prefix, label = _KINDS[kind]
    key = _uuid(prefix, text, label)
    doc = ports.openai.get(principal.tenant_id, kind, key)
    if doc is None:
        raise NotFoundError(label)
    return key, doc


def _unix(value: datetime | str) -> int:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return int(moment.timestamp())


def _bad(message: str, param: str | None) -> InvalidRequestError:
    return InvalidRequestError(message, details={"param": param} if param else None)


def _listing(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "assay"}


def provider_for(model: str) -> str:
    """OpenAI names a model, not a provider: a Bedrock model id (``anthropic.…``,
    ``us.amazon.…``) goes to Bedrock, any other name to the deployment's OpenAI-compatible
    endpoint."""
    name = model.removeprefix(BEDROCK_REGIONS[0])
    for region in BEDROCK_REGIONS:
        name = name.removeprefix(region)
    return "bedrock" if name.startswith(BEDROCK_PREFIXES) else "openai"


# ------------------------------------------------------------------ evals
def _metric_name(name: str, taken: set[str]) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.\-]+", "_", name).strip("_.-")[:56] or "grader"
    if not slug[0].isalpha():
        slug = "g_" + slug
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _criterion_metric(i: int, criterion: Mapping[str, Any], taken: set[str]) -> dict[str, Any]:
    """An Assay metric (``MetricIn`` body) for one OpenAI testing criterion."""
    where = f"testing_criteria[{i}]"
    kind, name = criterion.get("type"), criterion.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _bad(f"{where}.name: every grader needs a name", f"{where}.name")
    if kind in ("python", "multi"):
        raise _bad(
            f"{where}.type: {kind!r} graders run code the eval's author wrote, and Assay does not "
            "run tenant code (decision 0018); use string_check, text_similarity, score_model or "
            "label_model",
            f"{where}.type",
        )
    fields: dict[str, tuple[str, ...]] = {
        "string_check": ("input", "reference", "operation"),
        "text_similarity": ("input", "reference", "evaluation_metric"),
        "score_model": ("model", "input", "range", "sampling_params"),
        "label_model": ("model", "input", "labels", "passing_labels"),
    }
    if kind not in fields:
        raise _bad(
            f"{where}.type: {kind!r} is not a grader type Assay serves (string_check, "
            "text_similarity, score_model, label_model)",
            f"{where}.type",
        )
    known = {"type", "name", "pass_threshold", *fields[kind]}
    extra = sorted(set(criterion) - known)
    if extra:
        raise _bad(f"{where}: unknown parameter {extra[0]!r} for a {kind} grader", f"{where}.{extra[0]}")
    args = {k: criterion[k] for k in fields[kind] if k in criterion}
    threshold: Any = 1
    if kind == "text_similarity":
        threshold = criterion.get("pass_threshold")
        if threshold is None:
            raise _bad(f"{where}.pass_threshold: required for text_similarity", f"{where}.pass_threshold")
        if criterion.get("evaluation_metric") == "cosine":
            # Embeddings: the `cosine_similarity` scorer (an llm scorer, so the run's judge
            # provider's embeddings model is asked), the same templates and threshold.
            cosine_args = {k: v for k, v in args.items() if k != "evaluation_metric"}
            return {
                "name": _metric_name(name, taken),
                "scorer": "cosine_similarity",
                "args": cosine_args,
                "threshold": threshold,
            }
    elif kind == "score_model":
        # The scorer reports the model's result scaled to 0–1 over ``range``; the metric's
        # threshold is pass_threshold on that scale (no pass_threshold: the range's middle).
        from assay_service.domain.scorers.model_graders import normalised_threshold

        rng = criterion.get("range") or [0, 1]
        given = criterion.get("pass_threshold")
        if given is not None and not isinstance(given, int | float):
            raise _bad(f"{where}.pass_threshold: a number", f"{where}.pass_threshold")
        try:
            threshold = 0.5 if given is None else normalised_threshold(given, rng)
        except (TypeError, ValueError, ZeroDivisionError):
            threshold = 0.5  # a bad range: the grader's own arguments say what is wrong
    elif "pass_threshold" in criterion:
        raise _bad(f"{where}.pass_threshold: not a parameter of a {kind} grader", f"{where}.pass_threshold")
    return {"name": _metric_name(name, taken), "scorer": kind, "args": args, "threshold": threshold}


def _data_source_config(config: Mapping[str, Any]) -> dict[str, Any]:
    kind = config.get("type")
    if kind in ("logs", "stored_completions"):
        raise _bad(
            f"data_source_config.type: {kind!r} reads completions stored at OpenAI, which an "
            "Assay deployment does not have; use type 'custom' with an item_schema",
            "data_source_config.type",
        )
    if kind != "custom":
        raise _bad("data_source_config.type: use 'custom'", "data_source_config.type")
    extra = sorted(set(config) - {"type", "item_schema", "include_sample_schema"})
    if extra:
        raise _bad(f"data_source_config: unknown parameter {extra[0]!r}", f"data_source_config.{extra[0]}")
    item_schema = config.get("item_schema")
    if not isinstance(item_schema, dict):
        raise _bad("data_source_config.item_schema: a JSON Schema object", "data_source_config.item_schema")
    from assay_service.domain.scorers import jsonschema_lite

    try:
        jsonschema_lite.check_schema(item_schema, where="item_schema")
    except jsonschema_lite.SchemaError as exc:
        raise _bad(
            f"data_source_config.item_schema: not a valid JSON Schema: {exc}",
            "data_source_config.item_schema",
        ) from None
    schema: dict[str, Any] = {"type": "object", "properties": {"item": item_schema}, "required": ["item"]}
    if config.get("include_sample_schema"):
        schema["properties"]["sample"] = SAMPLE_SCHEMA
        schema["required"] = ["item", "sample"]
    return {"type": "custom", "schema": schema}


def _judge(metrics: list[dict[str, Any]]) -> JudgeSettings | None:
    """The eval version's judge settings: the first model grader's provider and model (each
    model grader names its own model; the provider must be one the deployment offers).
    Without a model grader but with a cosine one (``cosine_similarity``, which asks the judge
    provider's embeddings model): the deployment's default provider, ``openai`` when it
    offers it (``JudgeProviders``), else ``bedrock``."""
    for metric in metrics:
        model = metric["args"].get("model")
        if metric["scorer"] in ("score_model", "label_model") and isinstance(model, str) and model:
            return JudgeSettings(provider=provider_for(model), model=model)  # type: ignore[arg-type]
    if any(metric["scorer"] == "cosine_similarity" for metric in metrics):
        from assay_service.settings import get_settings

        offered = get_settings().offered_judge_providers
        return JudgeSettings(provider="openai" if "openai" in offered else "bedrock")
    return None


# An eval is stored twice (its OpenAI document, its Assay version), each a DynamoDB item of
# at most 400 KB: the criteria and the config together stay well under that.
MAX_EVAL_BYTES = 300_000
MAX_GRADER_NAME = 200


def _check_criteria(criteria: list[dict[str, Any]], config: Mapping[str, Any]) -> None:
    """Names unique and short, the whole eval small enough to store: 400s naming where."""
    seen: set[str] = set()
    for i, criterion in enumerate(criteria):
        name = criterion.get("name")
        if isinstance(name, str) and len(name) > MAX_GRADER_NAME:
            raise _bad(
                f"testing_criteria[{i}].name: at most {MAX_GRADER_NAME} characters",
                f"testing_criteria[{i}].name",
            )
        if name in seen:
            raise _bad(
                f"testing_criteria[{i}].name: {name!r} names another grader too: give each its own name",
                f"testing_criteria[{i}].name",
            )
        seen.add(name)  # type: ignore[arg-type]
    size = len(json.dumps([criteria, config], separators=(",", ":")).encode())
    if size > MAX_EVAL_BYTES:
        raise _bad(
            f"testing_criteria and data_source_config: {size:,} bytes of JSON, over the "
            f"{MAX_EVAL_BYTES:,} an eval may hold",
            "testing_criteria",
        )


def _assay_eval(
    principal: Principal, name: str, metrics: list[dict[str, Any]], *, ports: Ports
) -> tuple[Any, Any]:
    """An Assay eval with ``metrics`` as version 1 (a 400 names the criterion at fault)."""
    body: dict[str, Any] = {"name": name[:200] or "eval", "metrics": metrics, "threshold": 1}
    judge = _judge(metrics)
    if judge is not None:
        body["judge"] = judge.model_dump()
    try:
        assay_req = CreateEvalRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(p) for p in error["loc"]]
        param = f"testing_criteria[{loc[1]}]" if loc[:1] == ["metrics"] and len(loc) > 1 else None
        raise _bad(f"{param or 'request'}: {error['msg']}", param) from None
    try:
        ev, version = catalog.create_eval(principal, assay_req, ports=ports)
    except InvalidRequestError as exc:
        # The catalogue names metrics and args ("metrics[0] (exact): invalid args — args.x:
        # …"); the caller wrote testing criteria: name the criterion and its parameter.
        details = exc.details or {}
        index = next((i for i, m in enumerate(metrics) if m["name"] == details.get("metric")), None)
        if index is None:
            raise _bad(exc.message, None) from None
        errors = details.get("errors") or []
        if errors:
            where, _, problem = str(errors[0]).partition(": ")
            field = where.removeprefix("args").lstrip(".")
            at = f"testing_criteria[{index}]" + (f".{field}" if field else "")
            raise _bad(f"{at}: {problem}", at) from None
        message = exc.message.split(": ", 1)[-1]
        raise _bad(f"testing_criteria[{index}]: {message}", f"testing_criteria[{index}]") from None
    assert version is not None  # metrics were given
    return ev, version


def _store_eval(principal: Principal, ev: Any, doc: dict[str, Any], *, ports: Ports) -> dict[str, Any]:
    try:
        ports.openai.put(principal.tenant_id, EVAL, ev.id, doc, created_at=ev.created_at.isoformat())
    except BaseException:
        catalog.delete_eval(principal, ev.id, ports=ports)
        raise
    return _public(doc)


def create_eval(
    principal: Principal, req: OpenAICreateEvalRequest, *, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    config = _data_source_config(req.data_source_config)
    _check_criteria(req.testing_criteria, config)
    taken: set[str] = set()
    metrics = [_criterion_metric(i, c, taken) for i, c in enumerate(req.testing_criteria)]
    name = req.name or "eval"
    ev, version = _assay_eval(principal, name, metrics, ports=ports)
    doc = {
        "object": "eval",
        "id": _oid("eval_", ev.id),
        "name": name,
        "created_at": _unix(ev.created_at),
        "metadata": req.metadata or {},
        "data_source_config": config,
        "testing_criteria": [dict(c) for c in req.testing_criteria],
        "assay": {"eval_version_id": str(version.id), "metrics": [m["name"] for m in metrics]},
    }
    return _store_eval(principal, ev, doc, ports=ports)


def _eval_doc(principal: Principal, eval_id: str, *, ports: Ports) -> tuple[UUID, dict[str, Any]]:
    return _doc(principal, EVAL, eval_id, ports=ports)


def get_eval(principal: Principal, eval_id: str, *, ports: Ports = DEPLOYED) -> dict[str, Any]:
    return _public(_eval_doc(principal, eval_id, ports=ports)[1])


def update_eval(
    principal: Principal, eval_id: str, req: OpenAIUpdateEvalRequest, *, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    key, doc = _eval_doc(principal, eval_id, ports=ports)
    if req.name is not None:
        doc["name"] = req.name
    if req.metadata is not None:
        doc["metadata"] = req.metadata
    if not ports.openai.replace(principal.tenant_id, EVAL, key, doc):
        raise NotFoundError("eval")
    return _public(doc)


def _after(prefix: str, after: str | None) -> UUID | None:
    if after is None:
        return None
    try:
        return _uuid(prefix, after, "object")
    except NotFoundError:
        raise _bad(f"after: {after!r} is not an id this list holds", "after") from None


def list_evals(
    principal: Principal, *, after: str | None, limit: int, order: str, order_by: str, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    # Evals are never updated in a way OpenAI's updated_at would reorder them by more than a
    # rename: both orders are creation order here (docs/openai-evals.md).
    docs, more = ports.openai.page(
        principal.tenant_id, EVAL, ascending=order == "asc", after=_after("eval_", after), limit=limit
    )
    return _listing([_public(d) for d in docs], more)


def delete_eval(principal: Principal, eval_id: str, *, ports: Ports = DEPLOYED) -> dict[str, Any]:
    """The eval, its runs (cancelled first when still going) and their datasets."""
    key, doc = _eval_doc(principal, eval_id, ports=ports)
    while True:
        runs, more = ports.openai.page(
            principal.tenant_id, RUN, parent=key, ascending=True, after=None, limit=50
        )
        for run_doc in runs:
            _delete_run(principal, run_uuid(run_doc["id"]), run_doc, ports=ports)
        if not more:
            break
    with contextlib.suppress(NotFoundError):
        catalog.delete_eval(principal, key, ports=ports)
    ports.openai.delete(principal.tenant_id, EVAL, key)
    return {"object": "eval.deleted", "deleted": True, "eval_id": doc["id"]}


# ------------------------------------------------------------------ files
def create_file(
    principal: Principal, *, filename: str, purpose: str, content: bytes, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    if purpose not in ("evals", "user_data"):
        raise _bad(
            f"purpose: {purpose!r} — this API keeps files for evals: use 'evals' (or 'user_data')",
            "purpose",
        )
    if len(content) > MAX_FILE_BYTES:
        raise _bad(
            f"file: {len(content):,} bytes, over the {MAX_FILE_BYTES:,} a file may hold here "
            "(a request through API Gateway and Lambda); larger datasets: Assay's uploads "
            "(POST /v1/datasets/{id}/uploads)",
            "file",
        )
    file_id, now = uuid.uuid4(), utcnow()
    store = ports.artifacts
    key = store.openai_file_key(principal.tenant_id, file_id)
    writer = store.writer(key, "application/octet-stream")
    try:
        writer.write(content)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    doc = {
        "object": "file",
        "id": _oid("file-", file_id),
        "bytes": len(content),
        "created_at": _unix(now),
        "filename": filename[:512] or "file",
        # OpenAI's SDK knows no "evals" purpose in the objects it returns: "user_data" is
        # what it parses (docs/openai-evals.md).
        "purpose": "user_data",
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }
    try:
        ports.openai.put(principal.tenant_id, FILE, file_id, doc, created_at=now.isoformat())
    except BaseException:
        store.delete_keys([key])
        raise
    return doc


def _file_doc(principal: Principal, file_id: str, *, ports: Ports) -> tuple[UUID, dict[str, Any]]:
    return _doc(principal, FILE, file_id, ports=ports)


def get_file(principal: Principal, file_id: str, *, ports: Ports = DEPLOYED) -> dict[str, Any]:
    return _file_doc(principal, file_id, ports=ports)[1]


def file_content(principal: Principal, file_id: str, *, ports: Ports = DEPLOYED) -> bytes:
    key, _ = _file_doc(principal, file_id, ports=ports)
    return ports.artifacts.get_bytes(ports.artifacts.openai_file_key(principal.tenant_id, key))


def list_files(
    principal: Principal,
    *,
    after: str | None,
    limit: int,
    order: str,
    purpose: str | None,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    if purpose not in (None, "evals", "user_data"):
        return _listing([], False)
    docs, more = ports.openai.page(
        principal.tenant_id, FILE, ascending=order == "asc", after=_after("file-", after), limit=limit
    )
    return _listing(docs, more)


def delete_file(principal: Principal, file_id: str, *, ports: Ports = DEPLOYED) -> dict[str, Any]:
    key, doc = _file_doc(principal, file_id, ports=ports)
    ports.artifacts.delete_keys([ports.artifacts.openai_file_key(principal.tenant_id, key)])
    ports.openai.delete(principal.tenant_id, FILE, key)
    return {"object": "file", "id": doc["id"], "deleted": True}


# ------------------------------------------------------------------ runs
def _rows_of_file(principal: Principal, file_id: str, where: str, *, ports: Ports) -> list[Any]:
    try:
        data = file_content(principal, file_id, ports=ports)
    except NotFoundError:
        raise _bad(f"{where}.id: no file {file_id!r}", f"{where}.id") from None
    rows = []
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            raise _bad(f"{where}: line {n} of file {file_id} is not JSON", f"{where}.id") from None
    return rows


def _rows(principal: Principal, source: Any, where: str, *, ports: Ports) -> tuple[list[Any], str | None]:
    """The data source's rows, and the file that holds them (None: inline content)."""
    if not isinstance(source, dict):
        raise _bad(f"{where}: an object with a type", where)
    kind = source.get("type")
    if kind == "file_content":
        content = source.get("content")
        if not isinstance(content, list):
            raise _bad(f"{where}.content: a list of rows", f"{where}.content")
        return content, None
    if kind == "file_id":
        file_id = source.get("id")
        if not isinstance(file_id, str):
            raise _bad(f"{where}.id: a file id", f"{where}.id")
        return _rows_of_file(principal, file_id, where, ports=ports), file_id
    if kind == "stored_completions":
        raise _bad(
            f"{where}.type: 'stored_completions' reads completions stored at OpenAI; give the "
            "rows as file_content or a file_id",
            f"{where}.type",
        )
    raise _bad(f"{where}.type: 'file_content' or 'file_id'", f"{where}.type")


def _sample_output(sample: Any, at: str, param: str) -> str | None:
    """A row's given answer (``sample.output_text``), checked."""
    if sample is None:
        return None
    if not isinstance(sample, dict):
        raise _bad(f"{at}.sample: a JSON object", param)
    text = sample.get("output_text")
    if text is not None and not isinstance(text, str):
        raise _bad(f"{at}.sample.output_text: a string", param)
    return text


def _records(rows: list[Any], where: str, param: str, item_schema: Any = None) -> list[RecordIn]:
    """One record per row ``{"item": {…}, "sample": {…}}`` (``where`` names the rows in
    messages, ``param`` in the envelope); each item checked against the eval's item schema."""
    from assay_service.domain.scorers import jsonschema_lite

    if not rows:
        raise _bad(f"{where}: no rows", param)
    if len(rows) > MAX_ITEMS:
        raise _bad(f"{where}: {len(rows):,} rows, over the {MAX_ITEMS:,} a run may hold", param)
    records = []
    for i, row in enumerate(rows):
        at = f"{where}[{i}]"
        if not isinstance(row, dict):
            raise _bad(f"{at}: a JSON object", param)
        item, sample = row.get("item"), row.get("sample")
        if not isinstance(item, dict):
            raise _bad(f'{at}.item: a JSON object (each row is {{"item": {{…}}, "sample": {{…}}}})', param)
        extra = sorted(set(row) - {"item", "sample"})
        if extra:
            raise _bad(f"{at}: unknown key {extra[0]!r} (a row holds 'item' and 'sample')", param)
        if isinstance(item_schema, dict) and item_schema:
            try:
                problem = jsonschema_lite.first_violation(item, item_schema)
            except Exception as exc:  # a budget the schema overran on this item
                raise _bad(
                    f"{at}.item: could not be checked against the eval's item_schema: {exc}", param
                ) from None
            if problem is not None:
                raise _bad(f"{at}.item does not match the eval's item_schema: {problem}", param)
        metadata: dict[str, Any] = {"item": item}
        output = _sample_output(sample, at, param)
        if sample is not None:
            metadata["sample"] = sample
        try:
            records.append(RecordIn(id=str(i), output=output, metadata=metadata))
        except ValidationError as exc:
            error = exc.errors()[0]
            raise _bad(f"{at}: {error['msg']}", param) from None
    return records


def _messages(ds: Mapping[str, Any]) -> tuple[str | None, list[ChatMessage]]:
    """(the system prompt, the other messages) of a run's ``input_messages`` template."""
    messages = ds.get("input_messages")
    if not isinstance(messages, dict) or messages.get("type") != "template":
        raise _bad(
            "data_source.input_messages: give {type: 'template', template: [messages]} "
            "('item_reference' is not served)",
            "data_source.input_messages",
        )
    template = messages.get("template")
    if not isinstance(template, list) or not template:
        raise _bad(
            "data_source.input_messages.template: a list of messages", "data_source.input_messages.template"
        )
    system: list[str] = []
    chat: list[ChatMessage] = []
    for i, message in enumerate(template):
        where = f"data_source.input_messages.template[{i}]"
        if not isinstance(message, dict):
            raise _bad(f"{where}: a message object", where)
        role = message.get("role")
        try:
            text = openai_templates.content_text(message.get("content"))
        except ValueError as exc:
            raise _bad(f"{where}.content: {exc}", f"{where}.content") from None
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            chat.append(ChatMessage(role=role, content=text))
        else:
            raise _bad(f"{where}.role: system, developer, user or assistant", f"{where}.role")
    if not chat:
        raise _bad(
            "data_source.input_messages.template: at least one user message", "data_source.input_messages"
        )
    return "\n\n".join(system) or None, chat


# OpenAI's sampling parameter -> GenerationSettings' field.
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "max_completion_tokens": "max_tokens",
    "max_completions_tokens": "max_tokens",
}


def _generation(ds: Mapping[str, Any]) -> GenerationSettings:
    kind = ds["type"]
    model = ds.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad(f"data_source.model: a {kind} run samples a model: name it", "data_source.model")
    system, chat = _messages(ds)
    params = ds.get("sampling_params") or {}
    if not isinstance(params, dict):
        raise _bad("data_source.sampling_params: an object", "data_source.sampling_params")
    settings: dict[str, Any] = {
        "provider": provider_for(model),
        "model": model,
        "system": system,
        "messages": [m.model_dump() for m in chat],
    }
    settings.update(
        {ours: params[theirs] for theirs, ours in _SAMPLING.items() if params.get(theirs) is not None}
    )
    fmt = params.get("response_format") or (params.get("text") or {}).get("format")
    schema = (fmt.get("json_schema") or fmt).get("schema") if isinstance(fmt, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(schema, dict):
        settings["response_format"] = schema
    try:
        generation = GenerationSettings.model_validate(settings)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"])
        raise _bad(
            f"data_source.sampling_params: {field}: {error['msg']}", "data_source.sampling_params"
        ) from None
    catalog.check_generation(generation)
    return generation


def _report_url(base_url: str, run: Run, ports: Ports) -> str:
    """A signed link to the run's report page, valid for 15 minutes (domain/run_page.py)."""
    return run_page.link(base_url, ports.keyring.hmac_key(), run.tenant_id, run.id, time.time())


def create_run(
    principal: Principal, eval_id: str, req: OpenAICreateRunRequest, *, base_url: str, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    key, ev = _eval_doc(principal, eval_id, ports=ports)
    if ev["assay"].get("eval_version_id") is None:
        raise _bad(
            "this eval was imported with graders Assay does not run "
            f"({', '.join(sorted(ev['assay'].get('unsupported', [])))}): its history is readable, "
            "but new runs need an eval of string_check, text_similarity, score_model or "
            "label_model graders",
            "eval_id",
        )
    ds = req.data_source
    kind = ds.get("type")
    if kind not in ("jsonl", "completions", "responses"):
        raise _bad("data_source.type: 'jsonl', 'completions' or 'responses'", "data_source.type")
    allowed = {"type", "source"} | (
        {"model", "input_messages", "sampling_params"} if kind != "jsonl" else set()
    )
    extra = sorted(set(ds) - allowed)
    if extra:
        raise _bad(f"data_source: unknown parameter {extra[0]!r} for a {kind} run", f"data_source.{extra[0]}")
    rows, file_id = _rows(principal, ds.get("source"), "data_source.source", ports=ports)
    generation = _generation(ds) if kind != "jsonl" else None
    if file_id is None:
        where = param = "data_source.source.content"
    else:
        where, param = f"data_source.source: file {file_id}, row", "data_source.source.id"
    item_schema = ev["data_source_config"].get("schema", {}).get("properties", {}).get("item")
    records = _records(rows, where, param, item_schema)
    if file_id is None:  # the inline rows are kept as a file: the run names it as its source
        content = b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in rows)
        file_id = create_file(
            principal, filename=f"{req.name or 'run'}.jsonl", purpose="evals", content=content, ports=ports
        )["id"]
    source = {"type": "file_id", "id": file_id}
    name = req.name or f"run of {ev['name']}"[:200]
    dataset, _ = catalog.create_dataset(
        principal, CreateDatasetRequest(name=name[:200] or "run"), ports=ports
    )
    try:
        catalog.create_dataset_version(principal, dataset.id, records=records, ports=ports)
        run, _ = run_service.schedule_run(
            principal,
            dataset.id,
            ScheduleEvalRunRequest(
                eval_version_id=UUID(ev["assay"]["eval_version_id"]), name=name[:200], generation=generation
            ),
            ports=ports,
        )
    except BaseException:
        catalog.delete_dataset(principal, dataset.id, ports=ports)
        raise
    data_source: dict[str, Any] = {"type": kind, "source": source}
    for extra_key in ("model", "input_messages", "sampling_params"):
        if extra_key in ds:
            data_source[extra_key] = ds[extra_key]
    doc = {
        "object": "eval.run",
        "id": _oid("evalrun_", run.id),
        "eval_id": ev["id"],
        "name": name,
        "model": generation.model if generation else "",
        "created_at": _unix(run.created_at),
        "data_source": data_source,
        "metadata": req.metadata or {},
        "assay": {"dataset_id": str(dataset.id)},
    }
    ports.openai.put(principal.tenant_id, RUN, run.id, doc, created_at=run.created_at.isoformat(), parent=key)
    return run_object(doc, run, ev, base_url=base_url, ports=ports)


def run_object(
    doc: dict[str, Any], run: Run, ev: dict[str, Any], *, base_url: str, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    names = dict(zip(ev["assay"]["metrics"], [c["name"] for c in ev["testing_criteria"]], strict=False))
    recorded = run.completed_count + run.failed_count
    passed = round((run.pass_rate or 0.0) * recorded) if recorded else 0
    # An item that could not be scored (Assay's failed_count) is "errored"; every other item
    # scored is "passed" when it passed every grader, else "failed".
    errored = run.failed_count
    per_criteria = [
        {
            "testing_criteria": names.get(a.metric, a.metric),
            "passed": a.passed,
            "failed": recorded - a.passed,
        }
        for a in run.aggregates or []
    ]
    # Per model (OpenAI has no roles): a model that both generated and judged is one row.
    by_model: dict[str, dict[str, Any]] = {}
    for u in run.per_model_usage or []:
        row = by_model.setdefault(
            u.model,
            {
                "model_name": u.model,
                "invocation_count": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "total_tokens": 0,
                "cached_tokens": 0,
            },
        )
        row["invocation_count"] += u.invocations
        row["prompt_tokens"] += u.prompt_tokens
        row["completion_tokens"] += u.completion_tokens
        row["total_tokens"] += u.prompt_tokens + u.completion_tokens
        row["cached_tokens"] += u.cached_tokens
    usage = list(by_model.values())
    error = {"code": "", "message": ""}
    if run.status == "failed":
        error = {"code": "run_failed", "message": run.error_message or "the run failed"}
    return {
        **_public(doc),
        "status": STATUS[run.status],
        "error": error,
        "per_model_usage": usage,
        "per_testing_criteria_results": per_criteria,
        "report_url": _report_url(base_url, run, ports),
        "result_counts": {
            "total": recorded,
            "errored": errored,
            # The pass/fail split is known once the run is aggregated (when it ends).
            "failed": max(0, recorded - errored - passed) if run.pass_rate is not None else 0,
            "passed": passed,
        },
    }


def _run_doc(
    principal: Principal, eval_id: str, run_id: str, *, ports: Ports
) -> tuple[dict[str, Any], dict[str, Any], Run]:
    _, ev = _eval_doc(principal, eval_id, ports=ports)
    key, doc = _doc(principal, RUN, run_id, ports=ports)
    if doc["eval_id"] != ev["id"]:
        raise NotFoundError("eval run")
    return ev, doc, run_service.get_run(principal, key, ports=ports)


def get_run(
    principal: Principal, eval_id: str, run_id: str, *, base_url: str, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    ev, doc, run = _run_doc(principal, eval_id, run_id, ports=ports)
    return run_object(doc, run, ev, base_url=base_url, ports=ports)


def list_runs(
    principal: Principal,
    eval_id: str,
    *,
    after: str | None,
    limit: int,
    order: str,
    status: str | None,
    base_url: str,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    key, ev = _eval_doc(principal, eval_id, ports=ports)
    cursor = _after("evalrun_", after)
    out: list[dict[str, Any]] = []
    more = True
    while more and len(out) < limit:
        docs, more = ports.openai.page(
            principal.tenant_id, RUN, parent=key, ascending=order == "asc", after=cursor, limit=limit
        )
        for doc in docs:
            cursor = run_uuid(doc["id"])
            run = ports.runs.get(principal.tenant_id, cursor)
            if run is None:
                continue
            if status is None or STATUS[run.status] == status:
                out.append(run_object(doc, run, ev, base_url=base_url, ports=ports))
                if len(out) == limit:
                    more = more or docs[-1] is not doc
                    break
        if not docs:
            break
    return _listing(out, more)


def cancel_run(
    principal: Principal, eval_id: str, run_id: str, *, base_url: str, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    ev, doc, run = _run_doc(principal, eval_id, run_id, ports=ports)
    if run.status not in TERMINAL_STATUSES:
        try:
            run = run_service.cancel_run(principal, run.id, ports=ports)
        except ConflictError:
            run = run_service.get_run(principal, run.id, ports=ports)
    return run_object(doc, run, ev, base_url=base_url, ports=ports)


def _delete_run(principal: Principal, key: UUID, doc: dict[str, Any], *, ports: Ports) -> None:
    run = ports.runs.get(principal.tenant_id, key)
    if run is not None:
        if run.status not in TERMINAL_STATUSES:
            with contextlib.suppress(ConflictError):  # it ended meanwhile
                run_service.cancel_run(principal, key, ports=ports)
        run_service.delete_run(principal, key, ports=ports)
    with contextlib.suppress(NotFoundError):
        catalog.delete_dataset(principal, UUID(doc["assay"]["dataset_id"]), ports=ports)
    ports.openai.delete(principal.tenant_id, RUN, key)


def delete_run(principal: Principal, eval_id: str, run_id: str, *, ports: Ports = DEPLOYED) -> dict[str, Any]:
    _, doc, run = _run_doc(principal, eval_id, run_id, ports=ports)
    _delete_run(principal, run.id, doc, ports=ports)
    return {"object": "eval.run.deleted", "deleted": True, "run_id": doc["id"]}


# ------------------------------------------------------------------ output items
def _item_id(run_id: UUID, index: int, offset: int) -> str:
    return f"outputitem_{run_id.hex}{index:08x}{offset:012x}"


def _item_position(run_id: UUID, item_id: str) -> tuple[int, int]:
    prefix = f"outputitem_{run_id.hex}"
    tail = item_id[len(prefix) :] if item_id.startswith(prefix) else ""
    if len(tail) != 20:
        raise NotFoundError("output item")
    try:
        return int(tail[:8], 16), int(tail[8:], 16)
    except ValueError:
        raise NotFoundError("output item") from None


def _dataset_lines(
    principal: Principal, run: Run, *, start: int, ports: Ports
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, record) of the run's dataset version from byte ``start`` on."""
    found = ports.datasets.get_version(principal.tenant_id, run.dataset_id, run.dataset_version)
    if found is None:
        return
    meta, key = found
    for offset, line in catalog.version_lines(ports.artifacts, key, meta.size_bytes, start=start):
        try:
            record = json.loads(line)
        except ValueError:  # an offset into the middle of a line (a forged id)
            raise NotFoundError("output item") from None
        yield offset, record


def _evaluations(run: Run, first: int, last: int, *, ports: Ports) -> dict[int, list[dict[str, Any]]]:
    """The evaluations of records ``first``..``last`` by record index (and each record's
    stored row under key -1 - index)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for batch in ports.runs.iter_batches(run, first=first // run.batch_size):
        rows = {r["id"]: r for r in batch["records"]}
        beyond = False
        for raw in batch["evaluations"]:
            index = raw["record_index"]
            if index > last:
                beyond = True
                continue
            if index >= first:
                out.setdefault(index, []).append(raw)
                out.setdefault(-1 - index, [rows.get(raw["record_id"], {})])
        if beyond:
            break
    return out


def _sample(record: dict[str, Any], row: dict[str, Any], run: Run) -> dict[str, Any]:
    generation = row.get("generation") or {}
    given = (record.get("metadata") or {}).get("sample") or {}
    output = generation.get("output") if generation else record.get("output")
    settings = run.generation
    messages: list[dict[str, str]] = []
    if settings is not None:
        from assay_service.domain.generation import MissingFieldError, render
        from assay_service.models.domain import Record

        try:
            rec = Record.model_validate(record)
            if settings.system:
                messages.append({"role": "system", "content": render(settings.system, rec)})
            messages += [{"role": m.role, "content": render(m.content, rec)} for m in settings.messages]
        except (MissingFieldError, ValidationError):
            messages = []
    prompt = generation.get("prompt_tokens") or 0
    completion = generation.get("completion_tokens") or 0
    error = generation.get("error")
    return {
        "input": messages or [m for m in given.get("input", []) if isinstance(m, dict)],
        "output": [{"role": "assistant", "content": output}] if output is not None else [],
        "finish_reason": generation.get("finish_reason") or given.get("finish_reason") or "",
        "model": generation.get("model") or given.get("model") or "",
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cached_tokens": generation.get("cached_tokens") or 0,
        },
        "error": {"code": "generation_failed", "message": error} if error else {"code": "", "message": ""},
        "temperature": float(settings.temperature) if settings else 0.0,
        "max_completion_tokens": int(settings.max_tokens) if settings else 0,
        "top_p": float(settings.top_p) if settings and settings.top_p is not None else 1.0,
        "seed": int(settings.seed) if settings and settings.seed is not None else 0,
    }


def _output_item(
    run: Run,
    ev: dict[str, Any],
    index: int,
    offset: int,
    record: dict[str, Any],
    evaluations: list[dict[str, Any]],
    row: dict[str, Any],
) -> dict[str, Any]:
    criteria = dict(zip(ev["assay"]["metrics"], ev["testing_criteria"], strict=False))
    results = []
    for raw in evaluations:
        criterion = criteria.get(raw["metric_name"], {})
        sample = None
        if raw["status"] != "complete":
            sample = {"error": raw.get("error_message") or "could not be scored"}
        elif raw.get("reasoning"):
            sample = {"reasoning": raw["reasoning"], **({"label": raw["label"]} if raw.get("label") else {})}
        results.append(
            {
                "name": criterion.get("name", raw["metric_name"]),
                "type": criterion.get("type"),
                "score": float(raw["score"]) if raw.get("score") is not None else 0.0,
                "passed": bool(raw.get("is_passed")),
                "sample": sample,
            }
        )
    passed = (
        bool(results) and all(r["passed"] for r in results) and len(results) == len(ev["assay"]["metrics"])
    )
    return {
        "object": "eval.run.output_item",
        "id": _item_id(run.id, index, offset),
        "run_id": _oid("evalrun_", run.id),
        "eval_id": ev["id"],
        "created_at": _unix(run.created_at),
        "status": "pass" if passed else "fail",
        "datasource_item_id": index,
        "datasource_item": (record.get("metadata") or {}).get("item", {}),
        "results": results,
        "sample": _sample(record, row, run),
    }


def list_output_items(
    principal: Principal,
    eval_id: str,
    run_id: str,
    *,
    after: str | None,
    limit: int,
    order: str,
    status: str | None,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    ev, _, run = _run_doc(principal, eval_id, run_id, ports=ports)
    if order == "desc":
        return _list_output_items_desc(
            principal, ev, run, after=after, limit=limit, status=status, ports=ports
        )
    start, expect = 0, None  # the byte to read from; the record id found there (after's)
    if after is not None:
        try:
            index, start = _item_position(run.id, after)
        except NotFoundError:
            raise _bad(f"after: {after!r} is not an output item of this run", "after") from None
        expect = str(index)
    out: list[dict[str, Any]] = []
    window: list[tuple[int, int, dict[str, Any]]] = []
    # Windows of records are scored until one item more than the page holds is found: then
    # ``has_more`` is known to be true, never guessed.
    for offset, record in _dataset_lines(principal, run, start=start, ports=ports):
        if expect is not None:
            if offset != start or record.get("id") != expect:
                raise _bad(f"after: {after!r} is not an output item of this run", "after")
            expect = None
            continue
        window.append((int(record["id"]), offset, record))
        if len(window) >= max(limit + 1, 100):
            _fill(run, ev, window, out, limit, status, ports=ports)
            window = []
            if len(out) > limit:
                break
    else:
        if expect is not None:
            raise _bad(f"after: {after!r} is not an output item of this run", "after")
        _fill(run, ev, window, out, limit, status, ports=ports)
    return _listing(out[:limit], len(out) > limit)


def _fill(
    run: Run,
    ev: dict[str, Any],
    window: list[tuple[int, int, dict[str, Any]]],
    out: list[dict[str, Any]],
    limit: int,
    status: str | None,
    *,
    ports: Ports,
) -> bool:
    """Append the window's items that pass ``status``; True when the page overflowed."""
    if not window:
        return False
    indexes = [i for i, _, _ in window]
    evaluations = _evaluations(run, min(indexes), max(indexes), ports=ports)
    for index, offset, record in window:
        if index not in evaluations:
            continue  # not recorded (yet): no output item
        item = _output_item(run, ev, index, offset, record, evaluations[index], evaluations[-1 - index][0])
        if status is None or item["status"] == status:
            out.append(item)
            if len(out) > limit:
                return True
    return False


def _list_output_items_desc(
    principal: Principal,
    ev: dict[str, Any],
    run: Run,
    *,
    after: str | None,
    limit: int,
    status: str | None,
    ports: Ports,
) -> dict[str, Any]:
    """Newest record first: the dataset is read forward once (its offsets), then scored
    back to front in windows."""
    positions = [
        (int(r["id"]), offset, r) for offset, r in _dataset_lines(principal, run, start=0, ports=ports)
    ]
    if after is not None:
        try:
            index, _ = _item_position(run.id, after)
        except NotFoundError:
            raise _bad(f"after: {after!r} is not an output item of this run", "after") from None
        positions = [p for p in positions if p[0] < index]
    positions.reverse()
    out: list[dict[str, Any]] = []
    for start in range(0, len(positions), max(limit, 100)):
        window = positions[start : start + max(limit, 100)]
        staged: list[dict[str, Any]] = []
        _fill(run, ev, sorted(window), staged, len(window) + 1, status, ports=ports)
        staged.sort(key=lambda item: -item["datasource_item_id"])
        out += staged
        if len(out) > limit:
            return _listing(out[:limit], True)
    return _listing(out, False)


def get_output_item(
    principal: Principal, eval_id: str, run_id: str, item_id: str, *, ports: Ports = DEPLOYED
) -> dict[str, Any]:
    ev, _, run = _run_doc(principal, eval_id, run_id, ports=ports)
    index, offset = _item_position(run.id, item_id)
    for at, record in _dataset_lines(principal, run, start=offset, ports=ports):
        if at != offset or record.get("id") != str(index):
            break
        evaluations = _evaluations(run, index, index, ports=ports)
        if index not in evaluations:
            break
        return _output_item(run, ev, index, offset, record, evaluations[index], evaluations[-1 - index][0])
    raise NotFoundError("output item")


# ------------------------------------------------------------------ importing history
def _imported_config(config: Any) -> dict[str, Any]:
    """An eval's data source config as OpenAI returned it (``schema``), or as created."""
    if isinstance(config, dict) and isinstance(config.get("schema"), dict):
        kind = config.get("type")
        if kind not in ("custom", "logs", "stored_completions"):
            raise _bad(
                "data_source_config.type: custom, logs or stored_completions", "data_source_config.type"
            )
        return {k: v for k, v in config.items() if k in ("type", "schema", "metadata")}
    if isinstance(config, dict):
        return _data_source_config(config)
    raise _bad("data_source_config: an object", "data_source_config")


def import_eval(principal: Principal, saved: dict[str, Any], *, ports: Ports = DEPLOYED) -> dict[str, Any]:
    """An eval as OpenAI returned it, kept with its history: version 1 replays recorded
    results (``recorded`` metrics, for imported runs); when every criterion is a grader
    Assay runs, version 2 has them, for new runs."""
    if saved.get("object") != "eval":
        raise _bad("object: 'eval' (an eval as the OpenAI API returned it)", "object")
    config = _imported_config(saved.get("data_source_config"))
    criteria = saved.get("testing_criteria")
    if not isinstance(criteria, list) or not criteria or not all(isinstance(c, dict) for c in criteria):
        raise _bad("testing_criteria: a list of graders", "testing_criteria")
    taken: set[str] = set()
    names = [_metric_name(str(c.get("name") or "grader"), taken) for c in criteria]
    replay = [{"name": name, "scorer": "recorded", "args": {"key": name}, "threshold": 0.5} for name in names]
    runnable: list[dict[str, Any]] | None = []
    unsupported: list[str] = []
    for i, criterion in enumerate(criteria):
        try:
            metric = _criterion_metric(i, criterion, set())
        except InvalidRequestError:
            unsupported.append(str(criterion.get("type")))
            continue
        if runnable is not None:
            runnable.append({**metric, "name": names[i]})
    if unsupported:
        runnable = None
    _check_criteria(criteria, config)
    name = str(saved.get("name") or "imported eval")[:200]
    ev, history = _assay_eval(principal, name, replay, ports=ports)
    version = None
    if runnable:
        try:
            version = catalog.create_eval_version(
                principal,
                ev.id,
                CreateEvalVersionRequest.model_validate(
                    {
                        "metrics": runnable,
                        "threshold": 1,
                        **({"judge": j.model_dump()} if (j := _judge(runnable)) else {}),
                    }
                ),
                ports=ports,
            )
        except (InvalidRequestError, ValidationError):
            unsupported.append("a grader this deployment cannot run")
    created = saved.get("created_at")
    metadata = saved.get("metadata") if isinstance(saved.get("metadata"), dict) else {}
    doc = {
        "object": "eval",
        "id": _oid("eval_", ev.id),
        "name": name,
        "created_at": created
        if isinstance(created, int) and not isinstance(created, bool)
        else _unix(ev.created_at),
        "metadata": metadata,
        "data_source_config": config,
        "testing_criteria": criteria,
        "imported_from": str(saved.get("id") or ""),
        "assay": {
            "eval_version_id": str(version.id) if version else None,
            "history_version_id": str(history.id),
            "metrics": names,
            "unsupported": sorted(set(unsupported)),
        },
    }
    return _store_eval(principal, ev, doc, ports=ports)


def _saved_items(principal: Principal, file_ids: Any, *, ports: Ports) -> list[dict[str, Any]]:
    if not isinstance(file_ids, list) or not file_ids or not all(isinstance(f, str) for f in file_ids):
        raise _bad("output_item_files: the ids of files of saved output items (JSONL)", "output_item_files")
    items: dict[int, dict[str, Any]] = {}
    for file_id in file_ids:
        for n, row in enumerate(_rows_of_file(principal, file_id, "output_item_files", ports=ports), start=1):
            index = row.get("datasource_item_id") if isinstance(row, dict) else None
            if (
                not isinstance(row, dict)
                or row.get("object") != "eval.run.output_item"
                or not isinstance(index, int)
            ):
                raise _bad(
                    f"output_item_files: line {n} of {file_id} is not a saved output item "
                    "(object 'eval.run.output_item' with a datasource_item_id)",
                    "output_item_files",
                )
            items[index] = row
    return [items[i] for i in sorted(items)]


def _replayed_record(k: int, item: dict[str, Any], metric_of: dict[str, str]) -> RecordIn:
    sample: dict[str, Any] = item["sample"] if isinstance(item.get("sample"), dict) else {}
    outputs = [o for o in sample.get("output") or [] if isinstance(o, dict)]
    output = outputs[0].get("content") if outputs and isinstance(outputs[0].get("content"), str) else None
    recorded: dict[str, Any] = {}
    for result in item.get("results") or []:
        if not isinstance(result, dict) or result.get("name") not in metric_of:
            continue
        detail = result.get("sample")
        recorded[metric_of[result["name"]]] = {
            "score": result.get("score") if isinstance(result.get("score"), int | float) else 0.0,
            "passed": bool(result.get("passed")),
            "reasoning": json.dumps(detail, separators=(",", ":"))[:2000] if detail else "",
        }
    datasource = item.get("datasource_item") if isinstance(item.get("datasource_item"), dict) else {}
    given = {"output_text": output, "model": sample.get("model") or ""} if output is not None else {}
    try:
        return RecordIn(
            id=str(k), output=output, metadata={"item": datasource, "sample": given, "recorded": recorded}
        )
    except ValidationError as exc:
        raise _bad(f"output item {item.get('id')}: {exc.errors()[0]['msg']}", "output_item_files") from None


def import_run(
    principal: Principal,
    eval_id: str,
    saved: dict[str, Any],
    file_ids: Any,
    *,
    base_url: str,
    ports: Ports = DEPLOYED,
) -> dict[str, Any]:
    """A run as OpenAI returned it, with its output items (uploaded as files): a run over
    the items whose metrics replay each item's recorded results."""
    key, ev = _eval_doc(principal, eval_id, ports=ports)
    history = ev["assay"].get("history_version_id")
    if history is None:
        raise _bad("runs are imported into an imported eval (POST /openai/v1/imports/evals)", "eval_id")
    if saved.get("object") != "eval.run":
        raise _bad("run.object: 'eval.run' (a run as the OpenAI API returned it)", "run")
    items = _saved_items(principal, file_ids, ports=ports)
    metric_of = dict(
        zip([c.get("name") for c in ev["testing_criteria"]], ev["assay"]["metrics"], strict=False)
    )
    records = [_replayed_record(k, item, metric_of) for k, item in enumerate(items)]
    if not records:
        raise _bad("output_item_files: no output items", "output_item_files")
    rows = b"".join(
        json.dumps({"item": r.metadata["item"]}, separators=(",", ":")).encode() + b"\n" for r in records
    )
    name = str(saved.get("name") or "imported run")[:200]
    source_file = create_file(principal, filename=f"{name}.jsonl", purpose="evals", content=rows, ports=ports)
    dataset, _ = catalog.create_dataset(principal, CreateDatasetRequest(name=name or "run"), ports=ports)
    try:
        catalog.create_dataset_version(principal, dataset.id, records=records, ports=ports)
        run, _ = run_service.schedule_run(
            principal,
            dataset.id,
            ScheduleEvalRunRequest(eval_version_id=UUID(history), name=name),
            ports=ports,
        )
    except BaseException:
        catalog.delete_dataset(principal, dataset.id, ports=ports)
        raise
    original: dict[str, Any] = (
        saved["data_source"] if isinstance(saved.get("data_source"), dict) else {"type": "jsonl"}
    )
    data_source = {**original, "source": {"type": "file_id", "id": source_file["id"]}}
    created = saved.get("created_at")
    doc = {
        "object": "eval.run",
        "id": _oid("evalrun_", run.id),
        "eval_id": ev["id"],
        "name": name,
        "model": saved.get("model") if isinstance(saved.get("model"), str) else "",
        "created_at": created
        if isinstance(created, int) and not isinstance(created, bool)
        else _unix(run.created_at),
        "data_source": data_source,
        "metadata": saved.get("metadata") if isinstance(saved.get("metadata"), dict) else {},
        "imported_from": str(saved.get("id") or ""),
        "assay": {"dataset_id": str(dataset.id)},
    }
    ports.openai.put(principal.tenant_id, RUN, run.id, doc, created_at=run.created_at.isoformat(), parent=key)
    return run_object(doc, run, ev, base_url=base_url, ports=ports)


# ------------------------------------------------------------------ the report page
REPORT_FAILING_ITEMS = 50


def report_page(
    tenant: str, run_hex: str, expires: str, signature: str, *, base_url: str, ports: Ports = DEPLOYED
) -> str:
    """The report page a ``report_url`` opens: only with a valid, unexpired signature."""
    try:
        tenant_id, run_id, until = UUID(hex=tenant), UUID(hex=run_hex), int(expires)
    except ValueError:  # any part altered: the same 403 as a wrong signature
        raise InsufficientPermissionsError(_EXPIRED) from None
    if not run_page.verify(ports.keyring.hmac_key(), tenant_id, run_id, until, signature, time.time()):
        raise InsufficientPermissionsError(_EXPIRED)
    reader = Principal(tenant_id=tenant_id, key_id=UUID(int=0), role="viewer")
    doc = ports.openai.get(tenant_id, RUN, run_id)
    run = ports.runs.get(tenant_id, run_id)
    if doc is None or run is None:
        raise NotFoundError("eval run")
    _, ev = _eval_doc(reader, doc["eval_id"], ports=ports)
    shown = run_object(doc, run, ev, base_url=base_url, ports=ports)
    failing = list_output_items(
        reader,
        ev["id"],
        doc["id"],
        after=None,
        limit=REPORT_FAILING_ITEMS,
        order="asc",
        status="fail",
        ports=ports,
    )["data"]
    return run_page.render(shown, ev["name"], failing)


_EXPIRED = "this report link is invalid or has expired: read the run again for a fresh report_url"
