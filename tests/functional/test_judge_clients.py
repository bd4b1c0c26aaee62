"""LLM judges: GIVEN a judge endpoint that answers as scripted (a real HTTP server on
loopback for the OpenAI-compatible client, botocore's Stubber for Bedrock), WHEN a batch is
scored, THEN the evaluation carries the judge's score/label/reasoning/confidence, its token
usage and cost — or fails with the reply's excerpt, or raises TransientScoringError for the
state machine to retry."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
from assay_service.adapters.judges import (
    BedrockJudgeClient,
    ModelRequestError,
    OpenAIJudgeClient,
    openai_credentials,
)
from assay_service.domain.pricing import PRICES_AS_OF, Price, cost_usd, parse_overrides
from assay_service.domain.scorers import get_scorer, validate_args
from assay_service.domain.scorers.judges import JudgeReply, JudgeRuntime, parse_reply
from assay_service.domain.scoring import check_metrics, score_batch
from assay_service.errors import InvalidRequestError, TransientScoringError
from assay_service.models.domain import JudgeSettings, Metric, Record
from botocore.stub import ANY, Stubber

from tests.support.judge_server import GOOD, Script, completion, judge_server

OPENAI = JudgeSettings(provider="openai", model="gpt-4o-mini", max_tokens=256)
BEDROCK = JudgeSettings()  # the default: Claude 3.5 Haiku on Bedrock


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    with judge_server() as served:
        yield served


RECORD = Record(
    id="r1",
    trace_id=uuid.uuid4(),
    prompt="Capital of France?",
    context="Paris is the capital of France.",
    output="Paris",
    golden_answer="Paris",
)


def score_one(
    runtime: JudgeRuntime,
    scorer: str = "answer_correctness",
    args: dict | None = None,
    threshold: float = 0.5,
):
    metric = Metric(name="ans_corr", scorer=scorer, args=args or {}, threshold=threshold)
    outcome = score_batch(
        run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=[metric], records=[(0, RECORD)], judge=runtime
    )
    return outcome.evaluations[0]


def openai_runtime(base_url: str, *, timeout: float = 5.0) -> JudgeRuntime:
    return JudgeRuntime(OpenAIJudgeClient(base_url, "sk-test", timeout=timeout), OPENAI)


# ------------------------------------------------------------------ OpenAI-compatible
def test_good_json_gives_score_label_reasoning_confidence_usage_and_cost(server):
    url, script = server
    script.replies.append((200, completion(json.dumps(GOOD))))
    ev = score_one(openai_runtime(url))
    assert ev.status == "complete" and ev.evaluator_type == "llm"
    assert (ev.score, ev.label, ev.reasoning, ev.confidence) == (
        0.9,
        "correct",
        "Same fact as the reference.",
        0.8,
    )
    assert ev.is_passed
    assert ev.eval_metadata["input_tokens"] == 120 and ev.eval_metadata["output_tokens"] == 30
    assert ev.eval_metadata["model"] == "gpt-4o-mini"
    # gpt-4o-mini: $0.15 / $0.60 per 1M tokens
    assert ev.evaluation_cost == pytest.approx((120 * 0.15 + 30 * 0.60) / 1e6)
    request = script.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 256
    assert body["temperature"] == 0.0 and body["messages"][0]["role"] == "system"
    assert "<reference>\nParis\n</reference>" in body["messages"][1]["content"]


def test_malformed_then_good_is_retried_once_and_succeeds(server):
    url, script = server
    script.replies += [
        (200, completion("I think it is correct!", 100, 10)),
        (200, completion("```json\n" + json.dumps(GOOD) + "\n```", 110, 20)),
    ]
    ev = score_one(openai_runtime(url))
    assert ev.status == "complete" and ev.score == 0.9
    assert len(script.requests) == 2
    assert "not a single valid JSON object" in script.requests[1]["body"]["messages"][1]["content"]
    assert ev.eval_metadata["attempts"] == 2
    assert (ev.eval_metadata["input_tokens"], ev.eval_metadata["output_tokens"]) == (210, 30)


def test_malformed_twice_fails_the_evaluation_with_a_reply_excerpt(server):
    url, script = server
    script.replies += [
        (200, completion("not json at all")),
        (200, completion('{"score": "high", "label": "ok"} and more words')),
    ]
    ev = score_one(openai_runtime(url))
    assert ev.status == "failed" and ev.score is None and not ev.is_passed
    assert "unparseable" in ev.error_message and "and more words" in ev.error_message
    assert ev.evaluation_cost is not None and ev.eval_metadata["input_tokens"] == 240
    assert len(script.requests) == 2


def test_score_out_of_range_counts_as_unparseable(server):
    url, script = server
    script.replies += [(200, completion(json.dumps({**GOOD, "score": 7})))] * 2
    ev = score_one(openai_runtime(url))
    assert ev.status == "failed" and "from 0 to 1" in ev.error_message


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_5xx_are_transient(server, status):
    url, script = server
    script.replies.append((status, {"error": {"message": "slow down"}}))
    with pytest.raises(TransientScoringError, match=str(status)):
        score_one(openai_runtime(url))


def test_other_4xx_fails_the_evaluation_not_the_batch(server):
    url, script = server
    script.replies.append((404, {"error": {"message": "model gpt-9 does not exist"}}))
    ev = score_one(openai_runtime(url))
    assert ev.status == "failed"
    assert "ModelRequestError" in ev.error_message and "does not exist" in ev.error_message


def test_slow_reply_beyond_the_timeout_is_transient(server):
    url, script = server
    script.replies.append(("slow", 1.5))
    started = time.monotonic()
    with pytest.raises(TransientScoringError, match="timed out"):
        score_one(openai_runtime(url, timeout=0.3))
    assert time.monotonic() - started < 1.4


def test_unreachable_endpoint_is_transient():
    client = OpenAIJudgeClient("http://127.0.0.1:9/v1", timeout=1)  # discard port: refused
    with pytest.raises(TransientScoringError):
        client.complete("s", "u", OPENAI)


def test_openai_credentials_from_a_bare_key_or_json():
    assert openai_credentials("sk-1", "http://h/v1") == ("http://h/v1", "sk-1")
    assert openai_credentials('{"base_url": "http://x/v1", "api_key": "k"}', None) == ("http://x/v1", "k")
    assert openai_credentials(None, "http://ollama:11434/v1") == ("http://ollama:11434/v1", None)
    with pytest.raises(RuntimeError, match="JUDGE_OPENAI_BASE_URL"):
        openai_credentials("sk-1", None)


# ------------------------------------------------------------------ Bedrock
@pytest.fixture
def bedrock():
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        yield client, stub


def converse_response(text: str, tokens_in: int = 400, tokens_out: int = 60) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": tokens_in,
            "outputTokens": tokens_out,
            "totalTokens": tokens_in + tokens_out,
        },
        "metrics": {"latencyMs": 321},
    }


def test_bedrock_converse_scores_with_usage_and_cost(bedrock):
    client, stub = bedrock
    reply = {"score": 1, "label": "faithful", "reasoning": "Stated in the context.", "confidence": 0.95}
    stub.add_response(
        "converse",
        converse_response(json.dumps(reply)),
        {
            "modelId": BEDROCK.model,
            "system": [{"text": ANY}],
            "messages": [{"role": "user", "content": [{"text": ANY}]}],
            "inferenceConfig": {"maxTokens": 512, "temperature": 0.0},
        },
    )
    ev = score_one(JudgeRuntime(BedrockJudgeClient(client), BEDROCK), "faithfulness")
    stub.assert_no_pending_responses()
    assert (ev.status, ev.score, ev.label, ev.confidence) == ("complete", 1.0, "faithful", 0.95)
    assert ev.eval_metadata["model"] == BEDROCK.model
    assert (ev.eval_metadata["input_tokens"], ev.eval_metadata["output_tokens"]) == (400, 60)
    # Claude 3.5 Haiku on Bedrock: $0.80 / $4.00 per 1M tokens
    assert ev.evaluation_cost == pytest.approx((400 * 0.80 + 60 * 4.00) / 1e6)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 429),
        ("ServiceUnavailableException", 503),
        ("ModelNotReadyException", 429),
        ("InternalServerException", 500),
    ],
)
def test_bedrock_throttling_and_unavailability_are_transient(bedrock, code, status):
    client, stub = bedrock
    stub.add_client_error(
        "converse", service_error_code=code, service_message="Too many", http_status_code=status
    )
    with pytest.raises(TransientScoringError, match=code):
        score_one(JudgeRuntime(BedrockJudgeClient(client), BEDROCK))


def test_bedrock_validation_error_fails_the_evaluation(bedrock):
    client, stub = bedrock
    stub.add_client_error(
        "converse",
        service_error_code="ValidationException",
        service_message="The provided model identifier is invalid.",
        http_status_code=400,
    )
    ev = score_one(JudgeRuntime(BedrockJudgeClient(client), BEDROCK))
    assert ev.status == "failed" and "model identifier is invalid" in ev.error_message


# ------------------------------------------------------------------ each judge, rubric
class Fake:
    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.prompts: list[str] = []

    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        self.prompts.append(user)
        return JudgeReply(self.texts.pop(0), 10, 5)


@pytest.mark.parametrize(
    ("scorer", "label"),
    [
        ("answer_correctness", "correct"),
        ("faithfulness", "faithful"),
        ("answer_relevance", "relevant"),
        ("harmfulness", "harmless"),
    ],
)
def test_each_builtin_judge_scores(scorer, label):
    fake = Fake(json.dumps({"score": 1, "label": label, "reasoning": "fine", "confidence": 1}))
    ev = score_one(JudgeRuntime(fake, OPENAI), scorer)
    assert (ev.status, ev.score, ev.label) == ("complete", 1.0, label)


def test_rubric_scale_normalises_and_passes_on_its_own_mark():
    fake = Fake(json.dumps({"score": 4, "label": "whatever", "reasoning": "clear", "confidence": 0.7}))
    args = {"criteria": "Is it concise?", "scale": {"min": 1, "max": 5, "pass": 4}}
    ev = score_one(JudgeRuntime(fake, OPENAI), "rubric", args, threshold=0.9)
    assert ev.score == 0.75 and ev.label == "pass" and ev.is_passed  # pass mark, not 0.9
    assert "<criteria>\nIs it concise?\n</criteria>" in fake.prompts[0]


def test_rubric_labels_pass_only_on_passing_labels():
    args = {
        "criteria": "Tone",
        "labels": ["polite", "neutral", "rude"],
        "passing_labels": ["polite", "neutral"],
    }
    ev = score_one(JudgeRuntime(Fake(json.dumps({"label": "Rude", "score": 0})), OPENAI), "rubric", args)
    assert (ev.score, ev.label, ev.is_passed) == (0.0, "rude", False)
    ev = score_one(JudgeRuntime(Fake('{"label": "meh"}', '{"label": "neutral"}'), OPENAI), "rubric", args)
    assert (ev.score, ev.label, ev.is_passed) == (1.0, "neutral", True)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({}, "criteria"),
        ({"criteria": "x"}, "scale"),
        ({"criteria": "x", "scale": {"min": 1, "max": 5}}, "scale.pass"),
        ({"criteria": "x", "scale": {"min": 5, "max": 1, "pass": 3}}, "scale.min"),
        ({"criteria": "x", "scale": {"min": 1, "max": 5, "pass": 9}}, "scale.pass"),
        ({"criteria": "x", "labels": ["a", "b"]}, "passing_labels"),
        ({"criteria": "x", "labels": ["a", "b"], "passing_labels": ["c"]}, "passing_labels"),
        (
            {
                "criteria": "x",
                "scale": {"min": 1, "max": 5, "pass": 3},
                "labels": ["a", "b"],
                "passing_labels": ["a"],
            },
            "labels",
        ),
    ],
)
def test_rubric_args_are_validated_at_version_creation_naming_the_field(args, named):
    with pytest.raises(InvalidRequestError) as caught:
        check_metrics([Metric(name="tone", scorer="rubric", args=args)])
    assert "metrics[0] (tone)" in caught.value.message and named in caught.value.message


def test_judge_args_reject_unknown_options():
    with pytest.raises(InvalidRequestError, match="bogus"):
        check_metrics([Metric(name="ans_corr", scorer="answer_correctness", args={"bogus": 1})])
    validate_args(get_scorer("faithfulness"), {"context_field": "input"})


def test_a_judge_without_a_runtime_fails_the_evaluation_not_the_batch():
    metric = Metric(name="ans_corr", scorer="answer_correctness")
    ev = score_batch(
        run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=[metric], records=[(0, RECORD)]
    ).evaluations[0]
    assert ev.status == "failed" and "no judge is configured" in ev.error_message


def test_missing_record_field_is_the_records_fault():
    record = Record(id="r2", trace_id=uuid.uuid4(), output="x")
    ev = score_batch(
        run_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        metrics=[Metric(name="f", scorer="faithfulness")],
        records=[(0, record)],
        judge=JudgeRuntime(Fake(), OPENAI),
    ).evaluations[0]
    assert ev.status == "failed" and "context" in ev.error_message


def test_parse_reply_tolerates_fences_and_prose():
    assert parse_reply('Sure! {"score": 1}. Bye') == {"score": 1}
    assert parse_reply('```json\n{"score": 0}\n```') == {"score": 0}


# ------------------------------------------------------------------ prices
def test_cost_from_the_table_unknown_model_none_overrides_and_profiles():
    assert PRICES_AS_OF
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.50)
    assert cost_usd("us.anthropic.claude-3-5-haiku-20241022-v1:0", 1000, 0) == pytest.approx(0.0008)
    assert cost_usd("llama3.1:8b", 1000, 1000) is None
    assert cost_usd("gpt-4o", None, 10) is None
    table = {"llama3.1:8b": Price(0.0, 0.0), **parse_overrides('{"gpt-4o": {"input": 1, "output": 2}}')}
    assert cost_usd("llama3.1:8b", 10, 10, table) == 0.0
    assert cost_usd("gpt-4o", 1_000_000, 0, table) == 1.0
    with pytest.raises(ValueError, match="JUDGE_PRICES"):
        parse_overrides("[1]")


def test_judge_request_error_is_not_transient():
    assert not issubclass(ModelRequestError, TransientScoringError)


def test_only_http_endpoints_are_accepted():
    from assay_service.adapters.judges import OpenAIJudgeClient

    with pytest.raises(ValueError, match="http"):
        OpenAIJudgeClient("file:///etc/passwd")


# ------------------------------------------------------------------ parallel judge calls
class CountingJudge:
    """A fake JudgeClient that records how many calls are in flight at once."""

    def __init__(self, delay: float = 0.05, fail_on: str | None = None) -> None:
        self.delay, self.fail_on = delay, fail_on
        self.lock = threading.Lock()
        self.in_flight = self.peak = self.calls = 0

    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        with self.lock:
            self.in_flight += 1
            self.calls += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.delay)
            if self.fail_on and self.fail_on in user:
                raise TransientScoringError("throttled")
            return JudgeReply(json.dumps(GOOD), 10, 5)
        finally:
            with self.lock:
                self.in_flight -= 1


def _records(n: int) -> list[tuple[int, Record]]:
    return [
        (i, Record(id=f"r{i}", trace_id=uuid.uuid4(), output=f"answer {i}", golden_answer="Paris"))
        for i in range(n)
    ]


@pytest.mark.parametrize("concurrency", [1, 3, 8])
def test_judge_calls_of_a_batch_run_in_parallel_up_to_the_bound(concurrency):
    # GIVEN 6 records × (one judge + one rule metric) and a judge bound of `concurrency`
    judge = CountingJudge()
    metrics = [
        Metric(name="ans", scorer="answer_correctness", threshold=0.5),
        Metric(name="exact", scorer="exact_match", threshold=1.0),
    ]
    runtime = JudgeRuntime(judge, OPENAI.model_copy(update={"concurrency": concurrency}))
    # WHEN the batch is scored
    outcome = score_batch(
        run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=metrics, records=_records(6), judge=runtime
    )
    # THEN never more than the bound in flight, and the bound is used when it can be
    assert judge.calls == 6 and judge.peak == min(concurrency, 6)
    # AND the evaluations come back in (record, metric) order with their own results
    assert [(e.record_id, e.metric_name) for e in outcome.evaluations] == [
        (f"r{i}", m) for i in range(6) for m in ("ans", "exact")
    ]
    assert all(e.score == 0.9 for e in outcome.evaluations if e.metric_name == "ans")


def test_a_transient_judge_failure_in_a_parallel_batch_fails_the_batch_whole():
    judge = CountingJudge(fail_on="answer 3")
    runtime = JudgeRuntime(judge, OPENAI.model_copy(update={"concurrency": 4}))
    metrics = [Metric(name="ans", scorer="answer_correctness", threshold=0.5)]
    with pytest.raises(TransientScoringError):
        score_batch(
            run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=metrics, records=_records(20), judge=runtime
        )
    assert judge.calls < 20  # calls not yet started were cancelled


def test_the_deployment_s_price_overrides_reach_the_judge_cost(monkeypatch):
    """GIVEN the template's JudgePrices parameter (JUDGE_PRICES) THEN the judge cost uses it;
    left at its default "" it means the shipped table, as do the other empty parameters."""
    import json as _json

    from assay_service import dependencies
    from assay_service.domain.pricing import DEFAULT_PRICES, Price
    from assay_service.settings import get_settings

    monkeypatch.setenv("TABLE_NAME", "t")
    monkeypatch.setenv("BUCKET_NAME", "b")
    monkeypatch.setenv("JUDGE_OPENAI_BASE_URL", "")
    monkeypatch.setenv("JUDGE_PRICES", _json.dumps({"my-model": {"input": 1.5, "output": 6}}))
    dependencies.reset()
    try:
        assert get_settings().judge_openai_base_url is None
        prices = dependencies.judge_prices()
        assert prices["my-model"] == Price(1.5, 6.0)
        assert set(DEFAULT_PRICES) < set(prices)
        monkeypatch.setenv("JUDGE_PRICES", "")
        dependencies.reset()
        assert dependencies.judge_prices() == DEFAULT_PRICES
    finally:
        dependencies.reset()


def test_bedrock_generation_sends_the_conversation_and_sampling_and_maps_the_stop_reason(bedrock):
    from assay_service.domain.generation import generation_request
    from assay_service.models.domain import GenerationSettings, Record

    client, stub = bedrock
    settings = GenerationSettings.model_validate(
        {
            "model": "amazon.nova-lite-v1:0",
            "system": "Be brief.",
            "messages": [{"content": "Q: {{record.input}}"}],
            "top_p": 0.5,
            "stop": ["END"],
            "max_tokens": 64,
        }
    )
    request = generation_request(settings, Record(id="r", trace_id=uuid.uuid4(), input="capital?"))
    response = converse_response("Paris", tokens_in=12, tokens_out=3)
    response["stopReason"] = "max_tokens"
    stub.add_response(
        "converse",
        response,
        {
            "modelId": "amazon.nova-lite-v1:0",
            "system": [{"text": "Be brief."}],
            "messages": [{"role": "user", "content": [{"text": "Q: capital?"}]}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.0, "topP": 0.5, "stopSequences": ["END"]},
        },
    )
    reply = BedrockJudgeClient(client).chat(request)
    stub.assert_no_pending_responses()
    assert (reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == (
        "Paris",
        "length",
        12,
        3,
    )


def test_openai_generation_sends_sampling_and_the_schema(server):
    from assay_service.domain.generation import ChatRequest

    url, script = server
    script.replies.append((200, completion("42", prompt_tokens=9, completion_tokens=1)))
    request = ChatRequest(
        provider="openai",
        model="m",
        messages=(("system", "s"), ("user", "u")),
        temperature=0.2,
        top_p=0.9,
        seed=3,
        stop=("\n",),
        json_schema='{"type":"string"}',
    )
    reply = OpenAIJudgeClient(url, "sk").chat(request)
    body = script.requests[-1]["body"]
    assert (body["top_p"], body["seed"], body["stop"], body["temperature"]) == (0.9, 3, ["\n"], 0.2)
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == {"type": "string"}
    assert (reply.text, reply.prompt_tokens, reply.completion_tokens) == ("42", 9, 1)


def test_a_429_carries_the_providers_retry_after():
    from assay_service.domain.generation import ChatRequest

    from tests.support.judge_server import model_server

    request = ChatRequest(provider="openai", model="m", messages=(("user", "hello"),), max_tokens=5)
    with model_server(rpm=1) as (url, provider):
        client = OpenAIJudgeClient(url, "sk")
        client.chat(request)  # the one request of this minute
        with pytest.raises(TransientScoringError) as refused:
            client.chat(request)
    assert refused.value.retry_after is not None and 50 <= refused.value.retry_after <= 60
    assert provider.rate_limited == 1 and provider.over_limit_served == 0


def test_a_reply_trickling_in_times_out_in_all_not_per_read():
    import socket

    from assay_service.domain.generation import ChatRequest

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n")
            for _ in range(40):  # a byte every 0.1 s: each read is quick, the whole is not
                try:
                    conn.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.1)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    client = OpenAIJudgeClient(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", timeout=1.0)
    started = time.monotonic()
    with pytest.raises(TransientScoringError, match="timed out"):
        client.chat(ChatRequest(provider="openai", model="m", messages=(("user", "u"),)))
    assert time.monotonic() - started < 2.0
    listener.close()


def test_content_in_parts_and_a_lone_surrogate_are_read_as_text(server):
    from assay_service.domain.generation import ChatRequest

    url, script = server
    body = completion("x")
    body["choices"][0]["message"]["content"] = [
        {"type": "text", "text": "Par"},
        {"type": "text", "text": "is \ud83d"},
    ]
    script.replies.append((200, body))
    reply = OpenAIJudgeClient(url).chat(ChatRequest(provider="openai", model="m", messages=(("user", "u"),)))
    assert reply.text == "Paris \ufffd"


# ------------------------------------------------------------------ embeddings (cosine_similarity)
def test_openai_embed_posts_the_texts_and_reads_the_vectors_in_index_order(server):
    from tests.support.judge_server import hashed_embedding

    url, script = server
    vectors, tokens = OpenAIJudgeClient(url, "sk-test").embed(
        "text-embedding-3-small", ["Paris", "a b c d e"]
    )
    assert vectors == [hashed_embedding("Paris"), hashed_embedding("a b c d e")]
    assert tokens == 2 + 3  # the server counts characters / 4
    [request] = script.requests
    assert request["path"] == "/v1/embeddings" and request["auth"] == "Bearer sk-test"
    assert request["body"] == {"model": "text-embedding-3-small", "input": ["Paris", "a b c d e"]}
    # rows out of order come back in the inputs' order
    script.embedding_replies.append(
        (200, {"data": [{"index": 1, "embedding": [0, 1]}, {"index": 0, "embedding": [1, 0]}], "usage": {}})
    )
    assert OpenAIJudgeClient(url).embed("m", ["x", "y"]) == ([[1.0, 0.0], [0.0, 1.0]], None)


def test_openai_embed_maps_errors_as_chat_does(server):
    url, script = server
    client = OpenAIJudgeClient(url, "sk-test")
    script.embedding_replies.append((429, {"error": {"message": "slow down"}}, {"Retry-After": "7"}))
    with pytest.raises(TransientScoringError, match="429") as throttled:
        client.embed("m", ["x"])
    assert throttled.value.retry_after == 7
    script.embedding_replies.append((503, {"error": {"message": "busy"}}))
    with pytest.raises(TransientScoringError, match="503"):
        client.embed("m", ["x"])
    script.embedding_replies.append((404, {"error": {"message": "model nope does not exist"}}))
    with pytest.raises(ModelRequestError, match="does not exist"):
        client.embed("nope", ["x"])
    script.embedding_replies.append((200, {"data": [{"index": 0, "embedding": [0.1]}]}))
    with pytest.raises(ModelRequestError, match="1 embeddings for 2 texts"):
        client.embed("m", ["x", "y"])
    script.embedding_replies.append((200, {"data": [{"index": 0, "embedding": "AAAA"}]}))
    with pytest.raises(ModelRequestError, match="no embeddings"):
        client.embed("m", ["x"])


def test_openai_embed_has_the_reply_size_cap(server, monkeypatch):
    import assay_service.adapters.judges as judges_adapter

    url, _ = server
    monkeypatch.setattr(judges_adapter, "MAX_REPLY_BYTES", 100)
    with pytest.raises(ModelRequestError, match="over 100 bytes"):
        OpenAIJudgeClient(url).embed("m", ["a longer text than a hundred bytes of vectors allow"])


def titan_body(vector: list[float], tokens: int) -> dict:
    import io

    from botocore.response import StreamingBody

    raw = json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


def test_bedrock_embed_invokes_titan_once_per_text(bedrock):
    client, stub = bedrock
    for text, vector, tokens in (("Paris", [0.6, 0.8], 2), ("Rome", [1.0, 0.0], 1)):
        stub.add_response(
            "invoke_model",
            titan_body(vector, tokens),
            {
                "modelId": "amazon.titan-embed-text-v2:0",
                "body": json.dumps({"inputText": text}),
                "contentType": "application/json",
                "accept": "application/json",
            },
        )
    vectors, tokens = BedrockJudgeClient(client).embed("amazon.titan-embed-text-v2:0", ["Paris", "Rome"])
    stub.assert_no_pending_responses()
    assert vectors == [[0.6, 0.8], [1.0, 0.0]] and tokens == 3


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 429, TransientScoringError),
        ("ServiceUnavailableException", 503, TransientScoringError),
        ("ValidationException", 400, ModelRequestError),
        ("AccessDeniedException", 403, ModelRequestError),
    ],
)
def test_bedrock_embed_maps_errors_as_converse_does(bedrock, code, status, error):
    client, stub = bedrock
    stub.add_client_error(
        "invoke_model", service_error_code=code, service_message="no", http_status_code=status
    )
    with pytest.raises(error, match=code):
        BedrockJudgeClient(client).embed("amazon.titan-embed-text-v2:0", ["x"])


def test_cosine_similarity_end_to_end_through_the_http_client(server):
    """The scorer, ModelCalls and the OpenAI-compatible client against the loopback server."""
    from assay_service.domain.generation import UsageMeter
    from assay_service.domain.pricing import price_table
    from assay_service.domain.ratelimit import Limits
    from assay_service.services.model_calls import ModelCalls

    url, _ = server
    calls = ModelCalls(
        tenant_id=uuid.uuid4(),
        clients=lambda provider: OpenAIJudgeClient(url, "sk-test"),
        limiter=None,
        cache=None,
        limits=lambda provider, model: Limits(),
        meter=UsageMeter(prices=price_table()),
        deadline=time.time() + 30,
        embedding_default="",
    )
    runtime = JudgeRuntime(calls, OPENAI, prices=price_table())
    args = {"input": "{{sample.output_text}}", "reference": "{{item.answer}}"}
    metric = Metric(name="cos", scorer="cosine_similarity", args=args, threshold=0.99)
    record = RECORD.model_copy(update={"metadata": {"item": {"answer": "Paris"}}})
    outcome = score_batch(
        run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=[metric], records=[(0, record)], judge=runtime
    )
    [ev] = outcome.evaluations
    assert (ev.status, ev.score, ev.is_passed) == ("complete", 1.0, True)
    assert ev.eval_metadata["model"] == "text-embedding-3-small"
    assert ev.eval_metadata["input_tokens"] == 2 + 2  # "Paris" twice, characters / 4
    assert ev.evaluation_cost == pytest.approx(4 * 0.02 / 1e6)
    assert calls.meter.rows()[0]["model"] == "text-embedding-3-small"
