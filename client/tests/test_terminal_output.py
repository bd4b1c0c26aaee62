"""The CLI never writes a raw control character from the server to a terminal: names,
record text, reasoning and error messages with ESC, BEL, NUL, CR or C1 controls (stored
before the server refused them) are shown escaped; ``--json`` stays JSON that parses back
to exactly what the server sent; the JUnit and Markdown reports stay valid."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

from assay import cli
from assay._format import ProgressBar, json_text, safe, table

from cli_support import DS_ID, EVV_ID, KEY, RUN_ID, Terminal, ci_args, run_cli, run_json
from fake_api import envelope, fake_api, reply
from tests.support.junit import validate_junit

# Every C0 control but LF and TAB, DEL, every C1 control.
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HOSTILE = "evil\x1b]0;pwned\x07\x1b[2J\x00\r\x9b31m\x7fend"
CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]


def assert_clean(text: str) -> None:
    found = RAW.search(text)
    assert found is None, f"raw control {found.group()!r} at {found.start()}: {text[:200]!r}"


# ---------------------------------------------------------------------------- the function
def test_safe_escapes_every_c0_and_c1_control_but_newline_and_tab():
    for char in CONTROLS:
        shown = safe(f"a{char}b")
        if char in "\n\t":
            assert shown == f"a{char}b"
        else:
            assert_clean(shown)
            assert shown.startswith("a\\") and shown.endswith("b") and len(shown) > 3
    assert safe("\x1b[31mred") == "\\x1b[31mred"
    assert safe("a\rb") == "a\\rb" and safe("\x9b") == "\\x9b" and safe("\x00") == "\\x00"


def test_safe_in_one_line_contexts_escapes_newline_and_tab_too():
    assert safe("a\nb\tc", multiline=False) == "a\\nb\\tc"
    for char in CONTROLS:
        assert "\n" not in safe(char, multiline=False) and "\t" not in safe(char, multiline=False)


@pytest.mark.parametrize("text", ["Paris", "naïve – café ✓ 日本 🙂", "a\\x1b literal", "", "\u2028"])
def test_safe_leaves_printable_text_alone(text):
    assert safe(text) == text


def test_safe_is_idempotent():
    once = safe(HOSTILE)
    assert safe(once) == once and safe(once, multiline=False) == safe(HOSTILE, multiline=False)


def test_json_text_parses_back_to_the_same_data_with_no_raw_control():
    data = {"name": "".join(CONTROLS) + HOSTILE, "nested": [{"why": "\x9b\x85\x7f"}], "n": 1}
    text = json_text(data)
    assert_clean(text.replace("\n", ""))
    assert "\t" not in text
    assert json.loads(text) == data
    # json.dumps alone lets DEL and C1 controls through raw: json_text is what closes that
    assert RAW.search(json.dumps(data, ensure_ascii=False).replace("\n", ""))


def test_table_cells_stay_one_line_and_aligned():
    text = table(["id", "name"], [["1", "a\x1b[2Jb\nc"], ["22", "ok"]])
    lines = text.splitlines()
    assert len(lines) == 4 and lines[2] == "1   a\\x1b[2Jb\\nc"
    assert_clean(text)


def test_the_progress_bar_label_is_escaped():
    stream = Terminal()
    bar = ProgressBar("run\x1b[2J", stream=stream, width=4)
    bar.update(1, 2, label="run \x07running")
    bar.close()
    text = stream.getvalue()
    assert "run \\x07running [##..] 1/2" in text
    assert_clean(text.replace("\r", ""))  # the bar's own carriage returns are its redraws


# ---------------------------------------------------------------------------- the commands
def hostile_run(**extra) -> dict:
    return run_json(
        "failed",
        2,
        name=f"nightly {HOSTILE}",
        error_message=f"boom {HOSTILE}",
        aggregate_results={
            f"m{HOSTILE}": {
                "metric": "m",
                "scorer": f"s{HOSTILE}",
                "mean": 0.5,
                "pass_rate": 0.5,
                "count": 2,
                "threshold": 1.0,
            }
        },
        **extra,
    )


def test_datasets_list_shows_hostile_names_escaped_and_json_keeps_them(capsys):
    items = [
        {"id": "d1", "name": f"ds {HOSTILE}", "version_count": 1, "created_at": "2026-01-01"},
        {"id": "d2", "name": "plain", "version_count": 2, "created_at": "2026-01-02"},
    ]
    with fake_api() as api:
        api.on("GET", "/v1/datasets", reply(200, {"items": items, "next_cursor": None}))
        assert run_cli(api.url, "datasets", "list") == 0
        out = capsys.readouterr().out
        assert_clean(out)
        assert f"ds {safe(HOSTILE, multiline=False)}" in out
        lines = out.splitlines()
        # the columns after the (escaped) hostile name still line up
        assert lines[0].index("created") == lines[2].index("2026-01-01") == lines[3].index("2026-01-02")
        assert run_cli(api.url, "--json", "datasets", "list") == 0
        out = capsys.readouterr().out
        assert_clean(out.replace("\n", ""))
        assert [d["name"] for d in json.loads(out)["items"]] == [f"ds {HOSTILE}", "plain"]


def test_runs_get_and_list_escape_names_metrics_and_error_messages(capsys):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, hostile_run()))
        api.on("GET", "/v1/eval-runs", reply(200, {"items": [hostile_run()], "count": 1}))
        assert run_cli(api.url, "runs", "get", RUN_ID) == 0
        out = capsys.readouterr().out
        assert_clean(out)
        assert f"error: boom {safe(HOSTILE)}" in out and f"(nightly {safe(HOSTILE)})" in out
        assert run_cli(api.url, "runs", "list") == 0
        out = capsys.readouterr().out
        assert_clean(out) and "nightly evil\\x1b]0;pwned" in out


def test_runs_evaluations_escape_record_ids_and_reasoning(capsys):
    evaluation = {
        "id": "e1",
        "record_id": "r\x1b1",
        "metric_name": "exact",
        "score": 0.0,
        "is_passed": False,
        "reasoning": f"why {HOSTILE}\nsecond line",
    }
    with fake_api() as api:
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}/evaluations",
            reply(200, {"items": [evaluation], "next_cursor": None}),
        )
        assert run_cli(api.url, "runs", "evaluations", RUN_ID) == 0
    out = capsys.readouterr().out
    assert_clean(out)
    assert "r\\x1b1" in out and len(out.strip().splitlines()) == 3  # header, rule, one row


def test_an_api_error_message_is_escaped_on_stderr(capsys):
    with fake_api() as api:
        api.on(
            "POST",
            f"/v1/eval-runs/{RUN_ID}/cancel",
            envelope(409, "resource.conflict", f"run {HOSTILE} is done", "req\x1b[1m"),
        )
        assert run_cli(api.url, "runs", "cancel", RUN_ID) == 2
    err = capsys.readouterr().err
    assert_clean(err) and "run evil\\x1b]0;pwned" in err and "request req\\x1b[1m" in err


def test_schedule_wait_escapes_what_it_prints_on_both_streams(capsys):
    with fake_api() as api:
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}",
            [reply(200, run_json("running\x1b[2J", 1)), reply(200, hostile_run())],
        )
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
    assert code == 2
    assert_clean(captured.out) and assert_clean(captured.err)
    assert "running\\x1b[2J" in captured.err


def test_ci_escapes_its_table_and_keeps_junit_and_markdown_valid(tmp_path, capsys):
    failing = {
        "id": "e1",
        "record_id": f"q{HOSTILE}",
        "metric_name": f"m{HOSTILE}",
        "scorer": "exact_match",
        "status": "complete",
        "score": 0.0,
        "is_passed": False,
        "threshold": 1.0,
        "reasoning": f"why {HOSTILE}",
        "record": {"output": HOSTILE},
    }
    run = run_json(
        "completed",
        4,
        verdict="fail",
        result=0.0,
        name=HOSTILE,
        aggregate_results={
            f"m{HOSTILE}": {
                "metric": f"m{HOSTILE}",
                "scorer": "exact_match",
                "mean": 0.0,
                "pass_rate": 0.0,
                "count": 1,
                "threshold": 1.0,
            }
        },
    )
    with fake_api() as api:
        api.on("POST", f"/v1/datasets/{DS_ID}/runs", reply(202, run_json("pending")))
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, run))
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}/export",
            (200, {"Content-Type": "application/x-ndjson"}, json.dumps(failing).encode() + b"\n"),
        )
        code = cli.main(ci_args(api.url, tmp_path, "--poll-interval", "0.01"))
    captured = capsys.readouterr()
    assert code == 1
    assert_clean(captured.out) and assert_clean(captured.err)
    assert "mevil\\x1b]0;pwned" in captured.out
    xml = (tmp_path / "junit.xml").read_bytes()
    root = validate_junit(xml)  # XML 1.0 has no room for ESC, BEL or NUL
    assert_clean(xml.decode().replace("\n", ""))
    assert any("why evil\\x1b" in (f.text or "") for f in root.iter("failure"))
    summary = (tmp_path / "summary.md").read_text()
    assert_clean(summary) and "why evil\\x1b]0;pwned" in summary
    report = (tmp_path / "report.html").read_text()
    assert_clean(report)


class TtyOut(io.TextIOWrapper):
    def __init__(self, tty: bool) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", newline="")
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def text(self) -> bytes:
        self.flush()
        return self.buffer.getvalue()


@pytest.mark.parametrize("tty", [True, False])
def test_an_export_to_stdout_is_escaped_on_a_terminal_and_exact_in_a_pipe(monkeypatch, tty):
    content = f"id,output\r\ne1,{HOSTILE}\r\n".encode()
    stdout = TtyOut(tty)
    monkeypatch.setattr(sys, "stdout", stdout)
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}/export", (200, {"Content-Type": "text/csv"}, content))
        assert (
            cli.main(["--url", api.url, "--api-key", KEY, "runs", "export", RUN_ID, "--format", "csv"]) == 0
        )
    written = stdout.text()
    if tty:
        assert_clean(written.decode())
        assert written.decode() == f"id,output\ne1,{safe(HOSTILE)}\n"
    else:
        assert written == content
