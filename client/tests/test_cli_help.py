"""The CLI speaks CLI: its messages name options and commands, not Python parameters; names work
where ids are expected; every list has one --json shape; `assay ci` rejects bad settings before
it schedules anything; the exit codes are the documented ones; a busy port is caught before the
local stack is built; -q quiets; every help has examples that parse; and truncated text says so.
Against the scripted loopback API (client/tests/fake_api.py)."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
from pathlib import Path

import pytest

from assay import cli
from assay._format import clip
from assay.cli import local as cli_local
from assay.exit_codes import ExitCode

from cli_support import DS_ID, EVV_ID, RUN_ID, ci_args, run_cli, run_json
from fake_api import envelope, fake_api, reply
from tests.support.junit import validate_junit

ROOT = Path(__file__).resolve().parents[2]
DS_2 = "44444444-4444-4444-8444-444444444444"
EVAL_ID = "55555555-5555-4555-8555-555555555555"
EVV_OLD = "66666666-6666-4666-8666-666666666666"


def page(items: list[dict], next_cursor: str | None = None, count: int | None = None) -> tuple:
    return reply(
        200, {"items": items, "count": len(items) if count is None else count, "next_cursor": next_cursor}
    )


def dataset(id_: str, name: str) -> dict:
    return {"id": id_, "name": name, "version_count": 1, "created_at": "2026-01-01"}


def catalogue(api) -> None:
    """A dataset 'support-qa', an eval 'capitals' with versions 1 (EVV_OLD) and 2 (EVV_ID)."""
    api.on("GET", "/v1/datasets", page([dataset(DS_ID, "support-qa"), dataset(DS_2, "other")]))
    api.on("GET", "/v1/evals", page([{"id": EVAL_ID, "name": "capitals", "version_count": 2}]))
    api.on(
        "GET",
        f"/v1/evals/{EVAL_ID}/versions",
        page(
            [
                {"id": EVV_OLD, "eval_id": EVAL_ID, "version": 1, "metrics": [{"name": "exact"}]},
                {
                    "id": EVV_ID,
                    "eval_id": EVAL_ID,
                    "version": 2,
                    "metrics": [
                        {"name": "exact", "scorer": "exact_match"},
                        {"name": "f1", "scorer": "token_f1"},
                    ],
                },
            ]
        ),
    )
    api.on(
        "GET",
        f"/v1/eval-versions/{EVV_ID}",
        reply(
            200,
            {
                "id": EVV_ID,
                "eval_id": EVAL_ID,
                "version": 2,
                "metrics": [{"name": "exact", "scorer": "exact_match"}, {"name": "f1", "scorer": "token_f1"}],
            },
        ),
    )


# ---------------------------------------------------------------------------- no API key
def test_a_missing_api_key_is_explained_with_the_cli_option_and_variable(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("ASSAY_API_KEY", raising=False)
    with fake_api() as api:
        assert cli.main(["--url", api.url, "datasets", "list"]) == 2
        err = capsys.readouterr().err
        # not the Python client's wording ("pass api_key="): the option and the variable
        assert "api_key=" not in err and "--api-key" in err and "ASSAY_API_KEY" in err
        assert "ASSAY_BOOTSTRAP_KEY" in err and "assay keys create" in err and err.count("\n") == 1
        # the CI gate's reports say it the same way
        code = cli.main(
            [
                "--url",
                api.url,
                "-q",
                "ci",
                "--dataset",
                DS_ID,
                "--eval-version",
                EVV_ID,
                "--junit",
                str(tmp_path / "junit.xml"),
            ]
        )
        assert code == 2 and api.seen == []
    error = validate_junit((tmp_path / "junit.xml").read_bytes()).find(".//error")
    assert error is not None and error.get("message") == cli.NO_API_KEY


# ---------------------------------------------------------------------------- names for ids
def test_a_dataset_and_an_eval_are_found_by_their_exact_name(capsys):
    with fake_api() as api:
        catalogue(api)
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        code = run_cli(api.url, "runs", "schedule", "--dataset", "support-qa", "--eval-version", "capitals")
        assert code == 0
        [scheduled] = api.calls("POST", f"/v1/datasets/{DS_ID}/runs")
        assert scheduled.json()["eval_version_id"] == EVV_ID  # an eval's name: its latest version
        assert "eval 'capitals': its latest version, v2" in capsys.readouterr().err
        assert run_cli(api.url, "runs", "schedule", "--dataset", DS_ID, "--eval-version", "capitals@1") == 0
        assert api.calls("POST", f"/v1/datasets/{DS_ID}/runs")[-1].json()["eval_version_id"] == EVV_OLD
        capsys.readouterr()
        assert run_cli(api.url, "runs", "schedule", "--dataset", DS_ID, "--eval-version", "capitals@7") == 2
        assert "eval 'capitals' has no version 7 (it has 1, 2)" in capsys.readouterr().err


def test_an_unknown_or_ambiguous_name_is_one_line_and_nothing_is_scheduled(capsys):
    with fake_api() as api:
        catalogue(api)
        assert run_cli(api.url, "runs", "schedule", "--dataset", "nope", "--eval-version", EVV_ID) == 2
        assert capsys.readouterr().err == "error: no dataset named 'nope' — see `assay datasets list`\n"
        api.on("GET", "/v1/datasets", page([dataset(DS_ID, "twin"), dataset(DS_2, "twin")]))
        assert run_cli(api.url, "datasets", "upload", "twin", "records.jsonl") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"2 datasets are named 'twin': {DS_ID}, {DS_2}" in err
        assert not [s for s in api.seen if s.method == "POST"]


def test_a_run_argument_that_is_not_an_id_is_a_usage_error_before_any_request(capsys):
    with fake_api() as api:
        with pytest.raises(SystemExit) as caught:
            run_cli(api.url, "runs", "get", "nightly")
        assert caught.value.code == 2 and api.seen == []
    err = capsys.readouterr().err
    assert "'nightly' is not a run id (runs have no names: `assay runs list`)" in err
    assert "UUID" not in err


# ---------------------------------------------------------------------------- one list shape
LISTS = {
    "datasets list": ("/v1/datasets", [dataset(DS_ID, "a")]),
    "evals list": ("/v1/evals", [{"id": EVAL_ID, "name": "e", "version_count": 1}]),
    "runs list": ("/v1/eval-runs", [run_json("completed", 4)]),
    f"runs evaluations {RUN_ID}": (
        f"/v1/eval-runs/{RUN_ID}/evaluations",
        [{"id": "e1", "record_id": "r1", "metric_name": "m", "score": 1.0}],
    ),
    "keys list": ("/v1/api-keys", [{"id": "k1", "prefix": "ask_ab", "role": "viewer"}]),
}


@pytest.mark.parametrize("command", list(LISTS))
def test_every_list_prints_one_json_shape(command, capsys):
    path, items = LISTS[command]
    with fake_api() as api:
        api.on("GET", path, page(items, None, count=9 if command == "runs list" else None))
        assert run_cli(api.url, "--json", *command.split()) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {"items", "count", "next_cursor"} <= set(doc) and doc["count"] == len(doc["items"]) == 1
    assert doc["next_cursor"] is None and doc["items"][0]["id"] == items[0]["id"]
    assert set(doc) - {"items", "count", "next_cursor"} == ({"total"} if command == "runs list" else set())


def test_a_list_cut_by_limit_gives_the_cursor_and_the_command_for_the_next_page(capsys):
    with fake_api() as api:
        api.on("GET", "/v1/datasets", page([dataset(DS_ID, "a")], "CUR1"))
        assert run_cli(api.url, "--json", "datasets", "list", "--limit", "1") == 0
        assert json.loads(capsys.readouterr().out)["next_cursor"] == "CUR1"
        assert run_cli(api.url, "datasets", "list", "--limit", "1", "--cursor", "CUR0") == 0
        assert "more: assay datasets list --limit 1 --cursor CUR1" in capsys.readouterr().err
        assert api.calls("GET", "/v1/datasets")[-1].query["cursor"] == ["CUR0"]
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}/evaluations",
            page([{"id": "e1", "record_id": "r1", "metric_name": "exact", "score": 0.0}], "CUR2"),
        )
        assert (
            run_cli(api.url, "runs", "evaluations", RUN_ID, "--failed", "--metric", "exact", "--limit", "1")
            == 0
        )
        assert (
            f"more: assay runs evaluations {RUN_ID} --metric exact --failed --limit 1 --cursor CUR2"
            in capsys.readouterr().err
        )


# ---------------------------------------------------------------------------- ci checks first
def test_ci_rejects_an_unknown_metric_threshold_before_scheduling(tmp_path, capsys):
    with fake_api() as api:
        catalogue(api)
        code = cli.main(ci_args(api.url, tmp_path, "--threshold", "exactt=0.9"))
        # the documented usage error, and no run was scheduled (nothing to wait for)
        assert code == 2 and not api.calls("POST", f"/v1/datasets/{DS_ID}/runs")
    err = capsys.readouterr().err
    assert (
        f"--threshold exactt=…: eval version {EVV_ID} has no metric 'exactt' "
        "(did you mean 'exact'? its metrics: exact, f1)"
    ) in err
    error = validate_junit((tmp_path / "junit.xml").read_bytes()).find(".//error")
    assert error is not None and error.get("type") == "usage"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--timeout", "0"], "--timeout must be more than 0 seconds (got 0)"),
        (["--poll-interval", "-1"], "--poll-interval must be more than 0 seconds (got -1)"),
        (["--batch-size", "0"], "--batch-size must be 1 or more (got 0)"),
        (["--dataset-version", "0"], "--dataset-version must be 1 or more (got 0)"),
    ],
)
def test_ci_rejects_bad_options_without_calling_the_api(option, message, tmp_path, capsys):
    with fake_api() as api:
        assert cli.main(ci_args(api.url, tmp_path, *option)) == 2 and api.seen == []
    assert message in capsys.readouterr().err


def test_ci_checks_the_baseline_exists_before_scheduling(tmp_path, capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", envelope(404, "resource.not_found", "run not found"))
        assert cli.main(ci_args(api.url, tmp_path, "--baseline", RUN_ID)) == 2
        assert not api.calls("POST", f"/v1/datasets/{DS_ID}/runs")
        assert cli.main(ci_args(api.url, tmp_path, "--baseline", "last-week")) == 2
    assert "--baseline 'last-week' is not a run id" in capsys.readouterr().err


# ---------------------------------------------------------------------------- exit codes
def _documented_codes(text: str) -> set[int]:
    return {int(code) for code in re.findall(r"^\|\s*(\d+)\s*\|", text, flags=re.M)}


def test_the_exit_codes_are_the_same_in_the_docs_the_help_and_the_code():
    doc = (ROOT / "docs" / "cli.md").read_text()
    table = doc.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    helped = {int(c) for c in re.findall(r"^  (\d+) ", cli.EPILOG.split("exit codes:", 1)[1], flags=re.M)}
    constants = {int(code) for code in ExitCode}
    assert _documented_codes(table) == helped == constants == {0, 1, 2, 3, 130}


def _gate(api, mean: float) -> None:
    api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
    aggregates = {
        "exact": {
            "metric": "exact",
            "scorer": "exact_match",
            "mean": mean,
            "pass_rate": mean,
            "count": 4,
            "threshold": 0.5,
        }
    }
    api.on(
        "GET",
        f"/v1/eval-runs/{RUN_ID}",
        reply(200, run_json("completed", 4, verdict="pass", aggregate_results=aggregates)),
    )
    api.on("GET", f"/v1/eval-runs/{RUN_ID}/export", (200, {"Content-Type": "application/x-ndjson"}, b""))


def _interrupt(ctx):
    raise KeyboardInterrupt


@pytest.mark.parametrize("code", [0, 1, 2, 3, 130])
def test_each_documented_exit_code_is_what_the_cli_returns(code, tmp_path, monkeypatch):
    with fake_api() as api:
        args = ci_args(api.url, tmp_path, "--poll-interval", "0.01")
        if code == 0:  # the gate passed
            _gate(api, 1.0)
        elif code == 1:  # the gate failed: a metric's mean below its threshold
            _gate(api, 0.25)
        elif code == 2:  # an API error
            api.on("POST", f"/v1/datasets/{DS_ID}/runs", envelope(404, "resource.not_found"))
        elif code == 3:  # the run did not finish within --timeout
            api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
            api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, run_json("running", 1)))
            args += ["--timeout", "0.1"]
        else:  # Ctrl-C
            monkeypatch.setattr(cli, "cmd_ci", _interrupt)
        assert cli.main(args) == code


def test_a_usage_error_exits_2():
    with pytest.raises(SystemExit) as caught:
        cli.main(["runs", "list", "--limit", "0"])
    assert caught.value.code == 2


# ---------------------------------------------------------------------------- local up
def test_local_up_on_a_busy_port_exits_2_naming_the_setting_before_building_anything(monkeypatch, capsys):
    def never(*args):  # execve would start building the stack: it must not be reached
        raise AssertionError("the stack was started on a busy port")

    monkeypatch.setattr(os, "execve", never)
    monkeypatch.setattr(cli_local, "_run_forwarding_signals", never)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("ASSAY_PORT", str(port))
        assert cli.main(["local", "up", "--ephemeral"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"port {port} (ASSAY_PORT) is not free" in err
        assert "ASSAY_PORT=" in err and "--port" in err
        assert cli.main(["local", "up", "--port", str(port)]) == 2
        assert f"port {port} (--port) is not free" in capsys.readouterr().err


def test_local_up_quiet_drops_its_starting_line(monkeypatch, capsys):
    started: list[list[str]] = []

    def fake_execve(path, argv, env):
        started.append(argv)
        raise SystemExit(0)  # execve does not return

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setattr(os, "name", "posix")
    for quiet in (False, True):
        with pytest.raises(SystemExit):
            cli.main(["local", "up", "--port", "0", *(["-q"] if quiet else [])])
        assert ("starting the local stack" in capsys.readouterr().err) is not quiet
    assert len(started) == 2


def test_serve_on_a_busy_port_exits_2_before_the_stack_is_built(monkeypatch, capsys):
    pytest.importorskip("assay_local")
    import assay_local.stack
    from assay_local.__main__ import main as serve

    def never(*args, **kwargs):
        raise AssertionError("the stack was built on a busy port")

    monkeypatch.setattr(assay_local.stack, "LocalStack", never)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        monkeypatch.setenv("ASSAY_PORT", str(holder.getsockname()[1]))
        assert serve(["serve", "--ephemeral"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(ASSAY_PORT) is not free" in err and "--port" in err


def _options(parser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings}


def test_local_commands_show_only_the_options_that_apply():
    groups = _subparsers(cli.build_parser())
    api_only = {"--url", "--api-key", "--json", "--http-timeout"}
    for name in ("up", "invoke"):
        assert not _options(_subparsers(groups["local"])[name]) & api_only, name
    assert api_only <= _options(_subparsers(groups["runs"])["get"])


# ---------------------------------------------------------------------------- -q
def test_quiet_hides_progress_and_info_lines_but_keeps_results_and_errors(tmp_path, capsys):
    with fake_api() as api:
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, run_json("completed", 4, verdict="pass")))
        api.on("GET", f"/v1/eval-runs/{RUN_ID}/export", (200, {"Content-Type": "text/csv"}, b"a,b\n"))
        schedule = [
            "runs",
            "schedule",
            "--dataset",
            DS_ID,
            "--eval-version",
            EVV_ID,
            "--wait",
            "--poll-interval",
            "0.01",
        ]
        assert run_cli(api.url, *schedule) == 0
        loud = capsys.readouterr()
        assert f"run {RUN_ID} scheduled" in loud.err and "next: assay runs evaluations" in loud.err
        assert run_cli(api.url, "-q", *schedule) == 0
        quiet = capsys.readouterr()
        assert quiet.err == "" and quiet.out == loud.out and "verdict PASS" in quiet.out
        out = tmp_path / "run.csv"
        assert run_cli(api.url, "-q", "runs", "export", RUN_ID, "--format", "csv", "-o", str(out)) == 0
        assert capsys.readouterr().err == "" and out.read_bytes() == b"a,b\n"
        assert run_cli(api.url, "-q", "runs", "get", "00000000-0000-4000-8000-000000000000") == 2
        assert "error: no route" in capsys.readouterr().err  # errors are never hidden


def test_the_next_command_is_suggested_unless_quiet_or_json(capsys):
    with fake_api() as api:
        api.on("POST", "/v1/datasets", reply(201, dataset(DS_ID, "support-qa")))
        assert run_cli(api.url, "datasets", "create", "support-qa") == 0
        assert f"next: assay datasets upload {DS_ID} records.jsonl" in capsys.readouterr().err
        for flag in ("-q", "--json"):
            assert run_cli(api.url, flag, "datasets", "create", "support-qa") == 0
            assert "next:" not in capsys.readouterr().err


# ---------------------------------------------------------------------------- help
def _subparsers(parser) -> dict:
    action = next((a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"), None)
    return action.choices if action else {}


def _leaves(parser, path: str = ""):
    children = _subparsers(parser)
    if not children:
        yield path, parser
    for name, child in children.items():
        yield from _leaves(child, f"{path} {name}".strip())


def _example_argv(line: str) -> list[str]:
    """An example's assay arguments: without an env prefix, a pipe, a redirect; ids for $VARS."""
    line = line.split(" | ")[0].split(" > ")[0]
    words = shlex.split(line)
    while "=" in words[0]:
        words.pop(0)
    assert words[0] == "assay", line
    return [RUN_ID if w.startswith("$") else w for w in words[1:]]


def test_every_command_has_examples_that_parse():
    parser = cli.build_parser()
    for path, leaf in _leaves(parser):
        assert cli.EXAMPLES.get(path), f"assay {path} has no examples"
        assert "examples:\n" in leaf.format_help(), path
        for line in cli.EXAMPLES[path]:
            argv = _example_argv(line)
            command = [w for w in argv if not w.startswith("-")][: len(path.split())]
            assert " ".join(command) == path, line
            parser.parse_args(argv)  # a SystemExit here: an example that does not work
    for lines in cli.EXAMPLES.values():  # the group and top-level examples too
        for line in lines:
            parser.parse_args(_example_argv(line))


def test_help_points_to_the_docs_as_an_installed_user_can_find_them(monkeypatch):
    helped = cli.build_parser().format_help()
    assert "Docs: docs/cli.md" not in helped
    assert helped.rstrip().endswith("Docs: see docs/cli.md in the Assay repository.")

    class Meta:
        def get_all(self, key):
            return ["Documentation, https://example.org/assay/cli"]

    monkeypatch.setattr("importlib.metadata.metadata", lambda name: Meta())
    assert cli.build_parser().format_help().rstrip().endswith("Docs: https://example.org/assay/cli")


# ---------------------------------------------------------------------------- truncation
def test_truncated_text_ends_with_an_ellipsis(capsys):
    assert clip("short", 10) == "short" and clip("x" * 10, 10) == "x" * 10
    assert clip("y" * 11, 10) == "y" * 9 + "…"
    long = "because " * 20
    with fake_api() as api:
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}/evaluations",
            page([{"id": "e1", "record_id": "r1", "metric_name": "m", "score": 0.0, "reasoning": long}]),
        )
        assert run_cli(api.url, "runs", "evaluations", RUN_ID) == 0
    row = capsys.readouterr().out.splitlines()[2]
    assert row.endswith("…") and long.strip()[:69] in row and len(row.split("FAIL  ")[1]) == 70
