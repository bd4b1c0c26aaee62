"""OpenAI's model graders (score_model, label_model) as LLM scorers: the conversation sent
from the templates, the replies understood (and asked again once), the grader's own model
called, metered, cached and costed, and the args refused at eval creation."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from assay_service.domain.generation import ChatReply, ChatRequest
from assay_service.domain.pricing import Price, cost_usd
from assay_service.domain.scorers.judges import JudgeRuntime
from assay_service.domain.scorers.model_graders import normalised_threshold
from assay_service.domain.scoring import check_metrics, score_batch
from assay_service.errors import InvalidRequestError
from assay_service.models.api import CreateDatasetRequest, CreateEvalRequest
from assay_service.models.domain import JudgeSettings, Metric, Record

from tests.support import fakes
from tests.unit.test_generation import run_to_the_end
from tests.unit.test_service_runs import principal

ports_fixture = fakes.ports_fixture

RECORD = Record(
    id="r1",
    trace_id=uuid.uuid4(),
    output="Paris",
    metadata={"item": {"question": "Capital of France?", "reference": "Paris", "turns": ["hi", "there"]}},
)
VERSION_JUDGE = JudgeSettings(provider="openai", model="version-judge", temperature=0, max_tokens=512)
PRICES = {"gpt-4o-mini": Price(0.15, 0.60), "version-judge": Price(100.0, 100.0)}

SCORE_INPUT = [
    {"role": "system", "content": "You grade answers to {{item.question}}."},
    {"role": "user", "content": "Reference: {{item.reference}}\nAnswer: {{sample.output_text}}"},
]
LABELS = {
    "model": "gpt-4o-mini",
    "input": [{"role": "user", "content": "Sentiment of: {{sample.output_text}}"}],
    "labels": ["positive", "neutral", "negative"],
    "passing_labels": ["positive", "neutral"],
}


class Scripted(fakes.FakeJudgeClient):
    """Answers the judge's calls with ``replies`` in turn (the last one again after)."""

    def __init__(self, *replies: str) -> None:
        super().__init__()
        self.replies = list(replies)
        self.lock = threading.Lock()

    def chat(self, request: ChatRequest) -> ChatReply:
        with self.lock:
            self.requests.append(request)
            text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return ChatReply(text=text, finish_reason="stop", prompt_tokens=10, completion_tokens=5)


def score_one(client, scorer: str, args: dict, *, threshold: float = 0.5, record: Record = RECORD):
    metric = Metric(name="graded", scorer=scorer, args=args, threshold=threshold)
    check_metrics([metric])
    runtime = JudgeRuntime(client, VERSION_JUDGE, PRICES)
    outcome = score_batch(
        run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=[metric], records=[(0, record)], judge=runtime
    )
    return outcome.evaluations[0]


def score_args(**extra) -> dict:
    return {"model": "gpt-4o-mini", "input": SCORE_INPUT, **extra}


# ---------------------------------------------------------------- the conversation
def test_the_templates_are_rendered_and_the_reply_format_is_asked_last():
    judge = Scripted('{"reasoning": "Same city.", "result": 0.8}')
    ev = score_one(judge, "score_model", score_args())
    [request] = judge.requests
    assert request.messages == (
        ("system", "You grade answers to Capital of France?."),
        (
            "user",
            "Reference: Paris\nAnswer: Paris\n\nReply with only one JSON object, no prose around it: "
            '{"reasoning": <one or two sentences>, "result": <your score: one number from 0 to 1>}.',
        ),
    )
    assert request.json_object and request.provider == "openai"
    assert (ev.status, ev.score, ev.label, ev.reasoning) == ("complete", 0.8, "0.8", "Same city.")


def test_content_parts_developer_messages_and_a_final_assistant_turn():
    args = score_args(
        input=[
            {"role": "developer", "content": [{"type": "input_text", "text": "Be strict."}]},
            {"role": "system", "content": {"type": "input_text", "text": "Score {{item.turns.1}}."}},
            {
                "role": "user",
                "type": "message",
                "content": [
                    "Q: {{item.question}}",
                    {"type": "output_text", "text": "A: {{sample.output_text}}"},
                ],
            },
            {"role": "assistant", "content": "Thinking…"},
        ]
    )
    judge = Scripted('{"result": 1}')
    score_one(judge, "score_model", args)
    messages = judge.requests[0].messages
    assert messages[0] == ("system", "Be strict.\n\nScore there.")  # developer is a system message
    assert messages[1] == ("user", "Q: Capital of France?\nA: Paris")
    assert messages[2] == ("assistant", "Thinking…")
    assert messages[3][0] == "user" and messages[3][1].startswith("Reply with only one JSON object")


def test_a_record_without_the_templates_field_fails_without_a_call():
    judge = Scripted('{"result": 1}')
    args = score_args(input=[{"role": "user", "content": "{{item.missing}}"}])
    ev = score_one(judge, "score_model", args)
    assert ev.status == "failed" and "'missing'" in (ev.error_message or "")
    assert judge.requests == []


# ---------------------------------------------------------------- score_model replies
@pytest.mark.parametrize(
    ("reply", "score", "reasoning"),
    [
        ('{"reasoning": "ok", "result": 4}', 0.75, "ok"),
        ('```json\n{"result": "4.0"}\n```', 0.75, ""),
        ('Here: {"score": 5, "reasoning": "best"}', 1.0, "best"),  # Assay's judges' key
        ('{"steps": [{"description": "d", "conclusion": "close"}], "result": 1}', 0.0, "close"),
        ("3", 0.5, ""),  # a bare number, as a prompt saying "return just a number" gets
    ],
)
def test_score_model_normalises_the_result_over_its_range(reply, score, reasoning):
    ev = score_one(Scripted(reply), "score_model", score_args(range=[1, 5]))
    assert (ev.status, ev.score, ev.reasoning) == ("complete", score, reasoning)
    assert ev.label == f"{1 + score * 4:g}" and ev.eval_metadata["result"] == 1 + score * 4
    assert ev.eval_metadata["attempts"] == 1


def test_pass_threshold_maps_onto_the_metrics_threshold():
    threshold = normalised_threshold(7, [0, 10])
    assert threshold == 0.7 and normalised_threshold(0.5) == 0.5 and normalised_threshold(12, [0, 10]) == 1
    passed = score_one(
        Scripted('{"result": 7}'), "score_model", score_args(range=[0, 10]), threshold=threshold
    )
    failed = score_one(
        Scripted('{"result": 6.9}'), "score_model", score_args(range=[0, 10]), threshold=threshold
    )
    assert (passed.is_passed, failed.is_passed) == (True, False)


def test_a_malformed_reply_is_asked_again_once_with_what_was_wrong():
    judge = Scripted("I think it is fine", '{"result": 0.4}')
    ev = score_one(judge, "score_model", score_args())
    assert (ev.status, ev.score) == ("complete", 0.4)
    assert ev.eval_metadata["attempts"] == 2
    assert (ev.eval_metadata["input_tokens"], ev.eval_metadata["output_tokens"]) == (20, 10)
    assert ev.evaluation_cost == cost_usd("gpt-4o-mini", 20, 10, PRICES)
    first, second = judge.requests
    assert first.messages[0] == second.messages[0]
    assert second.messages[-1][1].startswith(first.messages[-1][1])
    assert "Your previous reply could not be used (`result` must be one number" in second.messages[-1][1]
    assert second.messages[-1][1].endswith(first.messages[-1][1].split("\n\n")[-1])


def test_two_malformed_replies_fail_the_evaluation_with_an_excerpt():
    ev = score_one(Scripted("no idea " * 100), "score_model", score_args())
    assert ev.status == "failed" and ev.score is None
    assert ev.error_message.startswith("UnparseableReplyError: judge reply unparseable after a retry (")
    assert "'no idea no idea" in ev.error_message and len(ev.error_message) < 500
    assert ev.eval_metadata["attempts"] == 2 and ev.eval_metadata["model"] == "gpt-4o-mini"
    assert ev.evaluation_cost == cost_usd("gpt-4o-mini", 20, 10, PRICES)  # the tokens were spent


@pytest.mark.parametrize(
    "reply", ['{"result": 1.5}', '{"result": -1}', '{"result": "NaN"}', '{"result": true}']
)
def test_a_result_outside_the_range_is_an_unparseable_reply(reply):
    judge = Scripted(reply)
    ev = score_one(judge, "score_model", score_args())
    assert ev.status == "failed" and "`result` must be one number from 0 to 1" in ev.error_message
    assert len(judge.requests) == 2


# ---------------------------------------------------------------- label_model
@pytest.mark.parametrize(
    ("reply", "label", "score", "passed"),
    [
        ('{"reasoning": "upbeat", "result": "positive"}', "positive", 1.0, True),
        ('{"result": "Neutral"}', "neutral", 1.0, True),
        ('{"label": "negative"}', "negative", 0.0, False),
        ('{"result": ["negative"]}', "negative", 0.0, False),
        ("Negative.", "negative", 0.0, False),
    ],
)
def test_label_model_passes_on_a_passing_label(reply, label, score, passed):
    ev = score_one(Scripted(reply), "label_model", LABELS, threshold=1.0)
    assert (ev.status, ev.label, ev.score, ev.is_passed) == ("complete", label, score, passed)
    assert ev.eval_metadata["result"] == label


def test_label_model_asks_for_one_of_its_labels_and_retries_on_another():
    judge = Scripted('{"result": "mixed"}', '{"result": "neutral"}')
    ev = score_one(judge, "label_model", LABELS)
    assert (ev.label, ev.eval_metadata["attempts"]) == ("neutral", 2)
    assert (
        judge.requests[0]
        .messages[-1][1]
        .endswith('"result": <exactly one of these labels: ["positive", "neutral", "negative"]>}.')
    )
    assert "`result` must be exactly one of" in judge.requests[1].messages[-1][1]
    failed = score_one(Scripted('{"result": "mixed"}'), "label_model", LABELS)
    assert failed.status == "failed" and '\'{"result": "mixed"}\'' in failed.error_message


# ---------------------------------------------------------------- the grader's model
def test_each_call_uses_the_graders_model_and_sampling_and_is_costed_at_its_price():
    args = score_args(
        sampling_params={
            "temperature": 0.3,
            "top_p": 0.9,
            "seed": 7,
            "max_completions_tokens": 100,
            "reasoning_effort": "low",
        }
    )
    judge = Scripted('{"result": 1}')
    ev = score_one(judge, "score_model", args)
    [request] = judge.requests
    assert (request.provider, request.model, request.temperature, request.top_p, request.seed) == (
        "openai",
        "gpt-4o-mini",
        0.3,
        0.9,
        7,
    )
    assert request.max_tokens == 100
    assert ev.eval_metadata == {
        "model": "gpt-4o-mini",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
        "attempts": 1,
        "ignored": ["sampling_params.reasoning_effort"],
        "result": 1.0,
    }
    assert (
        ev.evaluation_cost
        == cost_usd("gpt-4o-mini", 10, 5, PRICES)
        != cost_usd("version-judge", 10, 5, PRICES)
    )
    # without sampling_params, the eval version's judge settings (temperature 0, 512 tokens)
    judge = Scripted('{"result": "positive"}')
    score_one(judge, "label_model", LABELS)
    assert (judge.requests[0].model, judge.requests[0].temperature, judge.requests[0].max_tokens) == (
        "gpt-4o-mini",
        0,
        512,
    )
    assert (judge.requests[0].top_p, judge.requests[0].seed) == (None, None)


def test_a_bare_model_client_may_answer_the_conversation():
    class Bare:  # an adapter: chat() only
        def __init__(self) -> None:
            self.requests: list[ChatRequest] = []

        def chat(self, request: ChatRequest) -> ChatReply:
            self.requests.append(request)
            return ChatReply(text='{"result": "positive"}', prompt_tokens=3, completion_tokens=2)

    bare = Bare()
    ev = score_one(bare, "label_model", LABELS)
    assert ev.status == "complete" and bare.requests[0].model == "gpt-4o-mini"
    assert (ev.eval_metadata["input_tokens"], ev.eval_metadata["output_tokens"]) == (3, 2)


def test_in_a_run_usage_cache_and_cost_are_the_graders_models(ports: fakes.Ports, monkeypatch):
    monkeypatch.setattr(ports, "judge_prices", lambda: PRICES)
    ports.judge.reply = '{"reasoning": "fine", "result": 1}'
    who = principal()
    records = [
        {"id": f"r{i}", "output": f"answer {i}", "metadata": {"item": {"question": f"q{i}"}}}
        for i in range(3)
    ]
    dataset, _ = catalog_dataset(ports, who, records)
    same_input = [{"role": "user", "content": "{{item.question}} -> {{sample.output_text}}"}]
    _, version = catalog_eval(
        ports,
        who,
        [
            {"name": "mini", "scorer": "score_model", "args": {"model": "gpt-4o-mini", "input": same_input}},
            {
                "name": "other",
                "scorer": "score_model",
                "args": {"model": "version-judge", "input": same_input},
            },
        ],
    )
    first = run_to_the_end(ports, who, dataset, version)
    # one call per record and grader: the same messages to another model are another call
    assert len(ports.judge.requests) == 6
    assert {r.model for r in ports.judge.requests} == {"gpt-4o-mini", "version-judge"}
    usage = {(u.role, u.provider, u.model): u for u in first.per_model_usage or []}
    mini = usage["judge", "openai", "gpt-4o-mini"]
    assert (mini.invocations, mini.prompt_tokens, mini.completion_tokens) == (3, 30, 15)
    assert mini.cost == pytest.approx(3 * cost_usd("gpt-4o-mini", 10, 5, PRICES))
    assert usage["judge", "openai", "version-judge"].invocations == 3
    each = cost_usd("gpt-4o-mini", 10, 5, PRICES) + cost_usd("version-judge", 10, 5, PRICES)
    assert first.total_cost == pytest.approx(3 * each)
    # the same run again: every verdict from the tenant's cache, nothing spent
    again = run_to_the_end(ports, who, dataset, version)
    assert len(ports.judge.requests) == 6 and (again.cache_hits, again.cache_misses) == (6, 0)
    again_usage = {(u.role, u.provider, u.model): u for u in again.per_model_usage or []}
    assert again_usage["judge", "openai", "gpt-4o-mini"].cached_responses == 3
    assert again.total_cost == 0


def catalog_dataset(ports, who, records):
    from assay_service.services import catalog

    dataset, version = catalog.create_dataset(
        who, CreateDatasetRequest.model_validate({"name": "graded", "records": records}), ports=ports
    )
    return dataset.id, version


def catalog_eval(ports, who, metrics):
    from assay_service.services import catalog

    ev, version = catalog.create_eval(
        who,
        CreateEvalRequest.model_validate(
            {"name": "graders", "metrics": metrics, "judge": {"provider": "openai", "model": "version-judge"}}
        ),
        ports=ports,
    )
    assert version is not None
    return ev.id, version.id


# ---------------------------------------------------------------- args refused at creation
@pytest.mark.parametrize(
    ("scorer", "args", "message"),
    [
        (
            "score_model",
            score_args(input=[{"role": "user", "content": "{{record.output}}"}]),
            "{{record.output}}",
        ),
        (
            "score_model",
            score_args(input=[{"role": "user", "content": "{{ item.a + 1 }}"}]),
            "no expressions",
        ),
        (
            "score_model",
            score_args(
                input=[{"role": "user", "content": [{"type": "input_image", "image_url": "http://x/i.png"}]}]
            ),
            "input_image content is not supported",
        ),
        (
            "label_model",
            {**LABELS, "input": [{"role": "user", "content": {"type": "input_audio", "input_audio": {}}}]},
            "input_audio content is not supported",
        ),
        ("label_model", {**LABELS, "passing_labels": ["positive", "great"]}, "['great'] are not in `labels`"),
        ("label_model", {**LABELS, "labels": ["a", "A"], "passing_labels": ["a"]}, "distinct"),
        ("score_model", score_args(range=[1, 1]), "min below max"),
        ("score_model", score_args(range=[5, 1]), "min below max"),
        ("score_model", score_args(range=[0, 1, 2]), "range"),
        ("score_model", score_args(sampling_params={"temperature": 3}), "temperature"),
        ("score_model", score_args(sampling_params={"logprobs": True}), "logprobs"),
        ("score_model", score_args(input=[]), "input"),
        ("score_model", score_args(input=[{"role": "tool", "content": "x"}]), "role"),
        ("score_model", score_args(model=" "), "model"),
        ("score_model", {"input": SCORE_INPUT}, "model"),
        ("label_model", {**LABELS, "pass_threshold": 0.5}, "pass_threshold"),
    ],
)
def test_bad_args_are_a_400_naming_the_problem(scorer, args, message):
    with pytest.raises(InvalidRequestError) as raised:
        check_metrics([Metric(name="graded", scorer=scorer, args=args)])
    assert message in raised.value.message, raised.value.message


def test_the_args_openai_sends_are_accepted():
    from openai.types.graders import LabelModelGrader, ScoreModelGrader

    score = ScoreModelGrader(
        type="score_model",
        name="quality",
        model="gpt-4o-mini",
        input=[{"role": "user", "content": {"type": "input_text", "text": "{{sample.output_text}}"}}],
        range=[0, 10],
        sampling_params={"temperature": 0, "seed": 1},
    ).model_dump(exclude_none=True, exclude={"type", "name"})
    label = LabelModelGrader(
        type="label_model",
        name="tone",
        **{**LABELS, "input": [{"role": "user", "content": "x", "type": "message"}]},
    ).model_dump(exclude_none=True, exclude={"type", "name"})
    check_metrics(
        [
            Metric(name="q", scorer="score_model", args=score),
            Metric(name="t", scorer="label_model", args=label),
        ]
    )
    assert json.dumps(score) and json.dumps(label)


def test_a_batch_reads_the_graders_cached_verdicts_in_one_go():
    """The first call of each model grader for each record is found before scoring (the
    batch reads them from the response cache in one BatchGetItem), with the grader's model
    and the exact request the grader then makes."""
    from assay_service.domain.scoring import judge_first_calls

    metrics = [
        Metric(name="quality", scorer="score_model", args=score_args(), threshold=0.5),
        Metric(name="tone", scorer="label_model", args=LABELS, threshold=1),
    ]
    other = RECORD.model_copy(update={"id": "r2", "output": "Lyon"})
    first = judge_first_calls(metrics, [(0, RECORD), (1, other)], VERSION_JUDGE)
    assert [(r.model, r.messages[-1][1].split("\n")[0]) for r in first] == [
        ("gpt-4o-mini", "Reference: Paris"),
        ("gpt-4o-mini", "Sentiment of: Paris"),
        ("gpt-4o-mini", "Reference: Paris"),
        ("gpt-4o-mini", "Sentiment of: Lyon"),
    ]
    client = Scripted('{"reasoning": "ok", "result": 1}')
    score_one(client, "score_model", score_args())
    assert client.requests[0].cache_key() == first[0].cache_key()
