"""CLI paths against the scripted loopback API (client/tests/fake_api.py): readiness, the local
stack's launcher, cancelling, waiting on runs that fail or take too long, the CI gate's reports
when it errors, and the progress bar."""

from __future__ import annotations

import json
import os
import socket
import sys
from contextlib import ExitStack

import pytest

from assay import Client, NotReadyError, cli
from assay._format import ProgressBar
from assay.errors import AuthenticationError

from cli_support import DS_ID, EVV_ID, KEY, RUN_ID, Pipe, Terminal, ci_args, run_cli, run_json
from fake_api import envelope, fake_api, reply
from tests.support.junit import validate_junit

HEALTH = {"status": "ok", "version": "0.1.0"}
PROJECTS = {"items": [], "count": 0, "next_cursor": None}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)


# ---------------------------------------------------------------------------- health
def test_cli_health_checks_the_api_and_the_key(capsys):
    with fake_api() as api:
        api.on("GET", "/v1/health", reply(200, HEALTH))
        api.on("GET", "/v1/projects", reply(200, PROJECTS))
        assert run_cli(api.url, "health") == 0
        out = capsys.readouterr().out
        assert "is up (status ok, version 0.1.0); API key accepted" in out
        assert api.calls("GET", "/v1/health")[0].headers.get("authorization") is None
        assert api.calls("GET", "/v1/projects")[0].headers["authorization"] == f"Bearer {KEY}"
        api.on("GET", "/v1/projects", envelope(401, "auth.invalid_key", "invalid API key", "req-401"))
        assert run_cli(api.url, "health") == 2
        assert "code auth.invalid_key" in capsys.readouterr().err


def test_cli_health_wait_returns_once_the_server_is_up(capsys):
    port = free_port()
    servers = ExitStack()
    polls: list[float] = []

    def start_on_third_poll(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 3:
            api = servers.enter_context(fake_api(port))
            api.on("GET", "/v1/health", reply(200, HEALTH))
            api.on("GET", "/v1/projects", reply(200, PROJECTS))

    client = Client(f"http://127.0.0.1:{port}", KEY)
    with servers:
        assert client.wait_until_ready(timeout=30, poll_interval=0.01, sleep=start_on_third_poll) == HEALTH
    assert len(polls) == 3


def test_cli_health_wait_exits_3_when_nothing_answers_in_time(capsys):
    code = run_cli(
        f"http://127.0.0.1:{free_port()}", "health", "--wait", "--timeout", "0.3", "--poll-interval", "0.05"
    )
    err = capsys.readouterr().err
    assert code == 3 and "not ready after 0.3 s" in err and "refused" in err.lower()


def test_wait_until_ready_retries_a_rejected_key_only_for_the_grace_period():
    # The local stack creates its bootstrap key just after it starts listening: a 401 first ...
    with fake_api() as api:
        api.on("GET", "/v1/health", reply(200, HEALTH))
        api.on(
            "GET",
            "/v1/projects",
            [envelope(401, "auth.invalid_key"), envelope(401, "auth.invalid_key"), reply(200, PROJECTS)],
        )
        clock = FakeClock()
        client = Client(api.url, KEY)
        assert client.wait_until_ready(timeout=60, clock=clock, sleep=clock.sleep) == HEALTH
        assert len(api.calls("GET", "/v1/projects")) == 3
        # ... but a key that stays rejected is an error (exit 2), not a wait until the timeout
        api.on("GET", "/v1/projects", envelope(401, "auth.invalid_key"))
        clock = FakeClock()
        with pytest.raises(AuthenticationError):
            client.wait_until_ready(timeout=600, key_grace=5, poll_interval=1, clock=clock, sleep=clock.sleep)
        assert 5 <= clock.now < 10


def test_wait_until_ready_gives_up_with_the_last_error():
    with fake_api() as api:
        api.on("GET", "/v1/health", envelope(503, "server.internal_error", "warming up"))
        clock = FakeClock()
        with pytest.raises(NotReadyError) as caught:
            Client(api.url, KEY).wait_until_ready(timeout=3, poll_interval=1, clock=clock, sleep=clock.sleep)
    assert "warming up" in str(caught.value) and caught.value.last_error is not None


# ---------------------------------------------------------------------------- local up
def test_cli_local_up_becomes_the_server_process_so_a_kill_reaches_it(monkeypatch, capsys):
    execs: list[tuple] = []

    def fake_execve(path, argv, env):
        execs.append((path, argv, env))
        raise SystemExit(0)  # execve does not return

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr(os, "name", "posix")
    with pytest.raises(SystemExit):
        cli.main(["local", "up", "--port", "3999", "--bootstrap-key", "ask_local_dev_key_change_me"])
    [(path, argv, env)] = execs
    assert path == sys.executable
    assert argv == [sys.executable, "-m", "assay_local", "serve", "--port", "3999"]
    assert env["ASSAY_BOOTSTRAP_KEY"] == "ask_local_dev_key_change_me"
    assert "assay health --wait" in capsys.readouterr().err


def test_cli_local_up_passes_the_judge_base_url_as_a_flag_and_the_key_in_the_environment(monkeypatch, capsys):
    execs: list[tuple] = []

    def fake_execve(path, argv, env):
        execs.append((path, argv, env))
        raise SystemExit(0)

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr(os, "name", "posix")
    monkeypatch.delenv("ASSAY_JUDGE_API_KEY", raising=False)
    url = "http://127.0.0.1:11434/v1"
    with pytest.raises(SystemExit):
        cli.main(["local", "up", "--port", "0", "--judge-base-url", url, "--judge-api-key", "sk-cli-secret"])
    [(_, argv, env)] = execs
    assert argv == [sys.executable, "-m", "assay_local", "serve", "--port", "0", "--judge-base-url", url]
    # the key goes through the environment: an argument would show in the process list
    assert env["ASSAY_JUDGE_API_KEY"] == "sk-cli-secret"
    assert "sk-cli-secret" not in " ".join(argv) + "".join(capsys.readouterr())
    # without the flags, the variables the command inherits reach `serve` as they are
    execs.clear()
    monkeypatch.setenv("ASSAY_JUDGE_BASE_URL", url)
    monkeypatch.setenv("ASSAY_JUDGE_API_KEY", "sk-env-secret")
    with pytest.raises(SystemExit):
        cli.main(["local", "up", "--port", "0"])
    [(_, argv, env)] = execs
    assert argv == [sys.executable, "-m", "assay_local", "serve", "--port", "0"]
    assert env["ASSAY_JUDGE_BASE_URL"] == url and env["ASSAY_JUDGE_API_KEY"] == "sk-env-secret"


# ---------------------------------------------------------------------------- runs
def test_client_cancel_run_posts_to_cancel_and_returns_the_cancelled_run():
    with fake_api() as api:
        api.on("POST", f"/v1/eval-runs/{RUN_ID}/cancel", reply(200, run_json("cancelled", 1)))
        run = Client(api.url, KEY).cancel_run(RUN_ID)
    assert run.status == "cancelled" and run.completed_count == 1
    [call] = api.calls("POST", f"/v1/eval-runs/{RUN_ID}/cancel")
    assert call.headers["authorization"] == f"Bearer {KEY}"


def test_cli_runs_cancel_prints_the_status_and_exits_2_on_a_finished_run(capsys):
    with fake_api() as api:
        path = f"/v1/eval-runs/{RUN_ID}/cancel"
        api.on("POST", path, reply(200, run_json("cancelled", 1)))
        assert run_cli(api.url, "runs", "cancel", RUN_ID) == 0
        assert capsys.readouterr().out.strip() == f"run {RUN_ID}  cancelled"
        assert run_cli(api.url, "--json", "runs", "cancel", RUN_ID) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
        api.on("POST", path, envelope(409, "resource.conflict", "run is completed", "req-409"))
        assert run_cli(api.url, "runs", "cancel", RUN_ID) == 2
        err = capsys.readouterr().err
        assert "run is completed" in err and "code resource.conflict" in err and "request req-409" in err
        assert len(api.calls("POST", path)) == 3  # a 409 is not retried


def _schedule_then(api, *states: dict) -> None:
    api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
    api.on("GET", f"/v1/eval-runs/{RUN_ID}", [reply(200, state) for state in states])


@pytest.mark.parametrize("final", ["failed", "cancelled"])
def test_cli_runs_schedule_wait_exits_2_when_the_run_ends_failed_or_cancelled(final, capsys):
    with fake_api() as api:
        _schedule_then(
            api,
            run_json("running", 2),
            run_json(final, 2, error_message="States.TaskFailed" if final == "failed" else None),
        )
        code = run_cli(
            api.url,
            "-q",
            "runs",
            "schedule",
            "--dataset",
            DS_ID,
            "--eval-version",
            EVV_ID,
            "--wait",
            "--poll-interval",
            "0.01",
        )
    out = capsys.readouterr().out
    assert code == 2 and f"run {RUN_ID}  {final}" in out
    assert ("error: States.TaskFailed" in out) == (final == "failed")


def test_cli_runs_schedule_wait_exits_3_when_the_run_outlasts_the_timeout(capsys):
    with fake_api() as api:
        _schedule_then(api, run_json("running", 1))
        code = run_cli(
            api.url,
            "-q",
            "runs",
            "schedule",
            "--dataset",
            DS_ID,
            "--eval-version",
            EVV_ID,
            "--wait",
            "--timeout",
            "0.2",
            "--poll-interval",
            "0.05",
        )
    err = capsys.readouterr().err
    assert code == 3 and f"run {RUN_ID} still running after 0.2 s (1/4 records)" in err


def test_cli_runs_schedule_wait_exits_0_and_draws_the_bar_on_stderr(capsys):
    with fake_api() as api:
        _schedule_then(api, run_json("running", 2), run_json("completed", 4, verdict="pass", result=1.0))
        code = run_cli(
            api.url,
            "runs",
            "schedule",
            "--dataset",
            DS_ID,
            "--eval-version",
            EVV_ID,
            "--wait",
            "--poll-interval",
            "0.01",
        )
    captured = capsys.readouterr()
    assert code == 0 and "verdict PASS" in captured.out
    assert "[###############...............] 2/4" in captured.err and "] 4/4" in captured.err


# ---------------------------------------------------------------------------- the CI gate when it errors
def test_cli_ci_on_an_api_error_still_writes_junit_with_an_error_and_a_summary(tmp_path, capsys):
    with fake_api() as api:
        api.on(
            "POST",
            f"/v1/datasets/{DS_ID}/runs",
            envelope(404, "resource.not_found", "dataset not found", "req-7"),
        )
        code = cli.main(ci_args(api.url, tmp_path))
    assert code == 2 and "code resource.not_found" in capsys.readouterr().err
    root = validate_junit((tmp_path / "junit.xml").read_bytes())
    error = root.find("./testsuite/testcase[@name='gate ran']/error")
    assert root.get("errors") == "1" and error is not None and error.get("type") == "api"
    assert error.get("message") == "dataset not found (code resource.not_found, HTTP 404, request req-7)"
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("### Assay eval gate: ⚠️ error")
    assert "The gate could not decide (API error):** dataset not found" in summary and "req-7" in summary
    assert not (tmp_path / "report.html").exists()


def test_cli_ci_on_an_api_error_after_the_run_names_the_run(tmp_path, capsys):
    with fake_api() as api:
        _schedule_then(api, run_json("completed", 4, verdict="pass"))
        api.on("GET", f"/v1/eval-runs/{RUN_ID}/export", envelope(409, "resource.conflict", "not ready", "r5"))
        code = cli.main(ci_args(api.url, tmp_path, "--poll-interval", "0.01"))
    assert code == 2
    root = validate_junit((tmp_path / "junit.xml").read_bytes())
    assert {p.get("name"): p.get("value") for p in root.iter("property")}["run.id"] == RUN_ID
    assert f"Run `{RUN_ID}` · completed" in (tmp_path / "summary.md").read_text()


def test_cli_ci_when_the_service_is_unreachable_writes_the_error_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        cli, "Client", lambda url, key, timeout: Client(url, key, timeout=timeout, max_retries=0)
    )
    code = cli.main(ci_args(f"http://127.0.0.1:{free_port()}", tmp_path))
    assert code == 2
    error = validate_junit((tmp_path / "junit.xml").read_bytes()).find(".//error")
    assert error is not None and "refused" in error.get("message").lower()
    assert "⚠️ error" in (tmp_path / "summary.md").read_text()


def test_cli_ci_on_a_timeout_exits_3_and_writes_an_error_naming_the_unfinished_run(tmp_path, capsys):
    with fake_api() as api:
        _schedule_then(api, run_json("running", 1))
        code = cli.main(ci_args(api.url, tmp_path, "--timeout", "0.2", "--poll-interval", "0.05"))
    assert code == 3 and "still running after 0.2 s" in capsys.readouterr().err
    root = validate_junit((tmp_path / "junit.xml").read_bytes())
    error = root.find("./testsuite/testcase[@name='run completed']/error")
    assert error is not None and error.get("type") == "timeout"
    assert f"`assay runs cancel {RUN_ID}` stops it" in error.get("message")
    summary = (tmp_path / "summary.md").read_text()
    assert "(the run did not finish in time)" in summary and f"Run `{RUN_ID}` · running" in summary


def test_cli_ci_with_a_bad_threshold_writes_the_error_reports_without_calling_the_api(tmp_path, capsys):
    with fake_api() as api:
        code = cli.main(ci_args(api.url, tmp_path, "--threshold", "abc"))
        assert code == 2 and api.seen == []
    assert "(bad gate settings):** --threshold 'abc'" in (tmp_path / "summary.md").read_text()
    validate_junit((tmp_path / "junit.xml").read_bytes())


def test_cli_ci_json_on_an_error_prints_the_result_too(tmp_path, capsys):
    with fake_api() as api:
        _schedule_then(api, run_json("running", 1))
        code = cli.main(ci_args(api.url, tmp_path, "--json", "--timeout", "0.1", "--poll-interval", "0.05"))
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and doc["exit_code"] == 3 and doc["error_kind"] == "timeout" and doc["passed"] is False


def test_cli_ci_gates_on_the_dataset_version_it_is_given(tmp_path, capsys):
    with fake_api() as api:
        _schedule_then(
            api,
            run_json(
                "completed",
                4,
                verdict="pass",
                dataset_version=7,
                aggregate_results={
                    "exact": {
                        "metric": "exact",
                        "scorer": "exact_match",
                        "mean": 1.0,
                        "pass_rate": 1.0,
                        "count": 4,
                        "threshold": 1.0,
                    }
                },
            ),
        )
        api.on("GET", f"/v1/eval-runs/{RUN_ID}/export", (200, {"Content-Type": "application/x-ndjson"}, b""))
        code = cli.main(ci_args(api.url, tmp_path, "--dataset-version", "7", "--poll-interval", "0.01"))
        [schedule] = api.calls("POST", f"/v1/datasets/{DS_ID}/runs")
    assert code == 0 and schedule.json() == {"eval_version_id": EVV_ID, "dataset_version": 7}
    root = validate_junit((tmp_path / "junit.xml").read_bytes())
    assert {p.get("name"): p.get("value") for p in root.iter("property")}["run.dataset_version"] == "7"


# ---------------------------------------------------------------------------- progress bar
def test_progress_bar_on_a_pipe_writes_a_line_per_tenth_with_counts():
    stream = Pipe()
    bar = ProgressBar("run 1234", stream=stream, width=10)
    for done in range(0, 101):
        bar.update(done, 100)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 0 %, 10 %, …, 100 %: not one line per update
    assert lines[0].startswith("run 1234 [..........] 0/100")
    assert lines[5].startswith("run 1234 [#####.....] 50/100")
    assert lines[-1].startswith("run 1234 [##########] 100/100")
    assert "\r" not in stream.getvalue()


def test_progress_bar_on_a_terminal_redraws_in_place_and_ends_the_line():
    stream = Terminal()
    bar = ProgressBar("upload", stream=stream, width=4, unit="B")
    bar.update(512, 2048)
    bar.update(2048, 2048, label="upload done")
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\rupload [#...] 512B/2.0KB") and "\rupload done [####] 2.0KB/2.0KB" in text
    assert text.endswith("\n") and text.count("\n") == 1


def test_progress_bar_with_a_total_of_zero_draws_an_empty_bar_without_dividing_by_zero():
    for stream in (Pipe(), Terminal()):
        bar = ProgressBar("run", stream=stream, width=5)
        bar.update(0, 0)
        bar.update(0, 0)
        bar.close()
        assert "run [.....] 0/0" in stream.getvalue()
    assert Pipe().getvalue() == ""
    closed_unused = Terminal()
    ProgressBar(stream=closed_unused).close()
    assert closed_unused.getvalue() == ""  # nothing drawn, nothing to end


def test_cli_runs_schedule_prints_the_runs_field_warnings_on_stderr(capsys):
    warning = {
        "code": "partial_field",
        "metric": "exact",
        "field": "golden_answer",
        "count": 3,
        "message": "metric 'exact' needs 'golden_answer': 3 of 4 records lack it",
    }
    with fake_api() as api:
        api.on(
            "POST", f"/v1/datasets/{DS_ID}/runs", reply(202, {**run_json("pending"), "warnings": [warning]})
        )
        assert run_cli(api.url, "runs", "schedule", "--dataset", DS_ID, "--eval-version", EVV_ID) == 0
    captured = capsys.readouterr()
    assert f"warning: {warning['message']}" in captured.err.splitlines()
    assert "warning" not in captured.out
