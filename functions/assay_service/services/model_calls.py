"""Every model call of a scoring batch — the run's generation and its LLM judges — goes
through ``ModelCalls``: the response cache, the deployment's shared rate limiter, retries
with backoff (honouring ``Retry-After``) and the usage meter, in one place.

A call the cache can answer costs nothing; a call that goes out first takes a permit from
the limiter (every batch of every run shares the provider+model's bucket), and settles it
with the tokens the provider reports. A transient failure is tried again inside the batch
up to ``ATTEMPTS`` times, each wait the provider's ``Retry-After`` when it sent one (and
every other caller of that model backs off as long), else exponential with jitter; what
still fails raises ``TransientScoringError`` to the caller.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
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
        limits = self.limits(request.provider, request.model)
        bucket = f"{request.provider}:{request.model}"
        estimate = estimate_tokens(request.prompt_chars, request.max_tokens)
        failure: TransientScoringError | None = None
        for attempt in range(ATTEMPTS):
            if time.time() >= self.deadline:
                break
            permit = None
            if self.limiter is not None and not limits.unlimited:
                permit = self.limiter.acquire(bucket, limits, tokens=estimate, deadline=self.deadline)
            try:
                sent = time.perf_counter()
                reply = client.chat(request)
                reply = replace(reply, latency_ms=round((time.perf_counter() - sent) * 1000))
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
                used = (reply.prompt_tokens or 0) + (reply.completion_tokens or 0)
                permit.settle(used if reply.prompt_tokens is not None else estimate)
            return reply
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
