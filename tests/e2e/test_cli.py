"""The ``assay`` client and CLI end to end on the embedded local stack: a CSV upload, an eval from
YAML, ``runs schedule --wait``, the export through its 303, the CI gate's exit codes and JUnit,
and the HTML report. One stack for the module; exports above 1 KiB are not inlined, so every
export here goes through the presigned-S3 redirect."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from assay import Client, NotFoundError
from assay.cli import main
from assay.report import FAIL_COLOUR, PASS_COLOUR
from assay_local.stack import LocalStack

from tests.support.junit import validate_junit
from tests.support.screenshots import count_colour, decode_png, hex_rgb, screenshot

pytestmark = pytest.mark.e2e
KEY = "ask_e2e-cli-owner-key-0123456789abcdef"

# 8 records: exact_match passes on 5, contains on 6 (r6 contains the answer in a sentence).
ROWS = [
    ("r1", "Capital of France?", "Paris", "Paris"),
    ("r2", "Capital of Italy?", "Rome", "Rome"),
    ("r3", "Capital of Spain?", "Madrid", "Madrid"),
    ("r4", "Capital of Germany?", "Berlin", "Berlin"),
    ("r5", "Capital of Japan?", "Tokyo", "Tokyo"),
    ("r6", "Capital of Canada?", "It is Ottawa.", "Ottawa"),
    ("r7", "Capital of Australia?", "Sydney", "Canberra"),
    ("r8", "6 x 7?", "41", "42"),
]
EVAL_YAML = """\
name: cli-capitals
description: exact and contains, declared in YAML
threshold: 0.6
metrics:
  - name: exact
    scorer: exact_match
    args: {case_sensitive: false}
    threshold: 1.0
  - name: mentions
    scorer: contains
    args: {case_sensitive: false}
    threshold: 1.0
"""
EXPECTED_MEANS = {"exact": 5 / 8, "mentions": 6 / 8}


def cli(stack: LocalStack, *args: str) -> int:
    return main(["--url", stack.url, "--api-key", KEY, "--quiet", *args])


def cli_json(stack: LocalStack, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = cli(stack, "--json", *args)
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else None)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(
        port=0, bootstrap_key=KEY, parameters={"ExportInlineMaxBytes": "1024", "LogLevel": "WARNING"}
    ) as local:
        yield local


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Client:
    return Client(stack.url, KEY)


@pytest.fixture(scope="module")
def setup(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A dataset from a CSV file (with an extra column → metadata) and an eval version from YAML."""
    tmp = tmp_path_factory.mktemp("cli")
    data = tmp / "capitals.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "input", "output", "golden_answer", "topic"])
        writer.writerows([(*row, "geo" if row[0] != "r8" else "math") for row in ROWS])
    spec = tmp / "eval.yaml"
    spec.write_text(EVAL_YAML)
    with pytest.MonkeyPatch.context() as mp:
        captured: list[str] = []
        mp.setattr("builtins.print", lambda *a, **k: captured.append(" ".join(map(str, a))))
        assert cli(stack, "--json", "datasets", "create", "cli-capitals", "--file", str(data)) == 0
        created = json.loads(captured[-1])
        assert cli(stack, "--json", "evals", "create", "--file", str(spec)) == 0
        ev = json.loads(captured[-1])
    return {"tmp": tmp, "dataset": created["dataset"], "version": created["version"], "eval": ev}


@pytest.fixture(scope="module")
def finished_run(stack: LocalStack, setup: dict[str, Any], client: Client) -> dict[str, Any]:
    run = client.schedule_run(setup["dataset"]["id"], setup["eval"]["version"]["id"], batch_size=3)
    return client.wait_for_run(run.id, timeout=120, poll_interval=0.3).to_dict()


def test_cli_datasets_create_reads_the_csv_into_records(setup, client):
    assert setup["version"]["record_count"] == len(ROWS)
    records = list(client.iter_records(setup["dataset"]["id"], 1, page_size=3))  # 3 pages
    assert [r["id"] for r in records] == [row[0] for row in ROWS]
    assert records[6]["output"] == "Sydney" and records[6]["metadata"] == {"topic": "geo"}


def test_cli_evals_create_declares_the_yaml_metrics_and_reuses_the_eval_by_name(stack, setup, capsys):
    version = setup["eval"]["version"]
    assert [m["name"] for m in version["metrics"]] == ["exact", "mentions"] and version["threshold"] == 0.6
    code, again = cli_json(stack, capsys, "evals", "create", "--file", str(setup["tmp"] / "eval.yaml"))
    assert code == 0 and again["created_eval"] is False
    assert again["eval"]["id"] == setup["eval"]["eval"]["id"] and again["version"]["version"] == 2


def test_cli_runs_schedule_wait_prints_the_summary_of_the_completed_run(stack, setup, capsys):
    capsys.readouterr()
    code = cli(
        stack,
        "runs",
        "schedule",
        "--dataset",
        setup["dataset"]["id"],
        "--eval-version",
        setup["eval"]["version"]["id"],
        "--wait",
        "--poll-interval",
        "0.3",
        "--timeout",
        "120",
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "completed" in out
    assert "8 records: 8 fully scored, 0 with evaluations that could not be scored" in out
    assert "exact" in out and "62.5%" in out and "75.0%" in out  # pass rates of the two metrics
    # result (0.625 + 0.75) / 2 = 0.6875 ≥ 0.6, named as the run level
    assert "run verdict PASS: result 0.688 (mean of the metric means) ≥ run threshold 0.60" in out


def test_client_run_details_match_the_known_scores(finished_run):
    assert finished_run["status"] == "completed"
    means = {name: agg["mean"] for name, agg in finished_run["aggregate_results"].items()}
    assert means == pytest.approx(EXPECTED_MEANS)


def test_cli_runs_export_follows_the_303_to_s3(stack, finished_run, tmp_path, client):
    target = tmp_path / "run.jsonl"
    assert cli(stack, "runs", "export", finished_run["id"], "--format", "jsonl", "-o", str(target)) == 0
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) == len(ROWS) * 2
    assert {(e["record_id"], e["metric_name"]) for e in lines} == {
        (row[0], m) for row in ROWS for m in ("exact", "mentions")
    }
    # The export is larger than ExportInlineMaxBytes (1 KiB): the API answered 303, not 200.
    raw = client._raw("GET", f"/v1/eval-runs/{finished_run['id']}/export", params={"format": "jsonl"})
    assert raw.status == 303 and "X-Amz-Expires" in raw.headers["location"]
    linked = client.download_export(finished_run["id"], "jsonl", delivery="link")
    assert linked == target.read_bytes()


def test_cli_ci_gate_passes_with_exit_0_and_writes_valid_junit(stack, setup, tmp_path):
    junit, md = tmp_path / "junit.xml", tmp_path / "summary.md"
    code = cli(
        stack,
        "ci",
        "--dataset",
        setup["dataset"]["id"],
        "--eval-version",
        setup["eval"]["version"]["id"],
        "--threshold",
        "0.6",
        "--junit",
        str(junit),
        "--markdown",
        str(md),
        "--poll-interval",
        "0.3",
        "--timeout",
        "120",
    )
    assert code == 0
    root = validate_junit(junit.read_bytes())
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["exact", "mentions"]
    assert root.get("failures") == "0" and all(c.find("failure") is None for c in cases)
    assert md.read_text().startswith("### Assay eval gate: ✅ passed")


def test_cli_ci_gate_fails_with_exit_1_and_lists_failing_records_in_junit(stack, setup, tmp_path):
    junit, md = tmp_path / "junit.xml", tmp_path / "summary.md"
    code = cli(
        stack,
        "ci",
        "--dataset",
        setup["dataset"]["id"],
        "--eval-version",
        setup["eval"]["version"]["id"],
        "--threshold",
        "0.7",
        "--junit",
        str(junit),
        "--markdown",
        str(md),
        "--poll-interval",
        "0.3",
        "--timeout",
        "120",
    )
    assert code == 1
    root = validate_junit(junit.read_bytes())
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    failing = {c.get("name"): c.find("failure") for c in suite.findall("testcase")}
    assert failing["mentions"] is None  # 0.75 ≥ 0.7
    failure = failing["exact"]
    assert failure is not None
    assert failure.get("message") == "metric 'exact' mean 0.625 < 0.70 (--threshold 0.7)"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    # the gate failed while the run's own verdict (0.6875 ≥ 0.6) passed: JUnit keeps both
    assert (props["gate.verdict"], props["run.verdict"]) == ("fail", "pass")
    for record_id in ("r6", "r7", "r8"):  # exactly the records exact_match failed
        assert f"{record_id}: score 0.000" in (failure.text or "")
    assert "r1:" not in (failure.text or "")
    summary = md.read_text()
    assert "❌ failed" in summary and "| exact | exact_match | 0.625 |" in summary


def test_cli_ci_exits_2_on_an_api_error_and_names_code_and_request_id(stack, setup, capsys, tmp_path):
    capsys.readouterr()
    junit, md = tmp_path / "junit.xml", tmp_path / "summary.md"
    code = cli(
        stack,
        "ci",
        "--dataset",
        "00000000-0000-4000-8000-000000000000",
        "--eval-version",
        setup["eval"]["version"]["id"],
        "--junit",
        str(junit),
        "--markdown",
        str(md),
    )
    err = capsys.readouterr().err
    assert code == 2 and "code resource.not_found" in err and "request " in err
    # the pull request still gets a test report and a comment saying why the gate errored
    error = validate_junit(junit.read_bytes()).find("./testsuite/testcase/error")
    assert error is not None and "code resource.not_found, HTTP 404, request " in error.get("message")
    assert md.read_text().startswith("### Assay eval gate: ⚠️ error")


def test_client_raises_typed_errors_with_code_and_request_id(client):
    with pytest.raises(NotFoundError) as caught:
        client.get_run("00000000-0000-4000-8000-000000000000")
    assert caught.value.code == "resource.not_found" and caught.value.status == 404
    assert caught.value.request_id


def test_console_script_documents_exit_codes_and_fails_with_2(stack):
    script = Path(sys.executable).with_name("assay")
    helped = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0 and "exit codes:" in helped.stdout and "1    `assay ci`" in helped.stdout
    missing = subprocess.run(
        [str(script), "runs", "get", "00000000-0000-4000-8000-000000000000"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"ASSAY_URL": stack.url, "ASSAY_API_KEY": KEY, "PATH": "/usr/bin:/bin"},
    )
    assert missing.returncode == 2 and "resource.not_found" in missing.stderr


def test_cli_keys_create_list_revoke(stack, capsys):
    code, created = cli_json(stack, capsys, "keys", "create", "--name", "ci-bot", "--role", "viewer")
    assert code == 0 and created["key"].startswith("ask_") and created["role"] == "viewer"
    code, listed = cli_json(stack, capsys, "keys", "list")
    keys = listed["items"]  # every list's --json shape: {"items", "count", "next_cursor"}
    assert code == 0 and listed["count"] == len(keys) and listed["next_cursor"] is None
    assert created["id"] in {k["id"] for k in keys} and all("key" not in k for k in keys)
    code, revoked = cli_json(stack, capsys, "keys", "revoke", created["id"])
    assert code == 0 and revoked["revoked"] is True
    with pytest.raises(Exception) as caught:
        Client(stack.url, created["key"]).get_run("00000000-0000-4000-8000-000000000000")
    assert getattr(caught.value, "code", None) == "auth.invalid_key"


def test_cli_datasets_and_evals_list_up_to_the_limit(stack, finished_run, capsys):
    for noun in ("datasets", "evals"):
        code, listed = cli_json(stack, capsys, noun, "list", "--limit", "1")
        [first] = listed["items"]
        assert code == 0 and listed["count"] == 1 and first["id"] and first["name"]
        code, more = cli_json(stack, capsys, noun, "list", "--limit", "100")
        items = more["items"]
        assert code == 0 and len(items) >= 1 and len({i["id"] for i in items}) == len(items)
        if listed["next_cursor"]:  # the cursor continues after the first page, as the hint says
            code, rest = cli_json(stack, capsys, noun, "list", "--cursor", listed["next_cursor"])
            assert code == 0 and [i["id"] for i in rest["items"]] == [i["id"] for i in items[1:]]
    code, datasets = cli_json(stack, capsys, "datasets", "list")
    assert finished_run["dataset_id"] in {d["id"] for d in datasets["items"]}


def test_cli_runs_list_get_and_evaluations(stack, finished_run, capsys):
    code, listed = cli_json(stack, capsys, "runs", "list", "--dataset", finished_run["dataset_id"])
    assert code == 0 and finished_run["id"] in {r["id"] for r in listed["items"]}
    code, got = cli_json(stack, capsys, "runs", "get", finished_run["id"])
    assert code == 0 and got["id"] == finished_run["id"] and got["status"] == "completed"
    code, failed = cli_json(
        stack, capsys, "runs", "evaluations", finished_run["id"], "--failed", "--metric", "exact"
    )
    assert code == 0 and sorted(e["record_id"] for e in failed["items"]) == ["r6", "r7", "r8"]
    assert failed["count"] == 3 and failed["next_cursor"] is None


def test_cli_runs_report_is_self_contained_and_shows_the_verdict_in_chromium(stack, setup, client, tmp_path):
    # GIVEN a run whose run-level threshold (0.9) is above its result (0.6875): verdict fail
    run = client.schedule_run(setup["dataset"]["id"], setup["eval"]["version"]["id"], threshold=0.9)
    run = client.wait_for_run(run.id, timeout=120, poll_interval=0.3)
    assert run.verdict == "fail"
    # WHEN the CLI writes its report
    page = tmp_path / "report.html"
    assert cli(stack, "runs", "report", run.id, "-o", str(page)) == 0
    text = page.read_text()
    # THEN nothing is fetched from elsewhere, and it holds histograms, the cost and the worst records
    assert re.findall(r"\b(?:src|href)\s*=|url\(|@import|<link|<script", text) == []
    assert text.count("<svg") >= 4 and "Judge cost" in text
    assert all(f"<code>{rid}</code>" in text for rid in ("r6", "r7", "r8"))
    # AND rendered by headless Chromium, the top of the page is the red verdict banner, not blank
    width, height, rows = decode_png(screenshot(page, tmp_path / "report.png").read_bytes())
    assert (width, height) == (1200, 1600)
    banner = range(30, 120)
    assert count_colour(rows, hex_rgb(FAIL_COLOUR), y_range=banner) > 40_000
    assert count_colour(rows, hex_rgb(PASS_COLOUR), y_range=banner) == 0
    assert len({rows[y][x : x + 3] for y in range(0, height, 8) for x in range(0, width * 3, 24)}) > 20


CMP_SIZE, CMP_BROKEN = 24, 12


@pytest.fixture(scope="module")
def compared_runs(stack: LocalStack, client: Client, setup: dict[str, Any]) -> dict[str, Any]:
    """A baseline on version 1 (every answer right) and a run on version 2 (the first 12 wrong),
    version 2 uploaded through the CLI's presigned-PUT path."""
    records = [
        {"id": f"c{i:02d}", "input": f"q{i}", "output": f"answer {i}", "golden_answer": f"answer {i}"}
        for i in range(CMP_SIZE)
    ]
    dataset = client.create_dataset("cli-compare")
    client.create_dataset_version(dataset.id, records)
    worse = setup["tmp"] / "worse.jsonl"
    worse.write_text(
        "".join(
            json.dumps({**r, "output": "no idea"} if i < CMP_BROKEN else r) + "\n"
            for i, r in enumerate(records)
        )
    )
    assert cli(stack, "datasets", "upload", dataset.id, str(worse), "--via", "upload") == 0
    ev_version = setup["eval"]["version"]["id"]
    base = client.schedule_run(dataset.id, ev_version, dataset_version=1)
    new = client.schedule_run(dataset.id, ev_version, dataset_version=2)
    return {
        "dataset": dataset.id,
        "eval_version": ev_version,
        "baseline": client.wait_for_run(base.id, timeout=120, poll_interval=0.3),
        "run": client.wait_for_run(new.id, timeout=120, poll_interval=0.3),
    }


def test_client_compare_runs_finds_exactly_the_records_that_regressed(client, compared_runs):
    run, baseline = compared_runs["run"], compared_runs["baseline"]
    assert run.dataset_version == 2 and run.item_count == CMP_SIZE
    comp = client.compare_runs(run.id, baseline.id, limit=100)
    assert comp.verdict == "regressed" and comp.confidence_level == 0.95
    by_metric = {m.metric_name: m for m in comp.metrics}
    assert by_metric["exact"].mean_delta == pytest.approx(-CMP_BROKEN / CMP_SIZE)
    assert by_metric["exact"].significant and by_metric["exact"].regressed == CMP_BROKEN
    assert {(r.record_id, r.metric_name) for r in comp.regressions} == {
        (f"c{i:02d}", m) for i in range(CMP_BROKEN) for m in ("exact", "mentions")
    }
    assert comp.improvements == [] and comp.unmatched == {"run_only": 0, "baseline_only": 0}
    assert client.compare_runs(baseline.id, run.id).verdict == "improved"


def test_cli_runs_compare_prints_the_delta_table(stack, compared_runs, capsys):
    capsys.readouterr()
    run, baseline = compared_runs["run"].id, compared_runs["baseline"].id
    assert cli(stack, "runs", "compare", run, "--baseline", baseline) == 0
    out = capsys.readouterr().out
    assert "REGRESSED" in out and "-0.500" in out
    assert f"{2 * CMP_BROKEN} record-metric pair(s) regressed; the 20 largest:" in out


def test_cli_ci_with_a_baseline_fails_on_the_regression_even_above_the_threshold(
    stack, compared_runs, tmp_path
):
    junit = tmp_path / "junit.xml"
    args = [
        "ci",
        "--dataset",
        compared_runs["dataset"],
        "--eval-version",
        compared_runs["eval_version"],
        "--threshold",
        "0.4",
        "--junit",
        str(junit),
        "--poll-interval",
        "0.3",
        "--timeout",
        "120",
    ]
    assert cli(stack, *args) == 0  # means 0.5 ≥ 0.4: passes without a baseline
    assert cli(stack, *args, "--baseline", compared_runs["baseline"].id) == 1
    root = validate_junit(junit.read_bytes())
    case = root.find("./testsuite/testcase[@name='no significant regression']")
    assert case is not None and "c00 exact: 1.000 → 0.000" in case.find("failure").text


def test_cli_takes_names_for_ids_and_checks_the_gate_before_it_schedules(
    stack, setup, client, capsys, tmp_path
):
    # the dataset and the eval by name ("cli-capitals" each): the same run as by id
    code, run = cli_json(
        stack, capsys, "runs", "schedule", "--dataset", "cli-capitals", "--eval-version", "cli-capitals@1"
    )
    assert code == 0 and run["dataset_id"] == setup["dataset"]["id"]
    assert run["eval_version_id"] == setup["eval"]["version"]["id"]
    before = client.list_runs(dataset_id=setup["dataset"]["id"])[1]
    # a mistyped metric in a per-metric threshold: exit 2 at once, nothing scheduled
    code = cli(
        stack,
        "ci",
        "--dataset",
        "cli-capitals",
        "--eval-version",
        "cli-capitals@1",
        "--threshold",
        "exactt=0.9",
        "--junit",
        str(tmp_path / "junit.xml"),
    )
    err = capsys.readouterr().err
    assert code == 2 and "has no metric 'exactt' (did you mean 'exact'? its metrics: exact, mentions)" in err
    assert client.list_runs(dataset_id=setup["dataset"]["id"])[1] == before
    assert cli(stack, "runs", "list", "--dataset", "no-such-dataset") == 2
    assert "no dataset named 'no-such-dataset' — see `assay datasets list`" in capsys.readouterr().err


def test_cli_evals_create_with_an_unknown_scorer_lists_the_known_ones(stack, capsys, tmp_path):
    spec = tmp_path / "typo.yaml"
    spec.write_text("name: cli-typo\nmetrics:\n  - {name: exact, scorer: exact_mtch}\n")
    capsys.readouterr()
    assert cli(stack, "evals", "create", "--file", str(spec)) == 2
    err = capsys.readouterr().err
    assert "unknown scorer 'exact_mtch'; did you mean 'exact_match'? (known: " in err
    assert "token_f1" in err and "code validation." in err


def _refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_cli_local_up_waits_with_health_and_stops_on_sigterm_to_its_pid(tmp_path):
    # GIVEN `assay local up` started as a background job would be, on a free port
    script = Path(sys.executable).with_name("assay")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = "ask_e2e-local-up-key-0123456789"
    env = {
        **os.environ,
        "ASSAY_PORT": str(port),
        "ASSAY_BOOTSTRAP_KEY": key,
        "ASSAY_URL": f"http://127.0.0.1:{port}",
        "ASSAY_API_KEY": key,
    }
    server = subprocess.Popen(
        [str(script), "local", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # WHEN `assay health --wait` runs right away (the stack needs seconds to start)
        ready = subprocess.run(
            [str(script), "health", "--wait", "--timeout", "120"],
            env=env,
            capture_output=True,
            text=True,
            timeout=150,
        )
        assert ready.returncode == 0, ready.stderr
        assert "API key accepted" in ready.stdout
        # THEN it is ready: a POST right after works with the bootstrap key
        assert (
            subprocess.run(
                [str(script), "datasets", "create", "after-health"],
                env=env,
                capture_output=True,
                timeout=60,
            ).returncode
            == 0
        )
        # AND SIGTERM to the pid we started (what `kill %1` does) stops the server itself
        server.terminate()
        out, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0 and "assay-local stopped." in out, out
    assert _refused(port)


def _github_expressions(script: str, values: dict[str, str]) -> str:
    """The script with its ${{ … }} expressions replaced as GitHub would (only the ones we know)."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        assert expression in values, f"the test does not know the workflow's expression {expression!r}"
        return values[expression]

    return re.sub(r"\$\{\{(.*?)\}\}", value, script)


@pytest.mark.skipif(shutil.which("jq") is None, reason="the example workflow's upload step needs jq")
def test_example_workflow_upload_and_gate_run_on_the_uploaded_version_even_after_another_upload(
    stack, setup, client, tmp_path
):
    steps = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "docs" / "ci" / "github-actions.yml").read_text()
    )["jobs"]["eval"]["steps"]
    upload = next(s for s in steps if "datasets upload" in s.get("run", ""))
    gate = next(s for s in steps if "assay ci" in s.get("run", ""))
    dataset = client.create_dataset("cli-workflow").id  # shared by "pull requests", not by other tests
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "outputs.jsonl").write_text(
        "".join(
            json.dumps({"id": r, "input": i, "output": o, "golden_answer": g}) + "\n" for r, i, o, g in ROWS
        )
    )
    outputs = tmp_path / "github_output"
    env = {
        **os.environ,
        "ASSAY_URL": stack.url,
        "ASSAY_API_KEY": KEY,
        "GITHUB_OUTPUT": str(outputs),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    values = {
        "vars.ASSAY_DATASET_ID": dataset,
        "vars.ASSAY_EVAL_VERSION_ID": setup["eval"]["version"]["id"],
        "github.event.pull_request.number": "7",
        "github.sha": "abc123",
        "vars.ASSAY_BASELINE_RUN_ID && format('--baseline {0}', vars.ASSAY_BASELINE_RUN_ID) || ''": "",
    }
    # WHEN this pull request's upload step runs (with GitHub's `shell: bash`: -e, pipefail)
    ran = subprocess.run(
        [  # noqa: S607
            "bash",
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
            _github_expressions(upload["run"], values),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    output = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    ours = int(output["dataset_version"])
    # AND another pull request uploads a version before this one's gate schedules its run
    theirs = client.create_dataset_version(dataset, [{"id": "x", "input": "?", "output": "!"}]).version
    assert (ours, theirs) == (1, 2)
    values[f"steps.{upload['id']}.outputs.dataset_version"] = output["dataset_version"]
    gated = subprocess.run(
        ["bash", "-e", "-c", _github_expressions(gate["run"], values)],  # noqa: S607
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # THEN the gate ran on this pull request's version (exact 0.625 < 0.7: failed, exit 1)
    assert gated.returncode == 1, gated.stderr
    root = validate_junit((tmp_path / "assay-junit.xml").read_bytes())
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["run.dataset_version"] == str(ours) and props["run.status"] == "completed"
    assert (tmp_path / "assay-summary.md").read_text().startswith("### Assay eval gate: ❌ failed")
    assert (tmp_path / "assay-report.html").is_file()


def test_cli_import_openai_evals_replays_saved_history_with_the_same_result_counts(
    stack: LocalStack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """History saved from OpenAI's Evals API — an eval, its run and the run's output items as
    the official SDK returns them — comes back through `assay import openai-evals DIR --wait`
    with the same result counts; run again, nothing is imported twice."""
    import time

    import openai

    sdk = openai.OpenAI(
        base_url=f"{stack.url}/openai/v1", api_key=KEY, max_retries=0, _strict_response_validation=True
    )
    criteria: Any = [
        {
            "type": "string_check",
            "name": "Exact",
            "input": "{{sample.output_text}}",
            "reference": "{{item.expected}}",
            "operation": "eq",
        },
        {
            "type": "string_check",
            "name": "Loose",
            "input": "{{sample.output_text}}",
            "reference": "{{item.expected}}",
            "operation": "ilike",
        },
    ]
    answers = ["Paris", "rome", "Madrid", "Bonn", "Tokyo", "ottawa", "Sydney", "Oslo", "Lima"]
    expected = ["Paris", "Rome", "Madrid", "Berlin", "Tokyo", "Ottawa", "Canberra", "Oslo", "Lima"]
    rows = [
        {"item": {"question": f"q{i}", "expected": e}, "sample": {"output_text": a, "model": "logged"}}
        for i, (a, e) in enumerate(zip(answers, expected, strict=True))
    ]
    ev = sdk.evals.create(
        name="cli-import",
        data_source_config={
            "type": "custom",
            "item_schema": {"type": "object"},
            "include_sample_schema": True,
        },
        testing_criteria=criteria,
    )
    run = sdk.evals.runs.create(
        ev.id,
        name="saved run",
        data_source={"type": "jsonl", "source": {"type": "file_content", "content": rows}},
    )
    deadline = time.monotonic() + 120
    while run.status in ("queued", "in_progress") and time.monotonic() < deadline:
        time.sleep(0.3)
        run = sdk.evals.runs.retrieve(run.id, eval_id=ev.id)
    assert run.status == "completed" and run.result_counts.total == len(rows)
    assert 0 < run.result_counts.passed < len(rows)

    # Saved as a user would have: the eval alone, the run in a list page, the output items as
    # JSONL pages (one item twice), and a file object that is not history.
    saved = tmp_path / "saved"
    (saved / "runs").mkdir(parents=True)
    dump = lambda obj: obj.model_dump(mode="json", by_alias=True)  # noqa: E731
    (saved / "eval.json").write_text(json.dumps(dump(ev)))
    (saved / "runs" / "runs.json").write_text(
        json.dumps({"object": "list", "data": [dump(run)], "has_more": False})
    )
    pages = list(sdk.evals.runs.output_items.list(run.id, eval_id=ev.id, limit=4).iter_pages())
    lines = [json.dumps({"object": "list", "data": [dump(i) for i in p.data]}) for p in pages]
    lines.append(json.dumps(dump(pages[0].data[0])))
    (saved / "runs" / "items.jsonl").write_text("\n".join(lines) + "\n")
    (saved / "files.json").write_text(json.dumps([{"object": "file", "id": "file-x"}]))

    capsys.readouterr()
    argv = ["import", "openai-evals", str(saved), "--wait", "--poll-interval", "0.3", "--timeout", "120"]
    code = cli(stack, "--json", *argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["counts"] == {
        "evals": 1,
        "runs": 1,
        "items": len(rows),
        "already_imported": 0,
        "refused": 0,
        "skipped": 1,
        "duplicates": 1,
    }
    assert "files.json" in captured.err and "'file'" in captured.err  # the skip, with its file
    [imported] = doc["runs"]
    new_eval, new_run = doc["ids"][ev.id], doc["ids"][run.id]
    assert imported["new_id"] == new_run and imported["status"] == "completed"
    assert imported["result_counts"] == run.result_counts.model_dump() == imported["saved_result_counts"]
    again = sdk.evals.runs.retrieve(new_run, eval_id=new_eval)
    assert again.result_counts.model_dump() == run.result_counts.model_dump()
    assert again.model_extra and again.model_extra["imported_from"] == run.id
    assert again.created_at == run.created_at
    # The upload files were removed once the run was imported; only the run's own source file stays.
    assert [f.id for f in sdk.files.list() if f.filename.startswith(f"{run.id}-items")] == []

    # Run again (after a failure, say): nothing is imported twice.
    assert cli(stack, *argv) == 0
    out = capsys.readouterr().out
    assert (
        "(already imported)" in out and "imported 0 evals, 0 runs, 0 output items; 2 already imported" in out
    )
    assert [
        e.id for e in sdk.evals.list(limit=100) if (e.model_extra or {}).get("imported_from") == ev.id
    ] == [new_eval]
