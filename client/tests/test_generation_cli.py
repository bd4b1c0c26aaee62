"""Runs that generate (docs/generation.md) from the CLI: the model-under-test flags of `assay runs
schedule` and `assay ci` build the run's `generation` over the eval version's; prompt files are
read (and checked) before any request; `assay runs sweep` schedules one run per model × prompt and
compares them; run details, the gate's Markdown and the HTML report show the usage and cost per
model; eval.yaml's `generation` block reaches the API. Against the scripted loopback API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from assay import cli
from assay._format import run_summary
from assay.gate import decide, markdown
from assay.models import EvalRun, Evaluation
from assay.report import render

from cli_support import DS_ID, EVV_ID, RUN_ID, ci_args, run_cli, run_json
from fake_api import envelope, fake_api, generated_run_id, reply, schema_fields, serve_runs, unknown_fields

EVAL_ID = "55555555-5555-4555-8555-555555555555"
VERSION_GENERATION = {
    "provider": "openai",
    "model": "gpt-4o-mini",
    "system": "Answer about {{record.context}}.",
    "messages": [{"role": "user", "content": "Q: {{record.input}}"}],
    "temperature": 0.0,
    "max_tokens": 512,
    "seed": None,
    "stop": None,
    "concurrency": 4,
}
SCHEDULE = ["runs", "schedule", "--dataset", DS_ID, "--eval-version", EVV_ID]


def eval_version(generation: dict | None = VERSION_GENERATION) -> tuple:
    return reply(
        200,
        {
            "id": EVV_ID,
            "eval_id": EVAL_ID,
            "version": 1,
            "metrics": [{"name": "exact", "scorer": "exact_match", "threshold": 1.0}],
            "generation": generation,
        },
    )


def usage(gen_cost: float = 0.002, judge_cost: float = 0.01, model: str = "gpt-4o-mini") -> dict:
    return {
        "per_model_usage": [
            {
                "role": "generator",
                "provider": "openai",
                "model": model,
                "invocations": 3,
                "cached_responses": 1,
                "prompt_tokens": 1200,
                "completion_tokens": 340,
                "cached_tokens": 0,
                "cost": gen_cost,
            },
            {
                "role": "judge",
                "provider": "openai",
                "model": "gpt-4o",
                "invocations": 4,
                "cached_responses": 0,
                "prompt_tokens": 2000,
                "completion_tokens": 100,
                "cached_tokens": 0,
                "cost": judge_cost,
            },
        ],
        "cost_breakdown": {
            "generation": gen_cost,
            "judging": judge_cost,
            "infrastructure": 0.0001,
            "total": gen_cost + judge_cost + 0.0001,
        },
        "total_cost": gen_cost + judge_cost,
        "estimated_aws_cost": 0.0001,
        "cache_hits": 1,
        "cache_misses": 6,
    }


def aggregates(exact: float, f1: float) -> dict:
    return {
        name: {"metric": name, "scorer": scorer, "mean": mean, "threshold": 0.5, "count": 4, "passed": 2}
        for name, scorer, mean in (("exact", "exact_match", exact), ("f1", "token_f1", f1))
    }


@pytest.fixture
def prompts(tmp_path):
    (tmp_path / "terse.txt").write_text("Answer in one word: {{record.input}}\n")
    (tmp_path / "friendly.txt").write_text("Be kind. {{record.input}}\n")
    (tmp_path / "system.txt").write_text("You answer questions about {{record.context}}.\n")
    return tmp_path


# ---------------------------------------------------------------------------- runs schedule / ci
def test_model_flags_build_the_runs_generation_over_the_eval_versions(prompts, capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version())
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        code = run_cli(
            api.url,
            *SCHEDULE,
            "--model",
            "gpt-4o",
            "--prompt-file",
            str(prompts / "terse.txt"),
            "--system-file",
            str(prompts / "system.txt"),
            "--temperature",
            "0.5",
            "--max-tokens",
            "64",
            "--seed",
            "7",
            "--no-cache",
        )
        [scheduled] = api.calls("POST", f"/v1/datasets/{DS_ID}/runs")
    assert code == 0
    body = scheduled.json()
    assert unknown_fields(body) == []
    assert body == {
        "eval_version_id": EVV_ID,
        "cache": False,
        "generation": {
            "provider": "openai",  # the eval version's, kept
            "model": "gpt-4o",
            "system": "You answer questions about {{record.context}}.",
            "messages": [{"role": "user", "content": "Answer in one word: {{record.input}}"}],
            "temperature": 0.5,
            "max_tokens": 64,
            "seed": 7,
            "concurrency": 4,
        },
    }
    assert (
        "model under test: openai gpt-4o (temperature 0.5, max_tokens 64, seed 7)" in capsys.readouterr().err
    )


def test_model_alone_keeps_the_versions_prompt_and_provider_defaults_to_bedrock_without_one():
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version())
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        assert run_cli(api.url, *SCHEDULE, "--model", "gpt-4.1") == 0
        kept = api.calls("POST", f"/v1/datasets/{DS_ID}/runs")[-1].json()
        assert kept["generation"] == {
            **{k: v for k, v in VERSION_GENERATION.items() if v is not None},
            "model": "gpt-4.1",
        }
        assert "cache" not in kept  # only --no-cache sends it
        # an eval version without a generation block: the API's defaults, and its provider
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version(None))
        assert run_cli(api.url, *SCHEDULE, "--model", "amazon.nova-lite-v1:0") == 0
        assert api.calls("POST", f"/v1/datasets/{DS_ID}/runs")[-1].json()["generation"] == {
            "model": "amazon.nova-lite-v1:0",
            "provider": "bedrock",
        }
        assert run_cli(api.url, *SCHEDULE, "--model", "llama3", "--provider", "openai") == 0
        assert api.calls("POST", f"/v1/datasets/{DS_ID}/runs")[-1].json()["generation"] == {
            "model": "llama3",
            "provider": "openai",
        }


def test_no_cache_without_a_model_only_turns_the_cache_off():
    with fake_api() as api:
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        assert run_cli(api.url, *SCHEDULE, "--no-cache") == 0
        [scheduled] = api.calls("POST", f"/v1/datasets/{DS_ID}/runs")
        assert scheduled.json() == {"eval_version_id": EVV_ID, "cache": False}
        assert not api.calls("GET", f"/v1/eval-versions/{EVV_ID}")


@pytest.mark.parametrize(
    "flags",
    [
        ["--prompt-file", "p.txt"],
        ["--system-file", "s.txt"],
        ["--temperature", "0.2"],
        ["--provider", "openai"],
    ],
)
def test_a_generation_flag_without_model_is_a_usage_error_before_any_request(flags, capsys):
    with fake_api() as api:
        assert run_cli(api.url, *SCHEDULE, *flags) == 2
        assert api.seen == []
    err = capsys.readouterr().err
    assert (
        err == f"error: {flags[0]} needs --model: the model that answers the prompt "
        "(e.g. --model gpt-4o-mini --provider openai)\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "No such file or directory"),
        (b"  \n\n", "the file is empty"),
        (b"\xff\xfe{{record.input}}", "not UTF-8 text"),
    ],
)
def test_a_bad_prompt_file_is_one_line_and_nothing_is_scheduled(content, message, tmp_path, capsys):
    path = tmp_path / "prompt.txt"
    if content is not None:
        path.write_bytes(content)
    with fake_api() as api:
        assert run_cli(api.url, *SCHEDULE, "--model", "m", "--prompt-file", str(path)) == 2
        assert api.seen == []
    err = capsys.readouterr().err
    assert err.startswith(f"error: --prompt-file {path}: {message}") and err.count("\n") == 1
    assert "Traceback" not in err


def test_a_prompt_file_that_is_a_directory_is_an_error_too(tmp_path, capsys):
    with fake_api() as api:
        assert run_cli(api.url, *SCHEDULE, "--model", "m", "--prompt-file", str(tmp_path)) == 2
        assert api.seen == []
    assert capsys.readouterr().err.startswith(f"error: --prompt-file {tmp_path}: ")


def test_a_prompt_without_placeholder_is_sent_with_a_warning(tmp_path, capsys):
    (tmp_path / "fixed.txt").write_text("What is the capital of France?")
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version(None))
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        assert run_cli(api.url, *SCHEDULE, "--model", "m", "--prompt-file", str(tmp_path / "fixed.txt")) == 0
    assert "has no {{record.…}} placeholder: every record is sent the same prompt" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags", [["--temperature", "2.5"], ["--max-tokens", "0"], ["--seed", "-1"], ["--provider", "azure"]]
)
def test_out_of_range_sampling_is_an_argparse_usage_error(flags, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--api-key", "k", *SCHEDULE, "--model", "m", *flags])
    assert caught.value.code == 2
    assert "usage: assay runs schedule" in capsys.readouterr().err


def test_ci_sends_the_model_under_test_and_its_summary_names_it(prompts, tmp_path):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version(None))
        done = run_json(
            "completed",
            4,
            verdict="pass",
            result=1.0,
            aggregate_results={"exact": {"metric": "exact", "mean": 1.0, "threshold": 0.5, "count": 4}},
            generation={"provider": "openai", "model": "gpt-4o-mini"},
            **usage(),
        )
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, done))
        api.on("GET", f"/v1/eval-runs/{RUN_ID}/export", (200, {"Content-Type": "application/x-ndjson"}, b""))
        args = ci_args(api.url, tmp_path, "--poll-interval", "0.01")
        args += [
            "--model",
            "gpt-4o-mini",
            "--provider",
            "openai",
            "--prompt-file",
            str(prompts / "terse.txt"),
        ]
        assert cli.main(args) == 0
        [scheduled] = api.calls("POST", f"/v1/datasets/{DS_ID}/runs")
    assert scheduled.json()["generation"] == {
        "model": "gpt-4o-mini",
        "provider": "openai",
        "messages": [{"role": "user", "content": "Answer in one word: {{record.input}}"}],
    }
    summary = (tmp_path / "summary.md").read_text()
    assert "model under test openai gpt-4o-mini, generation cost $0.0020" in summary
    assert "judge cost $0.0100" in summary
    assert 'name="run.model" value="openai gpt-4o-mini"' in (tmp_path / "junit.xml").read_text()
    assert "Model under test: openai gpt-4o-mini" in (tmp_path / "report.html").read_text()


def test_ci_records_a_bad_prompt_file_as_a_usage_error_in_its_reports(tmp_path, capsys):
    with fake_api() as api:
        args = ci_args(api.url, tmp_path, "--model", "m", "--prompt-file", str(tmp_path / "missing.txt"))
        assert cli.main(args) == 2
        assert api.seen == []
    assert "error: --prompt-file" in capsys.readouterr().err
    assert 'type="usage"' in (tmp_path / "junit.xml").read_text()


# ---------------------------------------------------------------------------- runs sweep
def _sweep_finish(body: dict, index: int) -> dict:
    """Run N of the sweep ends completed, with results that make run 2 the best."""
    means = [(0.5, 0.6), (0.25, 0.4), (0.75, 0.8), (0.5, 0.5)][index]
    return {
        "status": "completed",
        "completed_count": 4,
        "result": sum(means) / 2,
        "pass_rate": means[0],
        "verdict": "pass",
        "threshold": 0.5,
        "aggregate_results": aggregates(*means),
        **usage(gen_cost=0.001 * (index + 1), model=body["generation"]["model"]),
    }


def _sweep_args(prompts, *extra: str) -> list[str]:
    return [
        "runs",
        "sweep",
        "--dataset",
        DS_ID,
        "--eval-version",
        EVV_ID,
        "--model",
        "gpt-4o-mini",
        "--model",
        "gpt-4o",
        "--prompt-file",
        str(prompts / "terse.txt"),
        "--prompt-file",
        str(prompts / "friendly.txt"),
        *extra,
    ]


def test_sweep_schedules_one_run_per_model_and_prompt_then_compares_them(prompts, capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version())
        bodies = serve_runs(api, DS_ID, _sweep_finish)
        compare = {
            "run_id": generated_run_id(2),
            "baseline_run_id": generated_run_id(0),
            "verdict": "improved",
            "metrics": [{"metric_name": "exact", "mean_delta": 0.25, "significant": True}],
        }
        api.on("GET", f"/v1/eval-runs/{generated_run_id(2)}/compare", reply(200, compare))
        code = run_cli(api.url, *_sweep_args(prompts, "--wait", "--poll-interval", "0.01", "--no-cache"))
        [compared] = api.calls("GET", f"/v1/eval-runs/{generated_run_id(2)}/compare")
    out, err = capsys.readouterr()
    assert code == 0
    # 2 models × 2 prompts: four sibling runs, the API's shape, named after what each tries
    assert len(bodies) == 4 and all(unknown_fields(b) == [] for b in bodies)
    assert [
        (b["name"], b["generation"]["model"], b["generation"]["messages"][0]["content"]) for b in bodies
    ] == [
        ("sweep gpt-4o-mini terse", "gpt-4o-mini", "Answer in one word: {{record.input}}"),
        ("sweep gpt-4o-mini friendly", "gpt-4o-mini", "Be kind. {{record.input}}"),
        ("sweep gpt-4o terse", "gpt-4o", "Answer in one word: {{record.input}}"),
        ("sweep gpt-4o friendly", "gpt-4o", "Be kind. {{record.input}}"),
    ]
    for body in bodies:  # the rest of the eval version's block is kept; the cache is off for all
        assert body["eval_version_id"] == EVV_ID and body["cache"] is False
        assert body["generation"]["system"] == VERSION_GENERATION["system"]
        assert body["generation"]["provider"] == "openai"
    # the table: one row per run with its model, prompt, status, result, pass rate, metric means,
    # costs and tokens; the best run marked and named, checked against the runner-up
    lines = out.splitlines()
    header = next(line for line in lines if "prompt" in line and "status" in line)
    for column in (
        "result",
        "pass rate",
        "exact mean",
        "f1 mean",
        "gen. cost",
        "judge cost",
        "gen. tokens",
        "run",
    ):
        assert column in header
    rows = [line for line in lines if re.search(r"44444444-4444-4444-8444-\d{12}$", line)]
    assert len(rows) == 4 and [row.startswith("* ") for row in rows] == [False, False, True, False]
    assert re.search(
        r"\* gpt-4o\s+terse\s+completed\s+0\.775\s+75\.0%\s+0\.750\s+0\.800\s+\$0\.0030\s+\$0\.0100\s+1,540",
        out,
    )
    assert re.search(r"gpt-4o-mini\s+friendly\s+completed\s+0\.325\s+25\.0%", out)
    assert f"best run: sweep gpt-4o terse — result 0.775, pass rate 75.0% (run {generated_run_id(2)})" in out
    assert compared.query["baseline"] == [generated_run_id(0)]  # the runner-up (result 0.55)
    assert "vs the runner-up sweep gpt-4o-mini terse: significantly better on exact" in out
    assert "4 runs scheduled (2 model(s) × 2 prompt(s))" in err
    assert f"next: assay runs compare {generated_run_id(2)} --baseline {generated_run_id(0)}" in err


def test_sweep_json_lists_each_run_with_what_it_tried(prompts, capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version(None))
        serve_runs(api, DS_ID, _sweep_finish, running_polls=0)
        code = run_cli(api.url, "--json", *_sweep_args(prompts, "--wait", "--poll-interval", "0.01"))
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["count"] == 4 and doc["best_run_id"] == generated_run_id(2)
    assert [(i["model"], i["provider"], i["prompt_file"].rsplit("/", 1)[-1]) for i in doc["items"]] == [
        ("gpt-4o-mini", "bedrock", "terse.txt"),
        ("gpt-4o-mini", "bedrock", "friendly.txt"),
        ("gpt-4o", "bedrock", "terse.txt"),
        ("gpt-4o", "bedrock", "friendly.txt"),
    ]
    assert doc["items"][2]["run"]["cost_breakdown"]["generation"] == pytest.approx(0.003)
    assert doc["comparison"] is None  # the compare route answered 404: the table stands without it


def test_sweep_without_wait_lists_the_scheduled_runs_and_without_prompt_files_keeps_the_versions(capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version())
        bodies = serve_runs(api, DS_ID, _sweep_finish)
        args = ["runs", "sweep", "--dataset", DS_ID, "--eval-version", EVV_ID, "--name", "nightly"]
        code = run_cli(api.url, *args, "--model", "a", "--model", "b", "--model", "a")
        assert not [s for s in api.seen if s.method == "GET" and s.path.startswith("/v1/eval-runs/")]
    out = capsys.readouterr().out
    assert code == 0 and [b["name"] for b in bodies] == ["nightly a", "nightly b"]  # a repeated model once
    assert all(b["generation"]["messages"] == VERSION_GENERATION["messages"] for b in bodies)
    assert "(eval version's)" in out and "pending" in out and generated_run_id(1) in out


def test_sweep_exits_2_when_a_run_failed(prompts, capsys):
    def finish(body: dict, index: int) -> dict:
        if index == 1:
            return {"status": "failed", "error_message": "model endpoint HTTP 401"}
        return _sweep_finish(body, index)

    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version(None))
        serve_runs(api, DS_ID, finish, running_polls=0)
        assert run_cli(api.url, *_sweep_args(prompts, "--wait", "--poll-interval", "0.01")) == 2
    out, err = capsys.readouterr()
    assert re.search(r"gpt-4o-mini\s+friendly\s+failed", out)
    assert "error: 1 of 4 runs did not complete: sweep gpt-4o-mini friendly failed" in err
    assert "best run: sweep gpt-4o terse" in out


def test_sweep_exits_3_when_runs_outlast_the_timeout(prompts, capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version(None))
        serve_runs(api, DS_ID, _sweep_finish, running_polls=10_000)
        args = _sweep_args(prompts, "--wait", "--timeout", "0.1", "--poll-interval", "0.02")
        assert run_cli(api.url, *args) == 3
    out, err = capsys.readouterr()
    assert out.count("running") == 4 and "error: 4 of 4 runs still running after 0.1 s" in err


def test_sweep_stopped_by_an_api_error_names_the_runs_already_scheduled(prompts, capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-versions/{EVV_ID}", eval_version(None))
        bodies = serve_runs(api, DS_ID, _sweep_finish)
        serve = api.routes[("POST", f"/v1/datasets/{DS_ID}/runs")]

        def second_refused(seen):
            if bodies:
                return envelope(400, "request.invalid", "unknown placeholder {{x}}")
            return serve(seen)

        api.on("POST", f"/v1/datasets/{DS_ID}/runs", second_refused)
        assert run_cli(api.url, *_sweep_args(prompts)) == 2
    err = capsys.readouterr().err
    assert f"sweep stopped after 1 run(s) scheduled: {generated_run_id(0)}" in err
    assert "error: unknown placeholder {{x}}" in err


def test_sweep_needs_a_model_and_checks_its_files_first(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--api-key", "k", "runs", "sweep", "--dataset", DS_ID, "--eval-version", EVV_ID])
    assert caught.value.code == 2 and "--model" in capsys.readouterr().err
    with fake_api() as api:
        args = ["runs", "sweep", "--dataset", DS_ID, "--eval-version", EVV_ID, "--model", "m"]
        assert run_cli(api.url, *args, "--prompt-file", str(tmp_path / "nope.txt")) == 2
        assert api.seen == []
    assert "error: --prompt-file" in capsys.readouterr().err


# ---------------------------------------------------------------------------- run details, report
def _generated_run(**extra) -> EvalRun:
    return EvalRun.from_api(
        run_json(
            "completed",
            4,
            verdict="pass",
            result=0.8,
            threshold=0.5,
            pass_rate=0.75,
            aggregate_results=aggregates(0.75, 0.85),
            **{
                "generation": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.0, "seed": 7},
                **usage(),
                **extra,
            },
        )
    )


def test_runs_get_shows_usage_per_model_the_cost_split_and_the_cache(capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, _generated_run().raw))
        assert run_cli(api.url, "runs", "get", RUN_ID) == 0
    out = capsys.readouterr().out
    assert "model under test: openai gpt-4o-mini (temperature 0, seed 7)" in out
    assert re.search(r"generator\s+openai/gpt-4o-mini\s+3\s+1\s+1,200\s+340\s+\$0\.0020", out)
    assert re.search(r"judge\s+openai/gpt-4o\s+4\s+0\s+2,000\s+100\s+\$0\.0100", out)
    assert "response cache: 1 hits, 6 misses" in out
    assert "cost: generation $0.0020 + judging $0.0100 + infrastructure $0.0001 (est.) = total $0.0121" in out
    assert "judge cost $0.0100; generation cost $0.0020" in out


def test_a_model_without_a_price_says_so():
    run = _generated_run()
    run.per_model_usage[0].cost = None
    assert re.search(r"generator\s+openai/gpt-4o-mini.*no price", run_summary(run))


def test_a_run_without_models_prints_nothing_new():
    plain = run_json("completed", 4, verdict="pass", result=1.0, threshold=0.5, total_cost=0.0)
    before = run_summary(EvalRun.from_api(plain))
    # the new server sends an empty usage list, a zero breakdown and zero cache counts
    after = run_summary(
        EvalRun.from_api(
            {
                **plain,
                "per_model_usage": [],
                "cost_breakdown": {"generation": 0, "judging": 0, "infrastructure": 0.0001, "total": 0.0001},
                "cache_hits": 0,
                "cache_misses": 0,
                "generation": None,
            }
        )
    )
    assert after == before
    assert "model" not in after and "cache" not in after and "generation" not in after
    page = render(
        EvalRun.from_api(
            {
                **plain,
                "per_model_usage": [],
                "cost_breakdown": {"generation": 0, "judging": 0, "infrastructure": 0.0001, "total": 0.0001},
            }
        ),
        [],
    )
    assert 'id="models"' not in page and "Generation cost" not in page and "Total cost" not in page


def test_the_report_shows_the_models_escaped():
    evil = "<script>alert(1)</script>"
    run = _generated_run(
        generation={"provider": "openai", "model": evil},
        per_model_usage=[
            {"role": "generator", "provider": "openai", "model": evil, "invocations": 2, "cost": None},
            {
                "role": "judge",
                "provider": "bedrock",
                "model": "anthropic.claude\x1b[31m",
                "invocations": 4,
                "cost": 0.5,
            },
        ],
    )
    evaluation = {
        "id": "e1",
        "record_id": "r1",
        "metric_name": "exact",
        "score": 0.0,
        "is_passed": False,
        "record": {"input": "q", "output": "short…", "generation": {"output": "the <b>full</b> answer"}},
    }
    page = render(run, [Evaluation.from_api(evaluation)])
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page and "anthropic.claude\\x1b[31m" in page
    assert 'id="models"' in page and "no price" in page and "response cache: 1 hits, 6 misses" in page
    assert "Model under test: openai &lt;script&gt;" in page
    for card in ("Generation cost", "Judge cost", "AWS cost (est.)", "Total cost"):
        assert card in page
    assert "the &lt;b&gt;full&lt;/b&gt; answer" in page  # the generated answer in full, escaped


def test_the_gate_markdown_of_a_run_without_models_is_unchanged():
    run = EvalRun.from_api(
        run_json("completed", 4, verdict="pass", result=1.0, threshold=0.5, total_cost=0.25)
    )
    text = markdown(decide(run, []))
    assert "judge cost $0.2500 · scores on a 0–1 scale" in text and "model under test" not in text


# ---------------------------------------------------------------------------- eval.yaml
def test_eval_yaml_generation_block_is_sent_as_written(tmp_path, capsys):
    spec = tmp_path / "eval.yaml"
    spec.write_text(
        """
name: capitals
threshold: 0.7
metrics:
  - {name: exact, scorer: exact_match, threshold: 1.0}
generation:
  provider: openai
  model: gpt-4o-mini
  system: Answer in one word.
  messages:
    - role: user
      content: "{{record.input}}"
  temperature: 0
  max_tokens: 32
"""
    )
    version = {
        "id": EVV_ID,
        "eval_id": EVAL_ID,
        "version": 1,
        "metrics": [{"name": "exact", "scorer": "exact_match", "threshold": 1.0}],
        "generation": {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.0, "max_tokens": 32},
    }
    expected = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "system": "Answer in one word.",
        "messages": [{"role": "user", "content": "{{record.input}}"}],
        "temperature": 0,
        "max_tokens": 32,
    }
    with fake_api() as api:
        api.on("GET", "/v1/evals", reply(200, {"items": [], "count": 0, "next_cursor": None}))
        api.on("POST", "/v1/evals", reply(201, {"id": EVAL_ID, "name": "capitals", "version": version}))
        assert run_cli(api.url, "evals", "create", "--file", str(spec)) == 0
        assert api.calls("POST", "/v1/evals")[0].json()["generation"] == expected
        assert (
            "model under test: openai gpt-4o-mini (temperature 0, max_tokens 32)" in capsys.readouterr().out
        )
        # an existing eval of that name: a new version, with the block too
        api.on("GET", "/v1/evals", reply(200, {"items": [{"id": EVAL_ID, "name": "capitals"}], "count": 1}))
        api.on("POST", f"/v1/evals/{EVAL_ID}/versions", reply(201, {**version, "version": 2}))
        assert run_cli(api.url, "evals", "create", "--file", str(spec)) == 0
        assert api.calls("POST", f"/v1/evals/{EVAL_ID}/versions")[0].json()["generation"] == expected


def test_the_generation_example_yaml_takes_only_the_apis_fields_and_the_csvs_columns():
    docs = Path(__file__).resolve().parents[2] / "docs" / "ci"
    spec = yaml.safe_load((docs / "eval-generation.yaml").read_text())
    generation = spec["generation"]
    assert set(generation) <= schema_fields("GenerationSettings") and generation["model"]
    columns = (docs / "support_qa.csv").read_text().splitlines()[0].split(",")
    templates = [generation.get("system", "")] + [m["content"] for m in generation["messages"]]
    fields = set(re.findall(r"\{\{record\.([a-z_]+)\}\}", " ".join(templates)))
    assert fields and fields <= set(columns)
