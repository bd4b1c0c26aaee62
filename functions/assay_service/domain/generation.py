"""Generation inside a run: the model under test answers each record — pure, no I/O.

* Templates: ``{{record.FIELD}}`` placeholders, nothing else. No loops, no filters, no
  expressions: a template is tenant input rendered in a scoring Lambda, so it can only
  name a value (a Jinja sandbox would be a larger attack surface for no gain here;
  decision 0017). A field the record lacks is an error for that record, never an empty
  string silently sent to the model.
* ``ChatRequest``: one provider call, hashable into the response cache's key.
* ``UsageMeter``: tokens and calls per (role, provider, model), thread-safe, mergeable
  across batches.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from assay_service.domain.openai_templates import PLACEHOLDER, lookup, placeholders
from assay_service.domain.pricing import Price, cost_usd
from assay_service.errors import InvalidRecordError
from assay_service.models.domain import GenerationSettings, JudgeSettings, ModelUsage, Record

_PATH = re.compile(r"^record\.(?:metadata\.)?[A-Za-z_][A-Za-z0-9_\-]{0,99}$")
# OpenAI Evals' ``{{item.key.path}}`` over the item a record carries in ``metadata["item"]``.
_ITEM_PATH = re.compile(r"^item(\.[A-Za-z0-9_\-$]{1,100}){1,16}$")
RECORD_FIELDS = ("prompt", "input", "context", "output", "golden_answer", "id")
# What a generated answer may hold (the record text limit).
MAX_OUTPUT_CHARS = 100_000


class TemplateError(ValueError):
    """A template names something other than a record field (the message says what)."""


class MissingFieldError(ValueError):
    """The record has no value for a placeholder."""


def check_template(template: str) -> None:
    for path in placeholders(template):
        if not (_PATH.match(path) or _ITEM_PATH.match(path)):
            raise TemplateError(
                f"unknown placeholder {{{{{path}}}}}: use {{{{record.FIELD}}}} with FIELD one of "
                f"{', '.join(RECORD_FIELDS)} or a metadata key (or {{{{item.KEY}}}} for an item)"
            )
    stray = PLACEHOLDER.sub("", template)
    if "{{" in stray:
        raise TemplateError("an unclosed '{{' placeholder")


# The block is stored with the eval version and with each run (DynamoDB items of at most
# 400 KB, beside the metrics): 100 KB of JSON in all, the templates and schema included.
MAX_SETTINGS_BYTES = 100_000


def check_settings(settings: GenerationSettings) -> list[str]:
    """Every problem of the settings (templates, the answer's schema, the size), as
    ``where: what`` messages."""
    from assay_service.domain.scorers import jsonschema_lite

    problems = []
    size = len(settings.model_dump_json().encode())
    if size > MAX_SETTINGS_BYTES:
        problems.append(
            f"generation: {size:,} bytes of JSON, over the {MAX_SETTINGS_BYTES:,} a generation block may hold"
        )
    if settings.response_format is not None:
        try:
            jsonschema_lite.check_schema(settings.response_format, where="generation.response_format")
        except jsonschema_lite.SchemaError as exc:
            problems.append(f"generation.response_format: not a valid JSON Schema: {exc}")
    if not settings.model.strip() or any(ord(c) < 32 for c in settings.model):
        problems.append("generation.model: a model id, without blanks only or control characters")
    texts = [("generation.system", settings.system)] if settings.system else []
    texts += [(f"generation.messages[{i}].content", m.content) for i, m in enumerate(settings.messages)]
    for where, text in texts:
        try:
            check_template(text)
        except TemplateError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def template_fields(settings: GenerationSettings) -> tuple[set[str], set[str]]:
    """(the standard record fields, the metadata keys) the templates read."""
    texts = [settings.system or ""] + [m.content for m in settings.messages]
    fields: set[str] = set()
    keys: set[str] = set()
    for text in texts:
        for path in placeholders(text):
            name = path.split(".")[-1]
            if _ITEM_PATH.match(path):
                keys.add("item")
            elif ".metadata." in path or name not in RECORD_FIELDS:
                keys.add(name)
            else:
                fields.add(name)
    return fields, keys


def _value(record: Record, path: str) -> str:
    name = path.split(".")[-1]
    value: Any
    if _ITEM_PATH.match(path):
        try:
            value = lookup(path, {"metadata": record.metadata})
        except InvalidRecordError as exc:
            raise MissingFieldError(str(exc)) from None
    elif ".metadata." in path or name not in RECORD_FIELDS:
        value = record.metadata.get(name)
    else:
        value = getattr(record, name)
    if value is None or value == "":
        raise MissingFieldError(f"the record has no {name!r} for the template's {{{{{path}}}}}")
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render(template: str, record: Record) -> str:
    return PLACEHOLDER.sub(lambda m: _value(record, m.group(1)), template)


# ------------------------------------------------------------------ calls
@dataclass(frozen=True, slots=True)
class ChatRequest:
    provider: str
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content); a system message first, if any
    temperature: float = 0.0
    max_tokens: int = 512
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] | None = None
    json_schema: str | None = None  # canonical JSON text of the answer's schema
    json_object: bool = False  # the answer must be one JSON object (judges)

    @property
    def cacheable(self) -> bool:
        """Deterministic enough to reuse: greedy decoding or a fixed seed."""
        return self.temperature == 0 or self.seed is not None

    def cache_key(self) -> str:
        body = json.dumps(
            [
                self.provider,
                self.model,
                self.messages,
                self.temperature,
                self.max_tokens,
                self.top_p,
                self.seed,
                self.stop,
                self.json_schema,
                self.json_object,
            ],
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(body.encode()).hexdigest()

    @property
    def prompt_chars(self) -> int:
        return sum(len(content) for _, content in self.messages)


@dataclass(frozen=True, slots=True)
class ChatReply:
    text: str
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    latency_ms: int | None = None  # the answered call's own time (waits and retries aside)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatReply:
        return cls(
            text=str(data.get("text") or ""),
            finish_reason=data.get("finish_reason"),
            prompt_tokens=data.get("prompt_tokens"),
            completion_tokens=data.get("completion_tokens"),
            cached_tokens=data.get("cached_tokens"),
        )


def clean_text(text: str) -> str:
    """A provider's text as valid Unicode: a lone surrogate (a token cut in the middle of an
    emoji, a broken endpoint: legal in JSON's ``\\uD83D``) becomes U+FFFD, so the answer can
    be stored, cached and exported like any other."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class ModelClient(Protocol):
    """A provider's chat endpoint (``adapters.judges``): TransientScoringError for what may
    pass (throttling, 5xx, timeouts), ``ModelRequestError`` for what will not."""

    def chat(self, request: ChatRequest) -> ChatReply: ...

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int | None]:
        """One embedding per text, in order, and the input tokens the provider reports
        (None when it reports none); errors as ``chat``'s."""
        ...


class ModelRequestError(Exception):
    """The provider refused the request for good (a 4xx other than 408/429)."""


def judge_request(system: str, user: str, settings: JudgeSettings) -> ChatRequest:
    """A judge's call: its system prompt and question, one JSON object wanted."""
    return ChatRequest(
        provider=settings.provider,
        model=settings.model,
        messages=(("system", system), ("user", user)),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        json_object=True,
    )


def generation_request(settings: GenerationSettings, record: Record) -> ChatRequest:
    """The call that generates ``record``'s answer (MissingFieldError when a placeholder
    has no value in it)."""
    messages: list[tuple[str, str]] = []
    system = render(settings.system, record) if settings.system else None
    schema = (
        json.dumps(settings.response_format, sort_keys=True, separators=(",", ":"))
        if settings.response_format is not None
        else None
    )
    if schema is not None and settings.provider == "bedrock":
        # Converse has no structured-output parameter for every model: say it in words.
        rule = f"Answer with only one JSON value that validates against this JSON Schema: {schema}"
        system = f"{system}\n\n{rule}" if system else rule
    if system:
        messages.append(("system", system))
    messages += [(m.role, render(m.content, record)) for m in settings.messages]
    return ChatRequest(
        provider=settings.provider,
        model=settings.model,
        messages=tuple(messages),
        temperature=settings.temperature,
        max_tokens=settings.max_tokens,
        top_p=settings.top_p,
        seed=settings.seed,
        stop=tuple(settings.stop) if settings.stop else None,
        json_schema=schema if settings.provider != "bedrock" else None,
    )


def generation_requests(
    records: Iterable[tuple[int, Record]], settings: GenerationSettings
) -> list[ChatRequest]:
    """The calls of the records whose templates can be filled (the rest make none)."""
    out = []
    for _, record in records:
        try:
            out.append(generation_request(settings, record))
        except MissingFieldError:
            continue
    return out


# ------------------------------------------------------------------ usage
Role = Literal["generator", "judge"]


@dataclass(slots=True)
class _Tally:
    invocations: int = 0
    cached_responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float | None = 0.0
    priced: bool = True


@dataclass
class UsageMeter:
    """Calls and tokens per (role, provider, model); cache hits and misses of the run's
    response cache. Shared by the threads of a batch."""

    prices: Mapping[str, Price] | None = None
    hits: int = 0
    misses: int = 0
    _tallies: dict[tuple[str, str, str], _Tally] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def called(self, role: Role, request: ChatRequest, reply: ChatReply) -> float | None:
        """Count a provider call; returns its cost (None when unknown)."""
        cost = cost_usd(request.model, reply.prompt_tokens, reply.completion_tokens, self.prices)
        with self._lock:
            tally = self._tallies.setdefault((role, request.provider, request.model), _Tally())
            tally.invocations += 1
            tally.prompt_tokens += reply.prompt_tokens or 0
            tally.completion_tokens += reply.completion_tokens or 0
            tally.cached_tokens += reply.cached_tokens or 0
            if cost is None:
                tally.priced = False
            else:
                tally.cost = (tally.cost or 0.0) + cost
        return cost

    def reused(self, role: Role, request: ChatRequest) -> None:
        with self._lock:
            self.hits += 1
            self._tallies.setdefault((role, request.provider, request.model), _Tally()).cached_responses += 1

    def missed(self) -> None:
        with self._lock:
            self.misses += 1

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "role": role,
                    "provider": provider,
                    "model": model,
                    "invocations": t.invocations,
                    "cached_responses": t.cached_responses,
                    "prompt_tokens": t.prompt_tokens,
                    "completion_tokens": t.completion_tokens,
                    "cached_tokens": t.cached_tokens,
                    "cost": round(t.cost, 10) if t.priced and t.cost is not None else None,
                }
                for (role, provider, model), t in sorted(self._tallies.items())
            ]


def merge_usage(batches: Iterable[Iterable[Mapping[str, Any]]]) -> list[ModelUsage]:
    """The run's ``per_model_usage`` from its batches' rows."""
    totals: dict[tuple[str, str, str], dict[str, Any]] = {}
    for rows in batches:
        for row in rows:
            key = (row["role"], row["provider"], row["model"])
            total = totals.setdefault(
                key,
                {
                    "role": row["role"],
                    "provider": row["provider"],
                    "model": row["model"],
                    "invocations": 0,
                    "cached_responses": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "cached_tokens": 0,
                    "cost": 0.0,
                },
            )
            for name in (
                "invocations",
                "cached_responses",
                "prompt_tokens",
                "completion_tokens",
                "cached_tokens",
            ):
                total[name] += int(row.get(name) or 0)
            if row.get("cost") is None and row.get("invocations"):
                total["cost"] = None
            elif total["cost"] is not None:
                total["cost"] += float(row.get("cost") or 0.0)
    return [
        ModelUsage(**{**t, "cost": None if t["cost"] is None else round(t["cost"], 10)})
        for _, t in sorted(totals.items())
    ]


# ------------------------------------------------------------------ a batch's answers
@dataclass(frozen=True, slots=True)
class Generated:
    """The answers of a batch: the records with ``output`` set to their answer, what each
    generation was (by record index), and the records that got no answer (why)."""

    records: list[tuple[int, Record]]
    generations: dict[int, dict[str, Any]]
    unscorable: dict[int, str]


def generate(
    records: list[tuple[int, Record]],
    settings: GenerationSettings,
    call: Callable[[ChatRequest], tuple[ChatReply, bool]],
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> Generated:
    """Ask the model for every record's answer, ``settings.concurrency`` calls at a time.

    A record whose template cannot be filled, or whose call fails for good (a refusal, or
    a transient failure that outlasted the retries), is unscorable with the reason; every
    other exception propagates (a bug must not turn into errored records)."""
    from assay_service.errors import TransientScoringError

    def one(record: Record) -> tuple[ChatReply, bool, float]:
        request = generation_request(settings, record)
        started = clock()
        reply, cached = call(request)
        return reply, cached, (reply.latency_ms / 1000 if reply.latency_ms is not None else clock() - started)

    out: list[tuple[int, Record]] = []
    generations: dict[int, dict[str, Any]] = {}
    unscorable: dict[int, str] = {}
    workers = max(1, min(settings.concurrency, len(records)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generate") as pool:
        futures = [(index, record, pool.submit(one, record)) for index, record in records]
        for index, record, future in futures:
            try:
                reply, cached, seconds = future.result()
            except (MissingFieldError, ModelRequestError, TransientScoringError) as exc:
                if isinstance(exc, MissingFieldError):
                    reason = f"generation: {exc}"
                elif isinstance(exc, TransientScoringError):
                    reason = f"generation failed after retries: {exc}"
                else:
                    reason = f"generation failed: {exc}"
                unscorable[index] = reason[:2000]
                generations[index] = {
                    "error": reason[:2000],
                    "provider": settings.provider,
                    "model": settings.model,
                }
                # no answer: the record's own output (if any) is not this run's
                out.append((index, record.model_copy(update={"output": None})))
                continue
            text = reply.text[:MAX_OUTPUT_CHARS]
            generations[index] = {
                "output": text,
                "finish_reason": reply.finish_reason,
                "latency_ms": 0 if cached else round(seconds * 1000),
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "cached_tokens": reply.cached_tokens,
                "cached": cached,
                "provider": settings.provider,
                "model": settings.model,
            }
            out.append((index, record.model_copy(update={"output": text})))
    return Generated(records=out, generations=generations, unscorable=unscorable)
