"""Provider rate limits: a token bucket per provider+model — pure, no I/O.

A provider counts requests and tokens per minute for the whole account, so every batch of
every run of the deployment shares one bucket per ``provider:model`` (the adapter keeps it
in DynamoDB, ``adapters/dynamodb/ratelimit.py``; decision 0016). This module is only the
arithmetic, with the clock passed in, so it is tested without sleeping.

Two buckets in one state, one per axis: *requests* and *tokens*. Each refills at
``limit / 60`` per second and holds at most **one second's worth** (``capacity``; at least
one request). A fuller bucket (a minute's worth, like a fixed-minute counter) would let a
deployment that sat idle send a whole minute's quota at once and then the next minute's
right after — twice the limit within a few seconds, which providers answer with 429s. With
one second's worth, the calls of any 60 s window number at most the limit plus one second's
worth, and they are spread over the window instead of bunched at its start.

A call passes when its axes hold what it asks (``take``). A call larger than one second of
tokens could never find that much in the bucket: it passes when the token bucket is *full*
and leaves it in debt (negative), which later callers wait out. That is the same bound as a
bucket whose capacity is the call's size (the window's extra is at most that call), but
small calls cannot starve the large one by keeping the bucket from ever holding it.

The tokens a call is charged are an estimate (``estimate_tokens``) made before the call;
once it is done, ``charge`` moves the bucket by the difference from what it really used (a
refund when it used less, a further charge — possibly into debt — when it used more).
``block`` stops every caller until a moment (a provider's ``Retry-After``).

Times are ``time.time()`` seconds: several Lambda instances share a bucket, so the clock
must be the wall clock. A bucket stamped later than a caller's clock (a small skew between
machines) is not refilled backwards, and keeps its later stamp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class Limits:
    """A provider+model's limits; None: not limited on that axis."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent: int | None = None

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None and self.concurrent is None


@dataclass(frozen=True, slots=True)
class Bucket:
    """A key's bucket at ``at``: request and token allowance (tokens may be negative: a
    debt), and the moment before which nothing may go (``blocked_until``, 0: none)."""

    requests: float
    tokens: float
    at: float
    blocked_until: float = 0.0

    @classmethod
    def full(cls, limits: Limits, now: float) -> Bucket:
        """A key seen for the first time: both axes at capacity."""
        return cls(
            requests=request_capacity(limits) or 0.0,
            tokens=token_capacity(limits) or 0.0,
            at=now,
        )


def _rate(per_minute: int | None) -> float | None:
    return None if per_minute is None else max(per_minute, 0) / 60.0


def request_capacity(limits: Limits) -> float | None:
    """One second of requests, at least one (None: requests are not limited)."""
    rate = _rate(limits.requests_per_minute)
    return None if rate is None else max(1.0, rate)


def token_capacity(limits: Limits) -> float | None:
    """One second of tokens (None: tokens are not limited). A call asking more passes
    when the bucket is full (module docstring)."""
    return _rate(limits.tokens_per_minute)


def refill(state: Bucket, limits: Limits, now: float) -> Bucket:
    """``state`` brought to ``now``: each axis refilled at its rate, up to its capacity
    (a debt is paid back at the same rate). Never moves backwards in time."""
    elapsed = max(0.0, now - state.at)
    requests, tokens = state.requests, state.tokens
    r_cap, t_cap = request_capacity(limits), token_capacity(limits)
    r_rate, t_rate = _rate(limits.requests_per_minute), _rate(limits.tokens_per_minute)
    if r_cap is not None and r_rate is not None:
        requests = min(r_cap, requests + r_rate * elapsed)
    if t_cap is not None and t_rate is not None:
        tokens = min(t_cap, tokens + t_rate * elapsed)
    return replace(state, requests=requests, tokens=tokens, at=max(state.at, now))


# Float slack: a wait under a microsecond is no wait. A ``time.time()`` value (~1.8e9) only
# has about 0.2 µs of precision, so a refill computed as 0.99999999 of a request must count
# as one — else a waiter would be told to wait a time too small to move the clock, again
# and again.
_SLACK_S = 1e-6


def _wait(level: float, need: float, rate: float | None) -> float:
    """Seconds until ``level`` reaches ``need`` at ``rate`` (inf: it never refills)."""
    if level >= need:
        return 0.0
    if not rate:
        return math.inf
    wait = (need - level) / rate
    return 0.0 if wait <= _SLACK_S else wait


def take(
    state: Bucket | None, limits: Limits, now: float, requests: int = 1, tokens: int = 0
) -> tuple[Bucket | None, float]:
    """Take ``requests`` and ``tokens`` (the call's estimate) from the bucket at ``now``.

    Returns ``(new_state, 0.0)`` when the call may go, else ``(None, seconds)``: how long
    until it could (``inf`` when a limit of 0 means never). ``state`` None: a full bucket.
    Axes whose limit is None are not checked and not moved."""
    state = refill(Bucket.full(limits, now) if state is None else state, limits, now)
    if now < state.blocked_until:
        return None, state.blocked_until - now
    if (limits.requests_per_minute is not None and limits.requests_per_minute <= 0) or (
        limits.tokens_per_minute is not None and limits.tokens_per_minute <= 0
    ):
        return None, math.inf  # a limit of 0: nothing ever goes
    wait = 0.0
    r_cap, t_cap = request_capacity(limits), token_capacity(limits)
    if r_cap is not None:
        wait = max(wait, _wait(state.requests, min(requests, r_cap), _rate(limits.requests_per_minute)))
    if t_cap is not None:
        wait = max(wait, _wait(state.tokens, min(tokens, t_cap), _rate(limits.tokens_per_minute)))
    if wait > 0:
        return None, wait
    return (
        replace(
            state,
            requests=state.requests - requests if r_cap is not None else state.requests,
            tokens=state.tokens - tokens if t_cap is not None else state.tokens,
        ),
        0.0,
    )


def reserve(
    state: Bucket | None, limits: Limits, now: float, requests: int = 1, tokens: int = 0
) -> tuple[Bucket | None, float]:
    """``take`` as a reservation: the call's share is taken now, into debt if need be, and
    the wait returned is when the call may go — what ``take`` would have made it wait for.
    A caller that reserves sleeps once instead of asking again and again, and the order of
    the reservations is the order of the calls. ``(None, inf)`` when a limit of 0 means
    never. Over any window the calls admitted stay within capacity + rate × window, as
    with ``take``."""
    state = refill(Bucket.full(limits, now) if state is None else state, limits, now)
    if (limits.requests_per_minute is not None and limits.requests_per_minute <= 0) or (
        limits.tokens_per_minute is not None and limits.tokens_per_minute <= 0
    ):
        return None, math.inf
    wait = max(0.0, state.blocked_until - now)
    r_cap, t_cap = request_capacity(limits), token_capacity(limits)
    if r_cap is not None:
        wait = max(wait, _wait(state.requests, min(requests, r_cap), _rate(limits.requests_per_minute)))
    if t_cap is not None:
        wait = max(wait, _wait(state.tokens, min(tokens, t_cap), _rate(limits.tokens_per_minute)))
    return (
        replace(
            state,
            requests=state.requests - requests if r_cap is not None else state.requests,
            tokens=state.tokens - tokens if t_cap is not None else state.tokens,
        ),
        wait,
    )


def charge(state: Bucket | None, limits: Limits, now: float, tokens: int) -> Bucket:
    """Move the token axis by ``tokens`` at ``now``: a positive number charges more (the
    call used more than its estimate; the bucket may go into debt), a negative one refunds
    (it used less; never above capacity)."""
    state = refill(Bucket.full(limits, now) if state is None else state, limits, now)
    cap = token_capacity(limits)
    if cap is None:
        return state
    return replace(state, tokens=min(cap, state.tokens - tokens))


def block(state: Bucket | None, limits: Limits, now: float, seconds: float) -> Bucket:
    """Nothing may go before ``now + seconds`` (a later block already set stays)."""
    state = refill(Bucket.full(limits, now) if state is None else state, limits, now)
    return replace(state, blocked_until=max(state.blocked_until, now + max(0.0, seconds)))


def estimate_tokens(messages_chars: int, max_tokens: int) -> int:
    """The tokens a call is charged before it is made: its messages' characters / 4
    (rounded up) plus ``max_tokens``.

    Four characters a token is the usual figure for English text, and it is how
    OpenAI-compatible providers themselves estimate a request when it arrives: they count
    the prompt from its length and reserve ``max_tokens`` for the answer, before any token
    is generated. Charging the same estimate keeps our bucket in step with theirs (no
    tokenizer needed in the Lambda). The answer's share is an upper bound, so the estimate
    is mostly too high; ``Permit.settle`` refunds the difference once the call reports its
    usage (and charges more for a prompt denser than four characters a token)."""
    return -(-max(messages_chars, 0) // 4) + max(max_tokens, 0)
