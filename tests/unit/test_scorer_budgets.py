"""Budgets on what a tenant writes into an eval (docs/scorers.md "Budgets", decision 0010).

GIVEN a regex or JSON Schema that takes exponential time WHEN a batch is scored THEN each
evaluation stops at its budget and fails saying so, the batch goes on, the circuit breaker
bounds what one metric can cost the batch, and a run that stops being ``running`` stops
the scoring loop."""

from __future__ import annotations

import json
import re
import sys
import time
import uuid

import pytest
from assay_service.domain import scoring
from assay_service.domain.scorers import base, budgets, get_scorer, validate_args
from assay_service.domain.scorers.budgets import BudgetExceededError
from assay_service.domain.scorers.jsonschema_lite import first_violation
from assay_service.errors import InvalidRecordError
from assay_service.models.domain import Metric, Record
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

HOSTILE_TEXT = "a" * 40 + "!"
# Exponential for a backtracking matcher: ``regex`` needs 2**40 steps for these, as ``re``
# does. (``(a+)+$`` is the textbook example; ``regex`` happens to optimize that one.)
CATASTROPHIC = ["(a|a)+$", "(a|aa)+$", "(aa|a)+$"]
# 96 bytes as written: its anyOf refers to itself twice, 2**32 branches to _MAX_DEPTH.
RECURSIVE_SCHEMA = json.loads(
    '{"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}'
)
BUDGET_S = budgets.REGEX_BUDGET_MS / 1000
SLACK_S = 0.5  # a shared, loaded machine: the budget is wall-clock


def run(name: str, record: dict, **args):
    spec = get_scorer(name)
    assert spec is not None
    return spec(record, validate_args(spec, args))


def batch(metrics: list[Metric], outputs: list[str], **kw) -> scoring.BatchOutcome:
    records = [
        (i, Record(id=f"r{i}", trace_id=uuid.uuid4(), output=text, golden_answer="x"))
        for i, text in enumerate(outputs)
    ]
    return scoring.score_batch(
        run_id=uuid.uuid4(), project_id=uuid.uuid4(), metrics=metrics, records=records, **kw
    )


# ------------------------------------------------------------------ the regex scorer
@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_catastrophic_pattern_stops_at_its_budget_and_says_so(pattern):
    started = time.perf_counter()
    with pytest.raises(BudgetExceededError) as caught:
        run("regex", {"output": HOSTILE_TEXT}, pattern=pattern)
    elapsed = time.perf_counter() - started
    assert BUDGET_S * 0.9 <= elapsed < BUDGET_S + SLACK_S
    assert caught.value.message == (
        f"regex: pattern exceeded its {budgets.REGEX_BUDGET_MS} ms budget on this record's "
        "output (41 characters)"
    )


def test_the_attackers_pattern_no_longer_pins_a_worker():
    # (a+)+$ over "a"*40+"!": 300 s x 3 attempts under `re`; an answer at once now.
    started = time.perf_counter()
    result = run("regex", {"output": HOSTILE_TEXT}, pattern="(a+)+$")
    assert result.score == 0.0 and result.label == "no_match"
    assert time.perf_counter() - started < BUDGET_S


def test_a_budget_overrun_is_a_failed_evaluation_with_the_reason_and_the_batch_goes_on():
    metrics = [
        Metric(name="evil", scorer="regex", args={"pattern": "(a|a)+$"}),
        Metric(name="len", scorer="length", args={"max": 100}),
    ]
    outcome = batch(metrics, [HOSTILE_TEXT, "fine"])
    by = {(e.record_index, e.metric_name): e for e in outcome.evaluations}
    assert by[0, "evil"].status == "failed" and not by[0, "evil"].is_passed
    assert "exceeded its 100 ms budget" in by[0, "evil"].error_message
    assert by[1, "evil"].status == "complete" and by[1, "evil"].label == "no_match"
    assert by[0, "len"].status == by[1, "len"].status == "complete"
    assert (outcome.completed, outcome.failed) == (1, 1)


@pytest.mark.parametrize(
    ("pattern", "flags"),
    [
        (r"^\d{4}-\d{2}-\d{2}$", []),
        (r"total", ["i"]),
        (r"^b$", ["m"]),
        (r"a.b", ["s"]),
        (r"\d+ \s* eur  # amount", ["x", "i"]),
        (r"(?P<w>\w)(?P=w)", []),
        (r"(?<=a)b", []),
        (r"colou?r\b", []),
        (r"^.*$", []),
        (r"[^\W\d_]+", []),
        (r"(a|b)*c", []),
    ],
)
@settings(derandomize=True, max_examples=60, deadline=None, database=None)
@given(text=st.text(alphabet="ab\ncdEUR 0123-456_.é\u00df\u0130totalTOTAL", max_size=30))
def test_patterns_mean_what_they_mean_under_re(pattern, flags, text):
    """The regex package runs users' patterns with ``re``'s semantics (search and
    fullmatch, flags i/m/s/x): the same verdict as ``re`` on every text."""
    re_flags = 0
    for flag in flags:
        re_flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[flag]
    compiled = re.compile(pattern, re_flags)
    for mode in ("search", "fullmatch"):
        expected = getattr(compiled, mode)(text) is not None
        assert run("regex", {"output": text}, pattern=pattern, flags=flags, mode=mode).score == float(
            expected
        ), (pattern, flags, mode, text)


@pytest.mark.parametrize(
    "pattern",
    [
        "((a{1000}){1000}){1000}",  # regex would try to allocate ~200 GB compiling it
        "x{100001}",
        "(ab{2,400}){300}",
    ],
)
def test_patterns_that_unroll_past_the_limit_are_rejected_at_validation(pattern):
    started = time.perf_counter()
    with pytest.raises(ValidationError, match="unroll to more than 100,000"):
        validate_args(get_scorer("regex"), {"pattern": pattern})
    assert time.perf_counter() - started < 0.5


def test_re_syntax_is_the_contract():
    spec = get_scorer("regex")
    for bad in ["(unclosed", r"\p{L}+", "a**"]:  # \p{L} is regex's extension, not re's
        with pytest.raises(ValidationError, match="invalid regular expression"):
            validate_args(spec, {"pattern": bad})
    # Text re reads as literal braces and regex as fuzzy matching: rejected, not reread.
    for fuzzy in ["x{e}", "(?:abc){e<=1}", "a(b{i<=1,d<=1}|c)"]:
        with pytest.raises(ValidationError, match="fuzzy-matching constraint"):
            validate_args(spec, {"pattern": fuzzy})
    for literal in ["^{.*}$", r"\{e\}", "[{e}]", "a{2}"]:
        validate_args(spec, {"pattern": literal})
    # Under x, "#" starts a comment: the pattern is checked with its flags.
    validate_args(spec, {"pattern": "(a #)"})
    with pytest.raises(ValidationError, match="with flags x"):
        validate_args(spec, {"pattern": "(a #)", "flags": ["x"]})


def test_a_stored_metric_whose_args_no_longer_validate_fails_its_evaluations_only():
    metrics = [
        Metric(name="old", scorer="regex", args={"pattern": "(a{1000}){1000}"}),
        Metric(name="len", scorer="length", args={"max": 100}),
    ]
    outcome = batch(metrics, ["a", "b"])
    old = [e for e in outcome.evaluations if e.metric_name == "old"]
    assert [e.status for e in old] == ["failed", "failed"]
    assert "no longer valid" in old[0].error_message and "unroll" in old[0].error_message
    assert all(e.status == "complete" for e in outcome.evaluations if e.metric_name == "len")


# ------------------------------------------------------------------ the circuit breaker
def test_the_circuit_breaker_bounds_a_hostile_metric_in_a_batch():
    """100 hostile records: 3 overruns, then the metric's other 97 evaluations fail at
    once — the batch takes ~3 budgets, not 100."""
    metrics = [
        Metric(name="evil", scorer="regex", args={"pattern": "(a|a)+$"}),
        Metric(name="exact", scorer="exact_match"),
    ]
    started = time.perf_counter()
    outcome = batch(metrics, [HOSTILE_TEXT] * 100)
    elapsed = time.perf_counter() - started
    assert elapsed < budgets.BREAKER_OVERRUNS * BUDGET_S + 1.0
    evil = [e for e in outcome.evaluations if e.metric_name == "evil"]
    assert all(e.status == "failed" for e in evil)
    overran = [e for e in evil if "exceeded its 100 ms budget" in e.error_message]
    skipped = [e for e in evil if "circuit breaker" in e.error_message]
    assert len(overran) == budgets.BREAKER_OVERRUNS and len(skipped) == 97
    assert skipped[0].error_message == (
        "regex: not evaluated: this metric exceeded its budget on 3 records of this batch (circuit breaker)"
    )
    # Another metric of the same batch is unaffected.
    assert all(e.status == "complete" for e in outcome.evaluations if e.metric_name == "exact")


def test_the_breaker_counts_per_metric():
    metrics = [
        Metric(name="evil", scorer="regex", args={"pattern": "(a|a)+$"}),
        Metric(name="tame", scorer="regex", args={"pattern": "a+!"}),
    ]
    outcome = batch(metrics, [HOSTILE_TEXT] * 5)
    tame = [e for e in outcome.evaluations if e.metric_name == "tame"]
    assert all(e.status == "complete" and e.score == 1.0 for e in tame)


def test_the_batch_budget_bounds_evaluations_that_each_stay_under_theirs(monkeypatch):
    """A pattern that takes just under its budget on every record trips no breaker; the
    batch's budget for budgeted scorers bounds it instead."""
    spec = get_scorer("regex")

    def slow(record, args):
        time.sleep(0.02)
        return base.ScoreResult(1.0, "match", "slow but under budget")

    monkeypatch.setitem(
        base._REGISTRY,
        "regex",
        base.ScorerSpec(spec.name, spec.evaluator_type, spec.args_model, slow, spec.summary, budgeted=True),
    )
    metrics = [Metric(name="slow", scorer="regex", args={"pattern": "a"})]
    started = time.perf_counter()
    outcome = batch(metrics, ["a"] * 200, batch_budget_s=0.2)
    assert time.perf_counter() - started < 0.2 + 1.0  # 200 x 20 ms = 4 s unbounded
    done = [e for e in outcome.evaluations if e.status == "complete"]
    refused = [e for e in outcome.evaluations if e.status == "failed"]
    assert 5 <= len(done) <= 11 and len(done) + len(refused) == 200
    assert refused[0].error_message == (
        "regex: not evaluated: this batch spent its 0.2 s budget for regex and json_schema "
        "metrics (use a smaller batch_size)"
    )


def test_scorers_that_run_no_user_code_are_not_budgeted():
    budgeted = {
        name
        for name in ("regex", "json_schema", "exact_match", "contains", "rouge")
        if get_scorer(name).budgeted
    }
    assert budgeted == {"regex", "json_schema"}


# ------------------------------------------------------------------ json_schema
def test_the_recursive_schema_passes_validation_then_fails_fast_on_its_step_budget():
    assert len(json.dumps(RECURSIVE_SCHEMA)) == 96
    scoring.check_metrics([Metric(name="s", scorer="json_schema", args={"schema": RECURSIVE_SCHEMA})])
    started = time.perf_counter()
    with pytest.raises(BudgetExceededError) as caught:
        run("json_schema", {"output": "1"}, schema=RECURSIVE_SCHEMA)
    assert time.perf_counter() - started < budgets.SCHEMA_TIME_BUDGET_MS / 1000 + SLACK_S
    assert caught.value.message in (
        f"json_schema: validation exceeded its {budgets.SCHEMA_STEP_BUDGET:,}-step budget on "
        "this record's output",
        f"json_schema: validation exceeded its {budgets.SCHEMA_TIME_BUDGET_MS} ms budget on "
        "this record's output",
    )


def test_the_step_budget_is_deterministic():
    with pytest.raises(BudgetExceededError, match="5,000-step budget"):
        first_violation(1, RECURSIVE_SCHEMA, steps=5_000)
    # Two levels of two branches: $ref, anyOf, 2 x ($ref, anyOf, 2 x type) = 10 steps.
    shallow = {
        "$defs": {
            "a": {"anyOf": [{"$ref": "#/$defs/b"}, {"$ref": "#/$defs/b"}]},
            "b": {"anyOf": [{"type": "string"}, {"type": "string"}]},
        },
        "$ref": "#/$defs/a",
    }
    assert str(first_violation(1, shallow, steps=10)) == ("$: 1 is not valid under any of the given schemas")
    with pytest.raises(BudgetExceededError, match="9-step budget"):
        first_violation(1, shallow, steps=9)


@pytest.mark.wall_clock  # tools/run_tests.sh runs it without coverage's tracer
@pytest.mark.skipif(
    sys.gettrace() is not None, reason="its 250 ms wall-clock budget means nothing under a tracer (coverage)"
)
def test_the_densest_output_a_record_holds_fits_the_step_budget():
    # 33,000 numbers in 99,000 characters (a record's text is at most 100,000), three
    # keywords each: 2 + 3 x 33,000 = 99,002 steps.
    output = json.dumps([0] * 33_000)
    assert len(output) <= 100_000
    schema = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}}
    assert run("json_schema", {"output": output}, schema=schema).label == "valid"
    with pytest.raises(BudgetExceededError, match="99,001-step budget"):
        first_violation([0] * 33_000, schema, steps=99_001)
    # 1,000 objects with two keywords on each of 30 properties: about 63,000 steps.
    items = [{f"k{j}": j for j in range(30)} for _ in range(1000)]
    schema = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["k0"],
            "properties": {f"k{j}": {"type": "integer", "minimum": 0} for j in range(30)},
        },
    }
    assert run("json_schema", {"output": json.dumps(items)}, schema=schema).label == "valid"


def test_unique_items_over_a_long_array_is_one_pass():
    distinct = [{"id": i, "tags": [i, str(i)]} for i in range(5000)]
    assert run("json_schema", {"output": json.dumps(distinct)}, schema={"uniqueItems": True}).label == "valid"
    # JSON equality: 1 == 1.0, true != 1, objects compare by content.
    assert (
        run("json_schema", {"output": '[{"a": [1]}, {"a": [1.0]}]'}, schema={"uniqueItems": True}).label
        == "invalid"
    )
    assert (
        run("json_schema", {"output": "[1, true, [1], [true], {}]"}, schema={"uniqueItems": True}).label
        == "valid"
    )


@pytest.mark.parametrize(
    ("schema", "instance"),
    [
        ({"type": "string", "pattern": "(a|a)+$"}, HOSTILE_TEXT),
        ({"type": "object", "patternProperties": {"(a|a)+$": {"type": "integer"}}}, {HOSTILE_TEXT: 1}),
        (
            {"type": "object", "patternProperties": {"(a|a)+$": {}}, "additionalProperties": False},
            {HOSTILE_TEXT: 1},
        ),
        # Many patterns share one budget: 50 x 100 ms is not allowed.
        ({"allOf": [{"pattern": f"(a|a)+$|z{i}"} for i in range(50)]}, HOSTILE_TEXT),
    ],
)
def test_patterns_inside_a_schema_are_bounded(schema, instance):
    started = time.perf_counter()
    with pytest.raises(
        BudgetExceededError,
        match=r"json_schema: pattern .* exceeded the "
        r"100 ms regex budget on this record's output",
    ):
        run("json_schema", {"output": json.dumps(instance)}, schema=schema)
    assert time.perf_counter() - started < BUDGET_S + SLACK_S


def test_schema_patterns_are_checked_like_the_regex_scorers():
    spec = get_scorer("json_schema")
    for schema in ({"pattern": "((a{1000}){1000}){1000}"}, {"patternProperties": {"(x{1000}){1000}": {}}}):
        with pytest.raises(ValidationError, match="unroll to more than"):
            validate_args(spec, {"schema": schema})


def test_a_batch_with_the_recursive_schema_trips_the_breaker():
    metrics = [Metric(name="rec", scorer="json_schema", args={"schema": RECURSIVE_SCHEMA})]
    started = time.perf_counter()
    outcome = batch(metrics, ["1"] * 50)
    per_evaluation = budgets.SCHEMA_TIME_BUDGET_MS / 1000
    assert time.perf_counter() - started < budgets.BREAKER_OVERRUNS * per_evaluation + 1.0
    assert sum("circuit breaker" in e.error_message for e in outcome.evaluations) == 47


# ------------------------------------------------------------------ stopping a batch
def test_should_continue_stops_the_loop_within_a_check(monkeypatch):
    spec = get_scorer("length")
    calls = []

    def slow(record, args):
        time.sleep(0.01)
        return base.ScoreResult(1.0, "within", "ok")

    monkeypatch.setitem(
        base._REGISTRY,
        "length",
        base.ScorerSpec(spec.name, spec.evaluator_type, spec.args_model, slow, spec.summary),
    )
    monkeypatch.setattr(scoring, "CONTINUE_CHECK_S", 0.1)

    def still_running() -> bool:
        calls.append(time.perf_counter())
        return len(calls) < 3

    started = time.perf_counter()
    outcome = batch(
        [Metric(name="len", scorer="length", args={"max": 5})], ["a"] * 500, should_continue=still_running
    )
    elapsed = time.perf_counter() - started
    assert outcome.stopped and outcome.evaluations == []  # 500 x 10 ms = 5 s otherwise
    assert len(calls) == 3 and elapsed < 0.3 + SLACK_S
    # Asked at most once per CONTINUE_CHECK_S.
    assert all(b - a >= 0.1 for a, b in zip(calls, calls[1:], strict=False))


def test_should_continue_is_not_asked_by_a_quick_batch():
    def never() -> bool:
        raise AssertionError("asked")

    outcome = batch([Metric(name="exact", scorer="exact_match")], ["x"] * 100, should_continue=never)
    assert not outcome.stopped and len(outcome.evaluations) == 100


def test_budget_errors_are_record_errors():
    # The scoring loop records InvalidRecordError as a failed evaluation with its message.
    assert issubclass(BudgetExceededError, InvalidRecordError)


class _StarvedOnce:
    """A pattern whose first match times out without this thread computing: what regex's
    process-wide clock does when other threads spend the budget meanwhile."""

    def __init__(self) -> None:
        self.calls = 0

    def search(self, text: str, **_: object) -> str:
        self.calls += 1
        if self.calls == 1:
            raise TimeoutError("regex timed out")
        return text


def test_bounded_search_retries_a_timeout_this_thread_did_not_compute():
    # GIVEN a match that times out once while this thread spent no CPU on it
    pattern = _StarvedOnce()
    # WHEN it is run under a budget THEN the starved attempt is not an overrun
    assert budgets.bounded_search(pattern, "42", 0.1) == "42"  # type: ignore[arg-type]
    assert pattern.calls == 2


def test_bounded_search_fails_a_pattern_that_spends_its_budget_at_the_first_attempt():
    # GIVEN a catastrophic pattern WHEN it runs on a hostile text
    started = time.thread_time()
    with pytest.raises(TimeoutError):
        budgets.bounded_search(budgets.compile_pattern("(a|a)+$"), "a" * 40 + "!", 0.05)
    # THEN it is refused after one budget of this thread's CPU, not MATCH_ATTEMPTS of them
    assert time.thread_time() - started < 0.05 * 2
