"""Generation inside a run: templates, the calls made, and a generate-then-score run on the
in-memory fakes — what is stored, what failed generations become, the response cache and
the usage per model."""

from __future__ import annotations

import re
import uuid

import pytest
from assay_service.domain.generation import (
    MissingFieldError,
    TemplateError,
    check_template,
    generation_request,
    render,
)
from assay_service.domain.pricing import price_table
from assay_service.errors import InvalidRequestError, TransientScoringError
from assay_service.models.api import CreateDatasetRequest, CreateEvalRequest
from assay_service.models.domain import GenerationSettings, Record
from assay_service.services import catalog, runs, workflow

from tests.support import fakes
from tests.unit.test_service_runs import batches, principal, schedule, score

ports_fixture = fakes.ports_fixture

RECORD = Record(
    id="r1",
    trace_id=uuid.uuid4(),
    input="capital of France?",
    context="Europe",
    metadata={"topic": "geo", "level": 2},
)


# ---------------------------------------------------------------- templates
def test_templates_fill_record_fields_and_metadata_keys():
    text = (
        "{{record.input}} | {{ record.context }} | {{record.topic}} | {{record.metadata.level}}"
        " | {{record.id}}"
    )
    assert render(text, RECORD) == "capital of France? | Europe | geo | 2 | r1"


def test_a_placeholder_the_record_lacks_is_an_error_not_an_empty_string():
    with pytest.raises(MissingFieldError, match="'golden_answer'"):
        render("{{record.golden_answer}}", RECORD)
    with pytest.raises(MissingFieldError, match="'missing'"):
        render("{{record.missing}}", RECORD)


@pytest.mark.parametrize(
    "template",
    [
        "{{input}}",
        "{{record}}",
        "{{record.input.upper()}}",
        "{{ items.input }}",
        "{{ item }}",
        "{{record.a b}}",
        "x {{record.input",
    ],
)
def test_a_template_naming_anything_but_a_record_field_is_refused(template):
    with pytest.raises(TemplateError):
        check_template(template)


def test_the_request_carries_the_system_prompt_messages_and_sampling():
    settings = GenerationSettings.model_validate(
        {
            "provider": "openai",
            "model": "m",
            "system": "You answer about {{record.context}}.",
            "messages": [{"content": "Q: {{record.input}}"}],
            "temperature": 0.3,
            "top_p": 0.9,
            "seed": 7,
            "stop": ["\n\n"],
            "response_format": {"type": "object"},
        }
    )
    request = generation_request(settings, RECORD)
    assert request.messages == (("system", "You answer about Europe."), ("user", "Q: capital of France?"))
    assert (request.temperature, request.top_p, request.seed, request.stop) == (0.3, 0.9, 7, ("\n\n",))
    assert request.json_schema == '{"type":"object"}'
    assert request.cacheable  # a seed makes it reproducible
    bedrock = generation_request(settings.model_copy(update={"provider": "bedrock"}), RECORD)
    assert bedrock.json_schema is None and '{"type":"object"}' in bedrock.messages[0][1]


def test_the_cache_key_changes_with_anything_that_changes_the_answer():
    settings = GenerationSettings(model="m")
    base = generation_request(settings, RECORD)
    assert base.cacheable and base.cache_key() == generation_request(settings, RECORD).cache_key()
    for change in ({"model": "n"}, {"temperature": 0.0, "max_tokens": 9}, {"provider": "openai"}):
        other = generation_request(settings.model_copy(update=change), RECORD)
        assert other.cache_key() != base.cache_key()
    assert not generation_request(settings.model_copy(update={"temperature": 0.7}), RECORD).cacheable


# ---------------------------------------------------------------- a run that generates
RECORDS = [
    {"id": "r1", "input": "paris", "golden_answer": "PARIS"},
    {"id": "r2", "input": "lyon", "golden_answer": "PARIS"},
    {"id": "r3", "input": "rome", "golden_answer": "ROME"},
]


def generating_catalogue(ports: fakes.Ports, who, records=None, **generation):
    dataset, _ = catalog.create_dataset(
        who, CreateDatasetRequest.model_validate({"name": "d", "records": records or RECORDS}), ports=ports
    )
    _, version = catalog.create_eval(
        who,
        CreateEvalRequest.model_validate(
            {
                "name": "gen",
                "metrics": [{"name": "exact", "scorer": "exact_match", "threshold": 1.0}],
                "generation": {"provider": "openai", "model": "gpt-4o-mini", **generation},
            }
        ),
        ports=ports,
    )
    assert version is not None
    return dataset.id, version.id


def run_to_the_end(ports: fakes.Ports, who, dataset_id, version_id, **body):
    run, _ = schedule(ports, who, dataset_id, version_id, **body)
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    for batch in batches(ports, who, run.id):
        score(ports, who, run.id, batch)
    assert workflow.finalize(who.tenant_id, run.id, ports=ports).status == "completed"
    return runs.get_run(who, run.id, ports=ports)


def evaluations(ports, who, run_id):
    page, _ = runs.list_evaluations(
        who, run_id, metric=None, status=None, passed=None, limit=50, cursor=None, ports=ports
    )
    return page


def test_records_without_output_are_answered_by_the_model_then_scored(
    ports: fakes.Ports, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(ports, "judge_prices", price_table)  # the shipped prices
    who = principal()
    done = run_to_the_end(ports, who, *generating_catalogue(ports, who))
    page = evaluations(ports, who, done.id)
    # the fake model upper-cases the prompt: r1 and r3 match their golden answers
    assert [(record["output"], ev.is_passed) for ev, record in page] == [
        ("PARIS", True),
        ("LYON", False),
        ("ROME", True),
    ]
    generation = page[0][1]["generation"]
    assert generation["output"] == "PARIS" and generation["finish_reason"] == "stop"
    assert (generation["prompt_tokens"], generation["completion_tokens"], generation["cached"]) == (
        10,
        5,
        False,
    )
    assert [r.messages for r in ports.judge.requests] == [
        (("user", "paris"),),
        (("user", "lyon"),),
        (("user", "rome"),),
    ]
    assert done.per_model_usage is not None
    [usage] = done.per_model_usage
    assert (usage.role, usage.model, usage.invocations, usage.prompt_tokens, usage.completion_tokens) == (
        "generator",
        "gpt-4o-mini",
        3,
        30,
        15,
    )
    assert usage.cost == pytest.approx(3 * (10 * 0.15 + 5 * 0.60) / 1e6)
    assert done.total_cost == pytest.approx(usage.cost)
    assert (done.cache_hits, done.cache_misses) == (0, 3)


def test_a_rerun_is_answered_from_the_cache_unless_the_run_says_no(ports: fakes.Ports):
    who = principal()
    dataset_id, version_id = generating_catalogue(ports, who)
    run_to_the_end(ports, who, dataset_id, version_id)
    again = run_to_the_end(ports, who, dataset_id, version_id)
    assert len(ports.judge.requests) == 3  # the second run made no call
    assert (again.cache_hits, again.cache_misses) == (3, 0)
    assert again.per_model_usage is not None and again.per_model_usage[0].invocations == 0
    assert again.per_model_usage[0].cached_responses == 3 and again.total_cost == 0
    assert [record["generation"]["cached"] for _, record in evaluations(ports, who, again.id)] == [True] * 3
    fresh = run_to_the_end(ports, who, dataset_id, version_id, cache=False)
    assert len(ports.judge.requests) == 6 and (fresh.cache_hits, fresh.cache_misses) == (0, 0)
    # another tenant never sees this tenant's answers
    other = principal()
    run_to_the_end(ports, other, *generating_catalogue(ports, other))
    assert len(ports.judge.requests) == 9


def test_a_record_whose_answer_cannot_be_generated_is_an_errored_record_not_a_lost_one(
    ports: fakes.Ports, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("assay_service.services.model_calls.ATTEMPTS", 2)
    monkeypatch.setattr("assay_service.services.model_calls.BACKOFF_BASE_S", 0.01)

    def answer(request):
        if "lyon" in request.messages[-1][1]:
            raise TransientScoringError("model endpoint HTTP 503: overloaded")
        return request.messages[-1][1].upper()

    ports.judge.answer = answer
    who = principal()
    records = [*RECORDS, {"id": "r4", "context": "no input here", "golden_answer": "X"}]
    done = run_to_the_end(ports, who, *generating_catalogue(ports, who, records=records))
    assert (done.completed_count, done.failed_count, done.item_count) == (2, 2, 4)
    page = {record["id"]: (ev, record) for ev, record in evaluations(ports, who, done.id)}
    ev, record = page["r2"]
    assert ev.status == "failed" and "HTTP 503: overloaded" in (ev.error_message or "")
    assert "after retries" in (ev.error_message or "") and record["generation"]["error"]
    ev, _ = page["r4"]
    assert ev.status == "failed" and "no 'input'" in (ev.error_message or "")
    assert sum(1 for r in ports.judge.requests if r.messages[-1][1] == "lyon") == 2  # tried twice


def test_a_schedule_may_override_the_generation_and_bad_templates_are_400s(ports: fakes.Ports):
    who = principal()
    dataset_id, version_id = generating_catalogue(ports, who)
    done = run_to_the_end(
        ports,
        who,
        dataset_id,
        version_id,
        generation={"provider": "openai", "model": "other", "messages": [{"content": "{{record.input}}!"}]},
    )
    assert done.generation is not None and done.generation.model == "other"
    assert ports.judge.requests[-1].messages == (("user", "rome!"),)
    with pytest.raises(InvalidRequestError, match=r"generation.messages\[0\].content: unknown placeholder"):
        schedule(
            ports, who, dataset_id, version_id, generation={"model": "m", "messages": [{"content": "{{x}}"}]}
        )
    with pytest.raises(InvalidRequestError, match="generation template needs the record field 'context'"):
        schedule(
            ports,
            who,
            dataset_id,
            version_id,
            generation={"provider": "openai", "model": "m", "messages": [{"content": "{{record.context}}"}]},
        )


def test_a_generating_run_needs_no_output_but_the_fields_its_template_reads(ports: fakes.Ports):
    who = principal()
    dataset_id, version_id = generating_catalogue(ports, who)
    run, warnings = schedule(ports, who, dataset_id, version_id)
    assert warnings == [] and run.generation is not None and run.cache is True


def test_every_model_the_docs_name_has_a_price():
    from pathlib import Path

    from assay_service.domain.pricing import cost_usd

    docs = Path(__file__).resolve().parents[2] / "docs"
    text = "".join((docs / name).read_text() for name in ("judges.md", "generation.md", "cost.md"))
    models = set(re.findall(r'"model":\s*"([A-Za-z0-9][^"]*)"', text))
    models |= set(re.findall(r'"(?:openai|bedrock):([^"]+)"', text))
    assert "gpt-4o-mini" in models and "anthropic.claude-3-5-haiku-20241022-v1:0" in models
    assert sorted(m for m in models if cost_usd(m, 1000, 1000) is None) == []


def test_a_run_cancelled_while_its_batch_generates_records_nothing(
    ports: fakes.Ports, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("assay_service.domain.scoring.CONTINUE_CHECK_S", 0.0)
    who = principal()
    run, _ = schedule(ports, who, *generating_catalogue(ports, who, concurrency=1), batch_size=3)
    workflow.prepare(who.tenant_id, run.id, ports=ports)

    def answer(request):
        if runs.get_run(who, run.id, ports=ports).status == "running":
            runs.cancel_run(who, run.id, ports=ports)
        return "X"

    ports.judge.answer = answer
    [batch] = batches(ports, who, run.id)
    assert score(ports, who, run.id, batch).outcome == "inactive"
    assert len(ports.judge.requests) == 1  # the calls after the cancel were not made
    stopped = runs.get_run(who, run.id, ports=ports)
    assert (stopped.status, stopped.completed_count, stopped.failed_count) == ("cancelled", 0, 0)


def test_a_reply_with_a_lone_surrogate_is_stored_with_a_replacement_character():
    from assay_service.domain.generation import clean_text

    assert clean_text("Paris \ud83c\uddeb\ud83c\uddf7 ok") == "Paris 🇫🇷 ok"  # a valid pair stays
    cleaned = clean_text("cut mid-emoji \ud83d")
    assert cleaned == "cut mid-emoji \ufffd" and cleaned.encode("utf-8")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"messages": [{"content": "x" * 19_000}] * 10}, "over the 100,000 a generation block may hold"),
        ({"response_format": {"type": "banana"}}, "generation.response_format: not a valid JSON Schema"),
        ({"model": "   "}, "generation.model"),
    ],
)
def test_a_generation_block_too_large_or_with_a_bad_schema_is_a_400_not_a_500(
    ports: fakes.Ports, change, message
):
    who = principal()
    dataset_id, version_id = generating_catalogue(ports, who)
    with pytest.raises(InvalidRequestError, match=message):
        schedule(
            ports, who, dataset_id, version_id, generation={"provider": "openai", "model": "m", **change}
        )
    with pytest.raises(InvalidRequestError, match=message):
        generating_catalogue(ports, who, **change)


def test_metadata_placeholders_warn_and_a_record_without_its_field_keeps_no_output(ports: fakes.Ports):
    who = principal()
    records = [
        {
            "id": "a",
            "input": "paris",
            "output": "own",
            "golden_answer": "ROME",
            "metadata": {"input": "rome"},
        },
        {"id": "b", "input": "lyon", "output": "another", "golden_answer": "LYON"},
    ]
    dataset_id, version_id = generating_catalogue(
        ports, who, records=records, messages=[{"content": "{{record.metadata.input}}"}]
    )
    run, warnings = schedule(ports, who, dataset_id, version_id)
    assert [(w["code"], w["field"]) for w in warnings] == [("unchecked_field", "metadata.input")]
    workflow.prepare(who.tenant_id, run.id, ports=ports)
    for batch in batches(ports, who, run.id):
        score(ports, who, run.id, batch)
    page = {record["id"]: (ev, record) for ev, record in evaluations(ports, who, run.id)}
    assert page["a"][1]["output"] == "ROME"  # metadata's input, not the record's
    ev, record = page["b"]
    assert ev.status == "failed" and record["output"] is None  # not the dataset's answer
    assert "no 'input'" in record["generation"]["error"]


def test_a_model_without_a_price_makes_its_cost_unknown_not_free(ports: fakes.Ports):
    from assay_service.models.api import EvalRunResponse

    who = principal()
    done = run_to_the_end(ports, who, *generating_catalogue(ports, who))  # the fakes price nothing
    breakdown = EvalRunResponse.of(done).cost_breakdown
    assert breakdown is not None and breakdown.generation is None and breakdown.total is None
    assert breakdown.judging == 0.0  # no judge was called


def test_the_seed_views_show_the_generated_answers_and_the_model_under_test(ports: fakes.Ports):
    from assay_service.services import compat

    who = principal()
    done = run_to_the_end(ports, who, *generating_catalogue(ports, who))
    aegis = compat.aegis_run(who, done.id, ports=ports)
    assert aegis["model_slug"] == "gpt-4o-mini"
    assert [e["record"]["output"] for e in aegis["evaluations"]] == ["PARIS", "LYON", "ROME"]
    aymara = compat.aymara_run(done, None, with_responses=True, ports=ports)
    assert [r["content"] for r in aymara["responses"]] == ["PARIS", "LYON", "ROME"]


def test_an_answers_latency_is_the_answered_calls_own_not_its_retries(
    ports: fakes.Ports, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("assay_service.services.model_calls.BACKOFF_BASE_S", 0.3)
    failed = set()

    def answer(request):
        prompt = request.messages[-1][1]
        if prompt not in failed:  # each record's first call is throttled
            failed.add(prompt)
            raise TransientScoringError("model endpoint HTTP 429: slow down")
        return prompt.upper()

    ports.judge.answer = answer
    who = principal()
    done = run_to_the_end(ports, who, *generating_catalogue(ports, who, concurrency=3))
    latencies = [record["generation"]["latency_ms"] for _, record in evaluations(ports, who, done.id)]
    assert len(latencies) == 3 and all(0 <= ms < 200 for ms in latencies)  # not the ≥ 300 ms wait


def test_a_batch_reads_its_judges_cached_verdicts_at_once(ports: fakes.Ports):
    who = principal()
    dataset, _ = catalog.create_dataset(
        who,
        CreateDatasetRequest.model_validate(
            {"name": "j", "records": [{"id": f"r{i}", "prompt": "q?", "output": f"a{i}"} for i in range(4)]}
        ),
        ports=ports,
    )
    _, version = catalog.create_eval(
        who,
        CreateEvalRequest.model_validate(
            {
                "name": "judged",
                "metrics": [{"name": "relevant", "scorer": "answer_relevance"}],
                "judge": {"provider": "openai", "model": "gpt-4o-mini"},
            }
        ),
        ports=ports,
    )
    assert version is not None
    first = run_to_the_end(ports, who, dataset.id, version.id)
    asked = len(ports.judge.calls)
    again = run_to_the_end(ports, who, dataset.id, version.id)
    assert asked == 4 and len(ports.judge.calls) == 4  # every verdict came from the cache
    assert (first.cache_misses, again.cache_hits) == (4, 4)
    assert ports.response_cache.gets == 0  # read ahead in one get_many per batch, none one by one


def test_item_placeholders_read_the_item_a_record_carries() -> None:
    """OpenAI Evals runs keep each item in ``metadata["item"]``; ``{{item.a.b}}`` reads it,
    non-text values as JSON, and a path the item lacks is a missing field."""
    record = RECORD.model_copy(update={"metadata": {"item": {"q": "2+2?", "ctx": {"n": [1, 2]}}}})
    check_template("{{item.q}} {{ item.ctx.n }}")
    assert render("{{item.q}} / {{item.ctx.n}} / {{item.ctx.n.1}}", record) == "2+2? / [1, 2] / 2"
    with pytest.raises(MissingFieldError, match="'nope'"):
        render("{{item.nope}}", record)
