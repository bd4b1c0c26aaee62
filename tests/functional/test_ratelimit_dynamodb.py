"""The shared rate limiter on the service's table (moto): GIVEN several threads — standing in
for the batches of a deployment, each its own Lambda — acquiring calls of one key at once,
THEN the grants never exceed the rate in any window, the calls in flight never exceed
``concurrent``, a slot whose holder crashed is taken over when its lease ends, a call that
cannot go before its deadline raises TransientScoringError naming the key, a back-off
holds every caller, and batches calling the loopback provider (``model_server``) through
the limiter stay under its limits. High rates and short windows keep it to a few seconds.

moto's DynamoDB is made atomic per request (one lock, as tests/faults does): DynamoDB
applies each conditional write atomically, moto on several threads does not."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from assay_service import dependencies
from assay_service.adapters.dynamodb import DynamoDBRateLimiter, Table
from assay_service.adapters.dynamodb.ratelimit import BUCKET_SK, SLOT_LEASE_S, limit_pk, slot_sk
from assay_service.adapters.judges import OpenAIJudgeClient
from assay_service.domain.generation import ChatRequest
from assay_service.domain.ratelimit import Limits, estimate_tokens, request_capacity
from assay_service.errors import TransientScoringError
from moto.dynamodb.responses import DynamoHandler

from tests.functional.harness import environment
from tests.support.judge_server import model_server

EPS = 1e-6


@pytest.fixture(scope="module")
def table(stack) -> Iterator[Table]:
    lock = threading.RLock()
    original = DynamoHandler.call_action

    def atomic(self: Any) -> Any:
        with lock:
            return original(self)

    with pytest.MonkeyPatch.context() as patch, environment(stack.env("ListRunsFunction")):
        patch.setattr(DynamoHandler, "call_action", atomic)
        yield dependencies.table()


class GrantClock:
    """``time.time``, remembering per thread the last reading: right after ``acquire``
    returns, that is the moment the bucket granted the call (its last look at the clock)."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __call__(self) -> float:
        self.local.last = time.time()
        return self.local.last

    @property
    def last(self) -> float:
        return self.local.last


def new_key() -> str:
    return f"test:{uuid.uuid4().hex[:12]}"


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] < t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_threads(count: int, target) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


# ------------------------------------------------------------------ the rate
def test_threads_sharing_a_key_never_exceed_the_rate_in_any_window(table):
    clock = GrantClock()
    limiter = DynamoDBRateLimiter(table, clock=clock)
    limits = Limits(requests_per_minute=1200, tokens_per_minute=600_000)  # 20/s, 10k tokens/s
    key, grants, errors = new_key(), [], []
    lock = threading.Lock()
    stop = time.time() + 1.5

    def batch(_: int) -> None:
        try:
            while time.time() < stop:
                permit = limiter.acquire(key, limits, tokens=500, deadline=time.time() + 5)
                granted = permit.go_at  # the turn the bucket reserved
                with lock:
                    grants.append(granted)
                permit.settle(300)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_threads(8, batch)
    assert not errors, errors
    cap, rate = request_capacity(limits), 1200 / 60
    for window in (0.25, 0.5, 1.0, 1.5):
        assert max_in_window(grants, window) <= cap + rate * window + EPS, window
    # the rate is used, not starved by contention: a full second's burst plus ~1.5 s of refill
    assert len(grants) >= 0.7 * (cap + rate * 1.5)


def test_calls_in_flight_never_exceed_concurrent_and_slots_are_freed(table):
    limiter = DynamoDBRateLimiter(table)
    limits = Limits(concurrent=3)
    key = new_key()
    state = {"now": 0, "max": 0, "calls": 0}
    lock = threading.Lock()

    def batch(_: int) -> None:
        for _ in range(4):
            permit = limiter.acquire(key, limits, tokens=10, deadline=time.time() + 10)
            with lock:
                state["now"] += 1
                state["calls"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.02)
            with lock:
                state["now"] -= 1
            permit.settle(10)

    run_threads(8, batch)
    assert state["calls"] == 32
    assert state["max"] == 3  # reached, never passed
    assert [i for i in table.query_all(pk=limit_pk(key)) if i["SK"].startswith("SLOT#")] == []


def test_a_slot_whose_lease_ended_is_taken_over_and_its_old_holder_cannot_free_it(table):
    limiter = DynamoDBRateLimiter(table)
    limits = Limits(concurrent=1)
    key = new_key()
    crashed = limiter.acquire(key, limits, tokens=0, deadline=time.time() + 2)
    with pytest.raises(TransientScoringError, match=f"rate limit of {key}: all 1 call slots"):
        limiter.acquire(key, limits, tokens=0, deadline=time.time() + 0.3)
    # its Lambda died: nobody settles, the lease runs out
    table.update(
        limit_pk(key),
        crashed.slot,
        expression="SET held_until = :h",
        names={},
        values={":h": time.time() - 1},
    )
    started = time.time()
    taker = limiter.acquire(key, limits, tokens=0, deadline=time.time() + 2)
    assert time.time() - started < 0.5 and taker.slot == crashed.slot == slot_sk(0)
    crashed.settle(0)  # late: the slot is the taker's now, and stays so
    slot = table.get(limit_pk(key), slot_sk(0))
    assert slot is not None and slot["owner"] == taker.owner
    assert slot["held_until"] == pytest.approx(time.time() + SLOT_LEASE_S, abs=5)
    taker.settle(0)
    assert table.get(limit_pk(key), slot_sk(0)) is None


# ------------------------------------------------------------------ deadline and back-off
def test_a_call_that_cannot_go_before_its_deadline_raises_at_once_naming_the_key(table):
    limiter = DynamoDBRateLimiter(table)
    limits = Limits(requests_per_minute=60)  # one a second, a burst of one
    key = new_key()
    limiter.acquire(key, limits, tokens=0, deadline=time.time() + 1).settle(0)
    started = time.time()
    with pytest.raises(TransientScoringError, match=f"rate limit of {key}: no call allowed") as caught:
        limiter.acquire(key, limits, tokens=0, deadline=time.time() + 0.3)
    assert time.time() - started < 0.2  # no sleeping towards a deadline it cannot meet
    assert 0.5 < caught.value.retry_after <= 1.0
    # while one that can wait, waits its turn
    limiter.acquire(key, limits, tokens=0, deadline=time.time() + 3).settle(0)
    assert 0.7 < time.time() - started < 1.5


def test_back_off_holds_every_caller_of_the_key_and_a_shorter_one_does_not_shorten_it(table):
    clock = GrantClock()
    limiter = DynamoDBRateLimiter(table, clock=clock)
    limits = Limits(requests_per_minute=6000, concurrent=5)
    key = new_key()
    limiter.back_off(key, 0.6)  # a key never used yet: the block alone
    until = table.get(limit_pk(key), BUCKET_SK)["blocked_until"]
    limiter.back_off(key, 0.1)
    assert table.get(limit_pk(key), BUCKET_SK)["blocked_until"] == until
    grants: list[float] = []
    lock = threading.Lock()

    def batch(_: int) -> None:
        permit = limiter.acquire(key, limits, tokens=0, deadline=time.time() + 5)
        with lock:
            grants.append(time.time())
        permit.settle(0)

    run_threads(4, batch)
    assert len(grants) == 4 and min(grants) >= until
    assert max(grants) < until + 1.0  # and then a full bucket: all four at once


# ------------------------------------------------------------------ settling, and the bill
def test_settling_refunds_what_the_estimate_over_counted_and_charges_what_it_under_counted(table):
    now = [1_000_000.0]
    limiter = DynamoDBRateLimiter(table, clock=lambda: now[0], sleep=lambda s: None)
    limits = Limits(tokens_per_minute=60_000)  # 1000 tokens/s, capacity 1000
    key = new_key()
    limiter.acquire(key, limits, tokens=900, deadline=now[0] + 1).settle(100)
    assert table.get(limit_pk(key), BUCKET_SK)["tokens"] == pytest.approx(900)
    limiter.acquire(key, limits, tokens=900, deadline=now[0] + 1).settle(2400)
    assert table.get(limit_pk(key), BUCKET_SK)["tokens"] == pytest.approx(-1500)
    with pytest.raises(TransientScoringError, match="next in 1.6s"):  # the debt, then 100
        limiter.acquire(key, limits, tokens=100, deadline=now[0] + 1)
    now[0] += 1.6
    limiter.acquire(key, limits, tokens=100, deadline=now[0] + 1)


def test_an_uncontended_call_costs_five_requests_with_every_limit_and_fewer_without(table):
    calls: list[str] = []
    counting = Table(table.client, table.name)
    original = counting._call

    def counted(op: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(op)
        return original(op, **kwargs)

    counting._call = counted  # type: ignore[method-assign]
    limiter = DynamoDBRateLimiter(counting)
    every = Limits(requests_per_minute=600, tokens_per_minute=100_000, concurrent=2)
    permit = limiter.acquire(new_key(), every, tokens=300, deadline=time.time() + 2)
    assert calls == ["query", "update_item", "update_item"]
    permit.settle(120)
    permit.settle(120)  # twice: nothing more
    assert calls[3:] == ["delete_item", "update_item"]
    calls.clear()
    limiter.acquire(new_key(), Limits(requests_per_minute=600), tokens=300, deadline=time.time() + 2).settle(
        1
    )
    assert calls == ["get_item", "update_item"]  # no slot, no tokens to refund
    calls.clear()
    limiter.acquire(new_key(), Limits(), tokens=300, deadline=time.time() + 2).settle(1)
    assert calls == []


# ------------------------------------------------------------------ in front of a provider
def test_batches_calling_a_provider_through_the_limiter_stay_under_its_limits(table):
    """Six threads call the loopback provider (real HTTP, OpenAI's client) through the
    limiter set a little under the provider's limits: every call is answered, the provider
    refuses next to nothing, and a 429 it does send makes every caller back off."""
    limiter = DynamoDBRateLimiter(table)
    limits = Limits(requests_per_minute=1080, tokens_per_minute=540_000, concurrent=4)
    key, answers, failures = new_key(), [], []
    lock = threading.Lock()
    with model_server(rpm=1200, tpm=600_000, latency=0.01) as (url, provider):
        client = OpenAIJudgeClient(url, "sk-test", timeout=5)

        def batch(i: int) -> None:
            for j in range(6):
                request = ChatRequest("openai", "gpt-4o-mini", (("user", f"record {i}-{j}"),), max_tokens=200)
                estimate = estimate_tokens(request.prompt_chars, request.max_tokens)
                for _attempt in range(3):
                    permit = limiter.acquire(key, limits, tokens=estimate, deadline=time.time() + 10)
                    try:
                        reply = client.chat(request)
                    except TransientScoringError as exc:
                        permit.settle(estimate)
                        limiter.back_off(key, exc.retry_after or 0.1)
                        continue
                    permit.settle((reply.prompt_tokens or 0) + (reply.completion_tokens or 0))
                    with lock:
                        answers.append(reply.text)
                    break
                else:  # pragma: no cover - reported below
                    failures.append((i, j))

        run_threads(6, batch)
    assert not failures
    assert sorted(answers) == sorted(f"Answer: record {i}-{j}" for i in range(6) for j in range(6))
    assert provider.over_limit_served == 0 and provider.rate_limited <= 2
    assert provider.max_in_flight <= 4


# ------------------------------------------------------------------ the response cache
def test_the_response_cache_is_per_tenant_batched_and_expires(table):
    from assay_service.adapters.dynamodb import DynamoDBResponseCache
    from assay_service.adapters.dynamodb.keys import response_pk

    cache = DynamoDBResponseCache(table)
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    answers = {f"k{i}": {"text": f"answer {i}", "prompt_tokens": i} for i in range(30)}  # > 25: two writes
    cache.put_many(mine, answers)
    assert cache.get_many(mine, [*answers, "missing"]) == answers
    assert cache.get(mine, "k7") == answers["k7"]
    assert cache.get_many(theirs, list(answers)) == {} and cache.get(theirs, "k7") is None
    # an answer past its expiry is a miss, though DynamoDB may not have deleted it yet
    table.update(
        response_pk(mine, "k7"), "RESP", expression="SET #t = :t", names={"#t": "ttl"}, values={":t": 1}
    )
    assert cache.get(mine, "k7") is None and "k7" not in cache.get_many(mine, ["k7", "k8"])
    # an answer too large for an item is not kept
    cache.put_many(mine, {"big": {"text": "x" * 400_000}})
    assert cache.get(mine, "big") is None
