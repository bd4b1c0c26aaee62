"""Every model call of a scoring batch — the run's generation and its LLM judges — goes
through ``ModelCalls``: the response cache, the deployment's shared rate limiter, retries
with backoff (honouring ``Retry-After``) and the usage meter, in one place.

A call the cache can answer costs nothing; a call that goes out first takes a permit from
the limiter (every batch of every run shares the provider+model's bucket), and settles it
with the tokens the provider reports. A transient failure is tried again inside the batch
up to ``ATTEMPTS`` times, each wait the provider's ``Retry-After`` when it sent one (and
every other caller of that model backs off as long), else exponential with jitter; what
still fails raises ``TransientScoringError`` to the caller.

Embeddings (``embed``: the ``cosine_similarity`` scorer) go the same way — a permit from the
provider+model's bucket, the same retries, metered as role ``judge`` of that model — but
not through the response cache (see ``embed``).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from uuid import UUID

from assay_service.domain.generation import (
    ChatReply,
    ChatRequest,
    ModelClient,
    Role,
    UsageMeter,
    judge_request,
)
from assay_service.domain.ratelimit import Limits, estimate_tokens
from assay_service.domain.scorers.judges import JudgeReply
from assay_service.errors import TransientScoringError, TransientStoreError
from assay_service.models.domain import JudgeSettings, RateLimits
from assay_service.ports import RateLimiter, ResponseCache

T = TypeVar("T")

ATTEMPTS = 5
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0


def parse_limits(raw: str | None) -> dict[str, RateLimits]:
    """The ``MODEL_RATE_LIMITS`` setting: JSON ``{"provider:model": {requests_per_minute,
    tokens_per_minute, concurrent}}``; the key ``"*"`` applies to every model without its
    own entry. A malformed value is a deployment error (raises)."""
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("MODEL_RATE_LIMITS must be a JSON object of 'provider:model' → limits")
    return {str(key): RateLimits.model_validate(value) for key, value in data.items()}


def limits_for(
    provider: str, model: str, deployment: Mapping[str, RateLimits], run: RateLimits | None
) -> Limits:
    """The run's override, else the deployment's entry for the model, else its ``*``."""
    chosen = run or deployment.get(f"{provider}:{model}") or deployment.get("*")
    if chosen is None:
        return Limits()
    return Limits(chosen.requests_per_minute, chosen.tokens_per_minute, chosen.concurrent)


@dataclass
class ModelCalls:
    tenant_id: UUID
    clients: Callable[[str], ModelClient]
    limiter: RateLimiter | None
    cache: ResponseCache | None  # None: the run said ``cache: false``
    limits: Callable[[str, str], Limits]
    meter: UsageMeter
    deadline: float  # time.time() after which no call starts (the batch's own timeout)
    sleep: Callable[[float], None] = time.sleep
    # The deployment's EMBEDDING_MODEL; None: read from the settings when first needed.
    embedding_default: str | None = None
    # Answers read ahead (``prefetch``: None for a key known to be missing) and answers to
    # store (``flush``): a batch reads and writes the cache in a few batched requests.
    _known: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    _new: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def prefetch(self, requests: Iterable[ChatRequest]) -> None:
        """Read the cached answers of ``requests`` at once (a batch's generation calls, its
        judges' first calls)."""
        if self.cache is None:
            return
        keys = [r.cache_key() for r in requests if r.cacheable]
        found = self.cache.get_many(self.tenant_id, keys)
        with self._lock:
            self._known.update({key: found.get(key) for key in keys})

    def call(self, request: ChatRequest, role: Role) -> tuple[ChatReply, bool]:
        """The reply, and whether it came from the cache."""
        key = request.cache_key() if self.cache is not None and request.cacheable else None
        if key is not None and self.cache is not None:
            with self._lock:
                known, stored = key in self._known, self._known.get(key)
                stored = stored or self._new.get(key)
            if not known and stored is None:
                stored = self.cache.get(self.tenant_id, key)
            if stored is not None:
                self.meter.reused(role, request)
                return ChatReply.from_dict(stored), True
            self.meter.missed()
        reply = self._call(request)
        self.meter.called(role, request, reply)
        if key is not None:
            with self._lock:
                self._new[key] = reply.to_dict()
        return reply, False

    def flush(self) -> None:
        """Store the answers called for since the last flush (best effort: a store that
        cannot take them now only costs a later call)."""
        with self._lock:
            new, self._new = self._new, {}
        if new and self.cache is not None:
            with contextlib.suppress(TransientStoreError):
                self.cache.put_many(self.tenant_id, new)

    def _call(self, request: ChatRequest) -> ChatReply:
        client = self.clients(request.provider)

        def send() -> ChatReply:
            sent = time.perf_counter()
            reply = client.chat(request)
            return replace(reply, latency_ms=round((time.perf_counter() - sent) * 1000))

        def used(reply: ChatReply) -> int | None:
            if reply.prompt_tokens is None:
                return None
            return reply.prompt_tokens + (reply.completion_tokens or 0)

        estimate = estimate_tokens(request.prompt_chars, request.max_tokens)
        return self._attempts(request.provider, request.model, estimate, send, used)

    def embed(self, provider: str, model: str, texts: list[str]) -> tuple[list[list[float]], int | None]:
        """The embeddings of ``texts`` from ``provider``'s ``model`` (one vector per text, in
        order) and the input tokens reported: a permit of the model's bucket (estimated as a
        prompt of the texts, no answer), the retries of ``call``, usage metered as a
        ``judge`` call of the model (its prompt tokens; no completion tokens).

        Not cached: an embedding call is cheap (about $0.02 per 1M tokens) and its vectors
        are large to store (1,536 floats for text-embedding-3-small); a re-scored batch
        asks again."""
        client = self.clients(provider)
        estimate = estimate_tokens(sum(len(text) for text in texts), 0)
        vectors, tokens = self._attempts(
            provider, model, estimate, lambda: client.embed(model, list(texts)), lambda answer: answer[1]
        )
        self.meter.called(
            "judge",
            ChatRequest(provider=provider, model=model, messages=()),
            ChatReply(text="", prompt_tokens=tokens, completion_tokens=0 if tokens is not None else None),
        )
        return vectors, tokens

    def embedding_model(self, provider: str) -> str:
        """The deployment's embeddings model for ``provider`` (the ``EMBEDDING_MODEL``
        setting through ``openai_graders.embedding_model_for``): what ``cosine_similarity``
        asks when its metric names none."""
        from assay_service.domain.scorers.openai_graders import embedding_model_for
        from assay_service.settings import get_settings

        configured = self.embedding_default
        if configured is None:
            configured = get_settings().embedding_model
        return embedding_model_for(provider, configured)

    def _attempts(
        self,
        provider: str,
        model: str,
        estimate: int,
        send: Callable[[], T],
        used: Callable[[T], int | None],
    ) -> T:
        """``send()`` within the model's limits: a permit first (settled with ``used(answer)``
        tokens, or the estimate when unknown), transient failures tried again."""
        limits = self.limits(provider, model)
        bucket = f"{provider}:{model}"
        failure: TransientScoringError | None = None
        for attempt in range(ATTEMPTS):
            if time.time() >= self.deadline:
                break
            permit = None
            if self.limiter is not None and not limits.unlimited:
                permit = self.limiter.acquire(bucket, limits, tokens=estimate, deadline=self.deadline)
            try:
                answer = send()
            except TransientScoringError as exc:
                if permit is not None:
                    permit.settle(estimate)
                failure = exc
                if exc.retry_after is not None and self.limiter is not None and not limits.unlimited:
                    self.limiter.back_off(bucket, exc.retry_after)
                wait = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt)
                )
                # jitter, not a secret: random is the right tool (bandit B311)
                wait *= 1 + random.random() * 0.2  # nosec B311
                if attempt + 1 < ATTEMPTS and time.time() + wait < self.deadline:
                    self.sleep(wait)
                    continue
                break
            except BaseException:
                if permit is not None:
                    permit.settle(estimate)
                raise
            if permit is not None:
                spent = used(answer)
                permit.settle(spent if spent is not None else estimate)
            return answer
        if failure is None:
            failure = TransientScoringError(f"{bucket}: no time left in the batch for the call")
        raise failure

    # the JudgeClient port: what the judge scorers call
    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        reply, cached = self.call(judge_request(system, user, settings), "judge")
        if cached:  # nothing was spent on this answer
            return JudgeReply(text=reply.text, input_tokens=0, output_tokens=0)
        return JudgeReply(
            text=reply.text, input_tokens=reply.prompt_tokens, output_tokens=reply.completion_tokens
        )

    # the JudgeChatClient port: a whole conversation (OpenAI's model graders); the request
    # names the grader's own model, so the cache key, the limiter's bucket and the usage
    # row are that model's
    def complete_chat(self, request: ChatRequest) -> JudgeReply:
        reply, cached = self.call(request, "judge")
        if cached:
            return JudgeReply(text=reply.text, input_tokens=0, output_tokens=0)
        return JudgeReply(
            text=reply.text, input_tokens=reply.prompt_tokens, output_tokens=reply.completion_tokens
        )
