"""``cosine_similarity`` — OpenAI's ``text_similarity`` grader with ``evaluation_metric:
"cosine"`` — and the embeddings call under it: GIVEN texts rendered from OpenAI templates,
WHEN the judge runtime's ``ModelCalls`` asks the provider's embeddings model, THEN the
score is the vectors' cosine, the call took a permit of the model's bucket, was retried
when throttled and metered as a ``judge`` call of that model; an OpenAI eval's cosine
grader maps onto it."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

import pytest
from assay_service.domain.generation import UsageMeter
from assay_service.domain.pricing import price_table
from assay_service.domain.ratelimit import Limits
from assay_service.domain.scorers import get_scorer, validate_args
from assay_service.domain.scorers.judges import JudgeRuntime, judge_runtime
from assay_service.domain.scorers.openai_graders import (
    DEFAULT_EMBEDDING_MODELS,
    cosine,
    embedding_model_for,
)
from assay_service.domain.scoring import judge_first_calls, score_batch
from assay_service.errors import InvalidRecordError, TransientScoringError
from assay_service.models.api import CreateDatasetRequest, CreateEvalRequest
from assay_service.models.domain import JudgeSettings, Metric, Record
from assay_service.services import catalog, openai_evals, runs
from assay_service.services.model_calls import ModelCalls
from assay_service.services.runs import batch_size_for
from pydantic import ValidationError

from tests.support import fakes
from tests.support.judge_server import hashed_embedding
from tests.unit.test_generation import evaluations, run_to_the_end
from tests.unit.test_service_runs import principal

ports_fixture = fakes.ports_fixture
OPENAI = JudgeSettings(provider="openai", model="gpt-4o-mini")
BEDROCK = JudgeSettings(provider="bedrock")
ARGS = {"input": "{{sample.output_text}}", "reference": "{{item.answer}}"}


def record(output: str, answer: str) -> dict[str, Any]:
    return {"id": "r", "output": output, "metadata": {"item": {"answer": answer}}}


def calls(
    client: fakes.FakeJudgeClient,
    *,
    limiter: Any = None,
    limits: Limits | None = None,
    prices: dict | None = None,
    sleep: Any = None,
    embedding_default: str | None = "amazon.titan-embed-text-v2:0",  # the template's default
) -> ModelCalls:
    return ModelCalls(
        tenant_id=uuid.uuid4(),
        clients=lambda provider: client,
        limiter=limiter,
        cache=None,
        limits=lambda provider, model: limits or Limits(),
        meter=UsageMeter(prices=prices),
        deadline=time.time() + 60,
        sleep=sleep or (lambda seconds: None),
        embedding_default=embedding_default,
    )


def score(row: dict, runtime: JudgeRuntime, **args: Any):
    spec = get_scorer("cosine_similarity")
    with judge_runtime(runtime):
        return spec(row, validate_args(spec, {**ARGS, **args}))


# ---------------------------------------------------------------- the scorer
def test_the_score_is_the_cosine_of_the_two_texts_embeddings():
    fake = fakes.FakeJudgeClient()
    vectors = {"Paris": [1.0, 0.0, 0.0], "The capital is Paris": [0.6, 0.8, 0.0]}
    fake.embedding = lambda text: vectors[text]
    mc = calls(fake)
    result = score(record("Paris", "The capital is Paris"), JudgeRuntime(mc, OPENAI, prices=price_table()))
    assert result.score == pytest.approx(0.6) and result.label == "partial"
    assert result.metadata is not None
    assert result.metadata["cosine"] == pytest.approx(0.6) and result.metadata["dimensions"] == 3
    assert (result.metadata["model"], result.metadata["provider"]) == ("text-embedding-3-small", "openai")
    tokens = math.ceil(len("Paris") / 4) + math.ceil(len("The capital is Paris") / 4)
    assert (result.metadata["input_tokens"], result.metadata["output_tokens"]) == (tokens, 0)
    assert result.cost == pytest.approx(tokens * 0.02 / 1e6)  # $0.02 per 1M input tokens
    assert "cosine 0.6000" in result.reasoning
    # one call, both texts, the templates rendered
    assert fake.embeddings == [("text-embedding-3-small", ["Paris", "The capital is Paris"])]


def test_identical_texts_score_one_and_a_negative_cosine_is_clamped_to_zero():
    fake = fakes.FakeJudgeClient()
    mc = calls(fake)
    same = score(
        record("The Eiffel Tower is in Paris.", "The Eiffel Tower is in Paris."), JudgeRuntime(mc, OPENAI)
    )
    assert (same.score, same.label) == (1.0, "match")
    fake.embedding = lambda text: [1.0, 0.0] if text == "up" else [-1.0, 0.0]
    opposite = score(record("up", "down"), JudgeRuntime(mc, OPENAI))
    assert (opposite.score, opposite.label) == (0.0, "no_match")
    assert opposite.metadata is not None and opposite.metadata["cosine"] == pytest.approx(-1.0)


def test_templates_read_the_item_the_sample_and_json_values():
    fake = fakes.FakeJudgeClient()
    row = {
        "id": "r",
        "output": '{"city": "Rome"}',
        "metadata": {"item": {"meta": {"n": 3}, "turns": ["a", "b"]}, "sample": {"note": "x"}},
    }
    score(
        row,
        JudgeRuntime(calls(fake), OPENAI),
        input="{{sample.output_json.city}} / {{sample.note}}",
        reference="{{item.meta}} {{item.turns.1}}",
    )
    assert fake.embeddings[-1][1] == ["Rome / x", '{"n":3} b']


@pytest.mark.parametrize(("output", "answer", "arg"), [("", "Paris", "input"), ("Paris", "  ", "reference")])
def test_a_text_rendered_empty_errors_the_evaluation_without_a_call(output, answer, arg):
    fake = fakes.FakeJudgeClient()
    with pytest.raises(InvalidRecordError, match=f"{arg}: the template rendered an empty text"):
        score(record(output, answer), JudgeRuntime(calls(fake), OPENAI))
    assert fake.embeddings == []


def test_a_missing_placeholder_errors_the_evaluation_naming_it():
    fake = fakes.FakeJudgeClient()
    with pytest.raises(InvalidRecordError, match=r"reference: .*item\.answer"):
        score({"id": "r", "output": "x", "metadata": {"item": {}}}, JudgeRuntime(calls(fake), OPENAI))


def test_the_metrics_model_overrides_the_deployments():
    fake = fakes.FakeJudgeClient()
    result = score(record("a", "b"), JudgeRuntime(calls(fake), OPENAI), model="text-embedding-3-large")
    assert fake.embeddings[-1][0] == "text-embedding-3-large"
    assert result.metadata is not None and result.metadata["model"] == "text-embedding-3-large"
    assert result.cost is None  # a model without a price: its cost is unknown, not free


@pytest.mark.parametrize(
    ("provider", "configured", "expected"),
    [
        ("openai", "", "text-embedding-3-small"),
        ("bedrock", "", "amazon.titan-embed-text-v2:0"),
        # the template's default names Bedrock's model: OpenAI-compatible calls keep theirs
        ("openai", "amazon.titan-embed-text-v2:0", "text-embedding-3-small"),
        ("bedrock", "amazon.titan-embed-text-v1", "amazon.titan-embed-text-v1"),
        ("openai", "nomic-embed-text", "nomic-embed-text"),
        ("bedrock", "nomic-embed-text", "amazon.titan-embed-text-v2:0"),
    ],
)
def test_the_deployments_embeddings_model_per_provider(provider, configured, expected):
    assert embedding_model_for(provider, configured) == expected
    fake = fakes.FakeJudgeClient()
    settings = JudgeSettings(provider=provider)  # type: ignore[arg-type]
    score(record("a", "b"), JudgeRuntime(calls(fake, embedding_default=configured), settings))
    assert fake.embeddings[-1][0] == expected
    assert set(DEFAULT_EMBEDDING_MODELS) == {"openai", "bedrock"}


def test_the_deployment_setting_is_read_when_modelcalls_is_not_told(monkeypatch):
    fakes.Ports.install(monkeypatch, embedding_model="my-embedder")
    try:
        assert (
            calls(fakes.FakeJudgeClient(), embedding_default=None).embedding_model("openai") == "my-embedder"
        )
    finally:
        from assay_service.settings import get_settings

        get_settings.cache_clear()


def test_args_are_checked_when_the_version_is_created():
    spec = get_scorer("cosine_similarity")
    assert spec.evaluator_type == "llm" and spec.requires == ()
    for bad in (
        {**ARGS, "field": "output"},
        {**ARGS, "input": "{{ground_truth}}"},
        {"input": "x"},
        {**ARGS, "model": " "},
    ):
        with pytest.raises(ValidationError):
            validate_args(spec, bad)


def test_cosine_refuses_vectors_it_cannot_compare():
    assert cosine([1, 2], [2, 4]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in length"):
        cosine([1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="all zeros"):
        cosine([0.0, 0.0], [1.0, 0.0])


def test_the_fakes_embedding_is_deterministic_and_normalized():
    a = hashed_embedding("The cat sat")
    assert a == hashed_embedding("the CAT sat") and len(a) == 64
    assert math.fsum(x * x for x in a) == pytest.approx(1.0)
    assert hashed_embedding("") == [0.0] * 64


# ---------------------------------------------------------------- ModelCalls.embed
def test_embed_takes_a_permit_of_the_models_bucket_and_meters_a_judge_call():
    fake = fakes.FakeJudgeClient()
    limiter = fakes.FakeRateLimiter()
    mc = calls(fake, limiter=limiter, limits=Limits(requests_per_minute=600), prices=price_table())
    vectors, tokens = mc.embed("openai", "text-embedding-3-small", ["abcdefgh", "abc"])
    assert len(vectors) == 2 and tokens == 2 + 1
    [(key, estimate, _)] = limiter.acquisitions
    assert (key, estimate) == ("openai:text-embedding-3-small", math.ceil(11 / 4))
    assert limiter.settlements == [("openai:text-embedding-3-small", 3, 3)]
    [row] = mc.meter.rows()
    assert {
        k: row[k] for k in ("role", "provider", "model", "invocations", "prompt_tokens", "completion_tokens")
    } == {
        "role": "judge",
        "provider": "openai",
        "model": "text-embedding-3-small",
        "invocations": 1,
        "prompt_tokens": 3,
        "completion_tokens": 0,
    }
    assert row["cost"] == pytest.approx(3 * 0.02 / 1e6)


class Throttled(fakes.FakeJudgeClient):
    """Refuses the first ``n`` embeddings calls with a 429 carrying Retry-After."""

    def __init__(self, n: int = 1) -> None:
        super().__init__()
        self.refusals = n

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int | None]:
        if self.refusals:
            self.refusals -= 1
            raise TransientScoringError("model endpoint HTTP 429: slow down", retry_after=0.25)
        return super().embed(model, texts)


def test_a_429_is_retried_after_the_providers_retry_after_backing_the_bucket_off():
    client = Throttled()
    limiter = fakes.FakeRateLimiter()
    slept: list[float] = []
    mc = calls(client, limiter=limiter, limits=Limits(requests_per_minute=600), sleep=slept.append)
    vectors, _ = mc.embed("openai", "text-embedding-3-small", ["a", "b"])
    assert len(vectors) == 2 and len(client.embeddings) == 1
    assert len(slept) == 1 and 0.25 <= slept[0] <= 0.25 * 1.2
    assert limiter.back_offs == [("openai:text-embedding-3-small", 0.25)]
    assert len(limiter.acquisitions) == 2 and len(limiter.settlements) == 2  # each attempt settled
    assert mc.meter.rows()[0]["invocations"] == 1  # the answered call only


def test_a_call_still_throttled_after_the_attempts_raises_transient(monkeypatch):
    monkeypatch.setattr("assay_service.services.model_calls.ATTEMPTS", 2)
    client = Throttled(n=5)
    with pytest.raises(TransientScoringError, match="429"):
        calls(client).embed("openai", "m", ["a"])
    assert client.refusals == 3


# ---------------------------------------------------------------- in a batch and a run
def test_in_a_batch_it_is_an_llm_evaluation_and_the_judges_prefetch_makes_no_call():
    fake = fakes.FakeJudgeClient()
    metric = Metric(name="cos", scorer="cosine_similarity", args=ARGS, threshold=0.9)
    rows = [
        (i, Record(id=f"r{i}", trace_id=uuid.uuid4(), output=output, metadata={"item": {"answer": answer}}))
        for i, (output, answer) in enumerate(
            [("Paris is big", "Paris is big"), ("Lyon", "a totally different text"), ("", "x")]
        )
    ]
    assert judge_first_calls([metric], rows, OPENAI) == []
    outcome = score_batch(
        run_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        metrics=[metric],
        records=rows,
        judge=JudgeRuntime(calls(fake), OPENAI),
    )
    a, b, c = outcome.evaluations
    assert (a.evaluator_type, a.status, a.score, a.is_passed) == ("llm", "complete", 1.0, True)
    assert b.status == "complete" and b.score is not None and b.score < 0.9 and not b.is_passed
    assert c.status == "failed" and "empty text" in (c.error_message or "")
    assert batch_size_for([metric], None, 100) == 10  # a model call per record, like a judge


def test_a_run_scores_cosine_and_shows_the_embeddings_model_in_its_usage(ports: fakes.Ports, monkeypatch):
    monkeypatch.setattr(ports, "judge_prices", price_table)
    who = principal()
    records = [
        {"id": f"r{i}", "output": text, "metadata": {"item": {"answer": "The sky is blue today"}}}
        for i, text in enumerate(["The sky is blue today", "Bananas grow on trees", "the sky is BLUE today"])
    ]
    dataset, _ = catalog.create_dataset(
        who, CreateDatasetRequest.model_validate({"name": "d", "records": records}), ports=ports
    )
    _, version = catalog.create_eval(
        who,
        CreateEvalRequest.model_validate(
            {
                "name": "cos",
                "judge": {"provider": "openai"},
                "metrics": [{"name": "cos", "scorer": "cosine_similarity", "args": ARGS, "threshold": 0.95}],
            }
        ),
        ports=ports,
    )
    assert version is not None
    done = run_to_the_end(ports, who, dataset.id, version.id)
    page = evaluations(ports, who, done.id)
    assert [(ev.score, ev.is_passed) for ev, _ in page][0::2] == [(1.0, True), (1.0, True)]
    assert page[1][0].is_passed is False
    [usage] = done.per_model_usage or []
    assert (usage.role, usage.provider, usage.model, usage.invocations, usage.completion_tokens) == (
        "judge",
        "openai",
        "text-embedding-3-small",
        3,
        0,
    )
    assert usage.prompt_tokens > 0 and usage.cost == pytest.approx(usage.prompt_tokens * 0.02 / 1e6)
    assert runs.get_run(who, done.id, ports=ports).total_cost == pytest.approx(usage.cost)


# ---------------------------------------------------------------- the OpenAI mapping
COSINE = {
    "type": "text_similarity",
    "name": "Similar",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "evaluation_metric": "cosine",
    "pass_threshold": 0.8,
}


def test_an_openai_cosine_grader_maps_onto_cosine_similarity_with_its_threshold():
    metric = openai_evals._criterion_metric(0, COSINE, set())
    assert metric == {
        "name": "Similar",
        "scorer": "cosine_similarity",
        "args": {"input": "{{sample.output_text}}", "reference": "{{item.answer}}"},
        "threshold": 0.8,
    }


@pytest.mark.parametrize(
    ("offered", "provider"), [("bedrock,openai", "openai"), ("openai", "openai"), ("bedrock", "bedrock")]
)
def test_a_cosine_only_eval_judges_with_the_deployments_default_provider(monkeypatch, offered, provider):
    from assay_service.settings import get_settings

    fakes.Ports.install(monkeypatch, judge_providers=offered)
    try:
        judge = openai_evals._judge([openai_evals._criterion_metric(0, COSINE, set())])
        assert judge is not None and judge.provider == provider
        # a model grader's model still decides when there is one
        grader = {
            "name": "q",
            "scorer": "score_model",
            "args": {"model": "anthropic.claude-3-5-haiku-20241022-v1:0"},
        }
        mixed = openai_evals._judge([openai_evals._criterion_metric(0, COSINE, set()), grader])
        assert mixed is not None and mixed.provider == "bedrock"
    finally:
        get_settings.cache_clear()
