"""The shared rate limiter's arithmetic (``domain.ratelimit``), on a simulated clock: in any
60 s window a key's calls never exceed the limit plus one second's worth, however callers
arrive; a call bigger than a second of tokens still passes (and leaves a debt); settling
refunds or charges the estimate's error; a block stops everyone until it ends. Then the
in-memory ``FakeRateLimiter`` the service tests use keeps the same rules."""

from __future__ import annotations

import math
import random
import threading

import pytest
from assay_service.domain.ratelimit import (
    Bucket,
    Limits,
    block,
    charge,
    estimate_tokens,
    refill,
    request_capacity,
    take,
    token_capacity,
)
from assay_service.errors import TransientScoringError

from tests.support.fakes import FakeRateLimiter

EPS = 1e-9


def max_in_window(events: list[tuple[float, float]], window: float = 60.0) -> float:
    """The largest total weight of events within any closed window of ``window`` seconds."""
    events = sorted(events)
    best = total = 0.0
    start = 0
    for t, weight in events:
        total += weight
        while events[start][0] < t - window:
            total -= events[start][1]
            start += 1
        best = max(best, total)
    return best


def greedy(limits: Limits, seconds: float, tokens: int = 0, start: float = 1000.0) -> list[float]:
    """A caller that sends as soon as the bucket lets it, for ``seconds``: the send times."""
    state, now, sent = None, start, []
    while now < start + seconds:
        after, wait = take(state, limits, now, tokens=tokens)
        if after is None:
            assert wait > 0
            now += wait
            continue
        state = after
        sent.append(now)
    return sent


# ------------------------------------------------------------------ capacity
@pytest.mark.parametrize(("rpm", "capacity"), [(600, 10.0), (6000, 100.0), (60, 1.0), (30, 1.0), (1, 1.0)])
def test_request_capacity_is_one_seconds_worth_and_at_least_one(rpm, capacity):
    limits = Limits(requests_per_minute=rpm)
    assert request_capacity(limits) == capacity
    state, now, passed = None, 50.0, 0
    while True:  # all at one instant: a full bucket lets exactly its capacity through
        after, wait = take(state, limits, now)
        if after is None:
            break
        state, passed = after, passed + 1
    assert passed == math.floor(capacity)
    assert wait == pytest.approx((1 - (capacity - passed)) / (rpm / 60))


def test_a_key_seen_first_starts_full_and_unlimited_axes_are_ignored():
    limits = Limits(requests_per_minute=120)
    assert Bucket.full(limits, 5.0) == Bucket(requests=2.0, tokens=0.0, at=5.0)
    assert token_capacity(limits) is None
    after, wait = take(None, limits, 5.0, tokens=10**9)  # tokens are not limited
    assert after is not None and wait == 0 and after.requests == 1.0 and after.tokens == 0.0
    assert take(None, Limits(concurrent=3), 5.0, tokens=10**9) == (Bucket(0.0, 0.0, 5.0), 0.0)


# ------------------------------------------------------------------ rate over minutes
@pytest.mark.parametrize("rpm", [1, 7, 60, 120, 500, 3000])
def test_a_greedy_caller_gets_the_rate_and_never_more_than_limit_plus_a_second(rpm):
    limits = Limits(requests_per_minute=rpm)
    sent = greedy(limits, seconds=300)
    cap = request_capacity(limits)
    assert max_in_window([(t, 1) for t in sent]) <= rpm + cap + EPS
    # and it is not starved: over 5 minutes, 5 minutes' worth (plus the initial burst)
    assert len(sent) >= 5 * rpm - 1
    assert len(sent) <= 5 * rpm + cap + EPS


def test_random_callers_and_sizes_never_exceed_the_limits_in_any_window():
    rng = random.Random(7)
    limits = Limits(requests_per_minute=240, tokens_per_minute=60_000)
    state: Bucket | None = None
    now, sent = 0.0, []
    biggest = 0
    for _ in range(20_000):
        now += rng.expovariate(20.0)  # far more arrivals than the limit allows
        size = rng.choice([50, 400, 900, 3000])  # 3000 > one second's 1000 tokens
        after, wait = take(state, limits, now, tokens=size)
        if after is not None:
            state = after
            sent.append((now, size))
            biggest = max(biggest, size)
    requests = max_in_window([(t, 1) for t, _ in sent])
    tokens = max_in_window(sent)
    assert requests <= 240 + 4 + EPS
    # a call larger than a second's worth may overdraw the bucket by its own excess
    assert tokens <= 60_000 + max(token_capacity(limits), biggest) + EPS
    assert tokens >= 0.9 * 60_000  # and the limit is used, not wasted


def test_refill_is_capped_at_capacity_and_never_runs_backwards():
    limits = Limits(requests_per_minute=600, tokens_per_minute=6000)
    state = Bucket(requests=0.0, tokens=-50.0, at=100.0)
    assert refill(state, limits, 100.5) == Bucket(requests=5.0, tokens=0.0, at=100.5)
    assert refill(state, limits, 1000.0) == Bucket(requests=10.0, tokens=100.0, at=1000.0)
    # a caller whose clock is behind the bucket's stamp: no refill, the later stamp stays
    assert refill(state, limits, 99.0) == state


# ------------------------------------------------------------------ tokens
def test_a_call_bigger_than_a_second_of_tokens_passes_when_full_and_leaves_a_debt():
    limits = Limits(tokens_per_minute=6000)  # 100 tokens/s, capacity 100
    state, wait = take(None, limits, 0.0, tokens=450)
    assert state is not None and wait == 0 and state.tokens == -350.0
    after, wait = take(state, limits, 0.0, tokens=10)
    assert after is None and wait == pytest.approx(3.6)  # the debt, then 10 tokens
    assert take(state, limits, 3.6, tokens=10)[0] is not None
    # the next big one waits for a full bucket, not for 450 tokens
    assert take(state, limits, 4.49, tokens=450)[0] is None
    assert take(state, limits, 4.5, tokens=450)[0] is not None


def test_settling_refunds_up_to_capacity_or_charges_into_debt():
    limits = Limits(tokens_per_minute=6000)
    state, _ = take(None, limits, 0.0, tokens=80)  # 20 left
    refunded = charge(state, limits, 0.0, -50)  # used 30 of the 80
    assert refunded.tokens == 70.0
    assert charge(state, limits, 0.0, -500).tokens == 100.0  # never above capacity
    charged = charge(state, limits, 0.0, 120)  # used 200
    assert charged.tokens == -100.0
    after, wait = take(charged, limits, 0.0, tokens=1)
    assert after is None and wait == pytest.approx(1.01)  # later callers wait the debt out
    assert charge(state, Limits(requests_per_minute=5), 0.0, 999) == refill(state, Limits(5), 0.0)


def test_the_estimate_is_a_quarter_of_the_characters_rounded_up_plus_max_tokens():
    assert estimate_tokens(0, 256) == 256
    assert estimate_tokens(1, 0) == 1
    assert estimate_tokens(400, 100) == 200
    assert estimate_tokens(401, 100) == 201
    assert estimate_tokens(-5, -1) == 0


# ------------------------------------------------------------------ blocks
def test_a_block_stops_every_call_until_it_ends_and_a_shorter_one_does_not_shorten_it():
    limits = Limits(requests_per_minute=6000, tokens_per_minute=600_000)
    state = block(None, limits, 10.0, 20.0)
    assert state.blocked_until == 30.0
    assert block(state, limits, 12.0, 1.0).blocked_until == 30.0
    assert block(state, limits, 12.0, 25.0).blocked_until == 37.0
    after, wait = take(state, limits, 15.0, tokens=1)
    assert after is None and wait == pytest.approx(15.0)
    after, wait = take(state, limits, 30.0, tokens=1)
    assert after is not None and wait == 0
    # the block does not hand out a minute's worth when it ends: one second's, as always
    assert after.requests == pytest.approx(99.0)


def test_a_limit_of_zero_lets_nothing_through():
    assert take(None, Limits(requests_per_minute=0), 0.0) == (None, math.inf)
    assert take(None, Limits(tokens_per_minute=0), 0.0, tokens=1) == (None, math.inf)


# ------------------------------------------------------------------ the in-memory fake
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_fake_limiter_spaces_calls_at_the_rate_and_records_them():
    clock = Clock()
    limiter = FakeRateLimiter(clock=clock.time, sleep=clock.sleep)
    limits = Limits(requests_per_minute=120, tokens_per_minute=12_000)
    for _ in range(10):
        limiter.acquire("openai:m", limits, tokens=100, deadline=clock.now + 60).settle(40)
    times = [t for _, _, t in limiter.acquisitions]
    assert max_in_window([(t, 1) for t in times], 1.0) <= 2 + 2 + EPS
    assert times[-1] - times[0] == pytest.approx(4.0)  # 2 at once, then one each 0.5 s
    assert limiter.settlements == [("openai:m", 100, 40)] * 10


def test_fake_limiter_deadline_back_off_and_slots():
    clock = Clock()
    limiter = FakeRateLimiter(clock=clock.time, sleep=clock.sleep)
    limits = Limits(requests_per_minute=60, concurrent=1)
    first = limiter.acquire("k", limits, tokens=0, deadline=clock.now + 5)
    with pytest.raises(TransientScoringError, match="k: all 1 call slots"):
        limiter.acquire("k", limits, tokens=0, deadline=clock.now + 0.5)
    first.settle(0)
    first.settle(0)  # twice: a no-op
    assert limiter.in_flight["k"] == 0 and limiter.max_in_flight["k"] == 1
    limiter.back_off("k", 30)
    with pytest.raises(TransientScoringError, match="rate limit of k"):
        limiter.acquire("k", limits, tokens=0, deadline=clock.now + 10)
    start = clock.now
    limiter.acquire("k", limits, tokens=0, deadline=clock.now + 60).settle(0)
    assert clock.now - start == pytest.approx(30.0)
    assert limiter.back_offs == [("k", 30)] and limiter.refusals == ["k", "k"]


def test_reservations_space_the_calls_at_the_rate_and_never_poll():
    from assay_service.domain.ratelimit import reserve

    limits = Limits(requests_per_minute=600)  # 10/s, one second's burst of 10
    state, now, turns = None, 100.0, []
    for _ in range(40):  # 40 callers arrive at once
        state, wait = reserve(state, limits, now, requests=1)
        assert state is not None
        turns.append(now + wait)
    # the burst goes at once, then one every 0.1 s: 40 calls by 103.0 and never faster
    assert turns[:10] == [100.0] * 10
    assert turns[-1] == pytest.approx(103.0)
    assert all(b - a == pytest.approx(0.1) for a, b in zip(turns[10:], turns[11:], strict=False))
    # a limit of 0 never reserves
    assert reserve(None, Limits(requests_per_minute=0), now) == (None, math.inf)
