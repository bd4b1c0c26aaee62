"""The loopback provider (``tests/support/judge_server.py``'s ``ModelServer``) is test
support, but the tests of the rate limiter lean on it: its limiter must refuse what a
provider would, answer 429s the way OpenAI does, and never serve beyond its limit — which
its own recount (``over_limit_served``) must catch if it ever did. Driven through
``handle`` with a fake clock: no socket (the HTTP front is the judge server's, exercised
by tests/functional/test_judge_clients.py, and ``model_server`` over HTTP by
tests/functional/test_ratelimit_dynamodb.py)."""

from __future__ import annotations

import json
import random

import pytest
from assay_service.domain.ratelimit import estimate_tokens
from assay_service.domain.scorers.judges import parse_reply

from tests.support.judge_server import (
    DEFAULT_MAX_TOKENS,
    GOOD,
    ModelServer,
    completion,
    generated_text,
    judge_verdict,
)


class Clock:
    def __init__(self) -> None:
        self.now = 500.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def server(clock: Clock, **options) -> ModelServer:
    return ModelServer(clock=clock.time, sleep=clock.sleep, **options)


def chat(prompt: str = "What is the capital of France?", max_tokens: int = 64, **extra) -> dict:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        **extra,
    }


def send(model: ModelServer, body: dict) -> tuple[int, dict[str, str], dict | str]:
    status, headers, data = model.handle("/v1/chat/completions", "Bearer sk-test", body)
    try:
        return status, headers, json.loads(data)
    except ValueError:
        return status, headers, data.decode()


# ------------------------------------------------------------------ answers
def test_a_generation_request_is_answered_from_its_last_user_message_with_usage():
    model = server(Clock())
    body = chat("Name a prime number.", max_tokens=64)
    status, _, reply = send(model, body)
    assert status == 200
    assert reply["choices"][0]["message"]["content"] == "Answer: Name a prime number."
    assert generated_text("Name a prime number.", 64) == ("Answer: Name a prime number.", "stop")
    chars = len("Be brief.") + len("Name a prime number.")
    assert reply["usage"] == {
        "prompt_tokens": -(-chars // 4),
        "completion_tokens": -(-len("Answer: Name a prime number.") // 4),
        "total_tokens": -(-chars // 4) + -(-len("Answer: Name a prime number.") // 4),
    }
    # the client's estimate counts the prompt the same way: settling leaves only the answer's share
    assert (
        estimate_tokens(chars, 64) - reply["usage"]["total_tokens"]
        == 64 - reply["usage"]["completion_tokens"]
    )
    assert model.requests[0]["auth"] == "Bearer sk-test"


def test_a_long_answer_is_cut_at_max_tokens_and_json_modes_get_an_object():
    model = server(Clock())
    _, _, reply = send(model, chat("x" * 400, max_tokens=10))
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 10
    _, _, reply = send(model, chat("hi", response_format={"type": "json_object"}))
    assert json.loads(reply["choices"][0]["message"]["content"]) == {"answer": "Answer: hi"}


def test_a_judge_request_gets_a_valid_verdict_for_the_scale_or_labels_it_asks():
    system = 'Reply with only one JSON object: {"score": <number>, "label": <string>}.'
    unit = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": "Q"}]}
    rubric = {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": "then give `score` as a number from 1 to 5 (higher is better)"},
        ]
    }
    labels = {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": 'give `label` as exactly one of ["good", "bad"]; `score` is 1 if'},
        ]
    }
    model = server(Clock())
    for body, score, label in ((unit, 1.0, "pass"), (rubric, 5.0, "pass"), (labels, 1.0, "good")):
        status, _, reply = send(model, body)
        verdict = parse_reply(reply["choices"][0]["message"]["content"])
        assert status == 200 and verdict == judge_verdict(body)
        assert (verdict["score"], verdict["label"]) == (score, label)
        assert reply["usage"]["completion_tokens"] > 0


def test_scripted_replies_come_first_a_malformed_one_included():
    model = server(Clock(), rpm=600)
    model.replies += [(200, completion("this is {not json")), (500, {"error": {"message": "boom"}})]
    status, _, reply = send(model, chat())
    assert status == 200 and reply["choices"][0]["message"]["content"] == "this is {not json"
    assert send(model, chat())[0] == 500
    assert send(model, chat())[0] == 200  # then the default again
    assert (model.received, model.served, model.rate_limited) == (3, 3, 0)


def test_latency_is_spent_on_every_served_request_not_on_a_refusal():
    clock = Clock()
    model = server(clock, rpm=60, latency=0.25)
    assert send(model, chat())[0] == 200
    assert send(model, chat())[0] == 429
    assert clock.slept == [0.25]


# ------------------------------------------------------------------ limits
def test_requests_beyond_the_bucket_get_429_with_retry_after_and_openais_error_body():
    clock = Clock()
    model = server(clock, rpm=120)  # 2 a second, a burst of 2
    assert [send(model, chat())[0] for _ in range(3)] == [200, 200, 429]
    status, headers, reply = send(model, chat())
    assert status == 429
    assert headers == {"Retry-After": "1", "retry-after-ms": "500"}
    error = reply["error"]
    assert error["type"] == "rate_limit_exceeded" and error["code"] == "rate_limit_exceeded"
    assert (
        "requests per min (RPM): Limit 120" in error["message"] and "try again in 0.500s" in error["message"]
    )
    clock.now += 0.5
    assert send(model, chat())[0] == 200
    assert (model.received, model.served, model.rate_limited, model.over_limit_served) == (5, 3, 2, 0)


def test_tokens_are_counted_at_arrival_from_the_prompt_and_max_tokens_and_unused_ones_given_back():
    clock = Clock()
    model = server(clock, tpm=60_000)  # 1000 tokens a second
    body = chat("y" * 391, max_tokens=900)  # (9 + 391) / 4 + 900 = 1000: the whole second
    assert send(model, body)[0] == 200  # answered in ~100 tokens: ~800 given back
    assert send(model, body)[0] == 429  # 1000 wanted, ~800 there
    clock.now += 0.25
    assert send(model, body)[0] == 200
    status, _, reply = send(model, chat("z", max_tokens=70_000))
    assert status == 429 and "Request too large" in reply["error"]["message"]
    assert model.over_limit_served == 0


def test_hammered_for_five_minutes_it_serves_the_limit_and_never_beyond():
    clock = Clock()
    model = server(clock, rpm=600, tpm=120_000)
    rng = random.Random(3)
    for _ in range(12_000):
        clock.now += rng.expovariate(40.0)  # 4× more than the limit allows
        send(model, chat("q" * rng.choice([40, 400, 4000]), max_tokens=rng.choice([16, 256, 1024])))
    assert model.over_limit_served == 0
    assert model.rate_limited > 0
    assert model.max_requests_in_window(60) <= 600 + 10
    assert model.max_requests_in_window(1) <= 10 + 10
    # the tokens bind before the requests do, and the limit is used, not wasted
    minutes = (clock.now - 500.0) / 60
    assert sum(tokens for _, tokens in model.token_events) >= 0.9 * 120_000 * minutes


def test_the_recount_catches_a_server_that_serves_beyond_its_limit(monkeypatch):
    """The guard of the guard: with the bucket broken to let everything through, the
    independent recount flags what was served beyond the limit."""
    clock = Clock()
    model = server(clock, rpm=120)
    monkeypatch.setattr(model.request_bucket, "wait", lambda amount, now: 0.0)
    for _ in range(50):
        clock.now += 0.05  # 20 a second against 2 a second
        assert send(model, chat())[0] == 200
    assert model.over_limit_served > 0
    assert model.max_requests_in_window(1) > 2 + 2


def test_without_limits_it_serves_everything_and_counts_it():
    model = server(Clock())
    for _ in range(100):
        assert send(model, chat(max_tokens=DEFAULT_MAX_TOKENS))[0] == 200
    assert (model.received, model.served, model.rate_limited, model.over_limit_served) == (100, 100, 0, 0)
    assert model.max_requests_in_window(60) == 100
    assert GOOD["score"] == 0.9  # the scripted judge's verdict is still exported


@pytest.mark.parametrize("rpm", [1, 30, 60, 7000])
def test_the_burst_is_one_seconds_worth_and_at_least_one(rpm):
    model = server(Clock(), rpm=rpm)
    served = sum(send(model, chat())[0] == 200 for _ in range(200))
    assert served == max(1, rpm // 60)
