"""The README's "first ten minutes" block, pasted at once: read from README.md (the first ```bash
block of "## Use it from Python, the terminal and CI") and run by bash unchanged, in a fresh
directory that looks like the repository's root (.venv and docs/ linked in), on a free port
through ``ASSAY_PORT``. It starts the local stack with ``assay local up &``, so this test breaks
when the block does: a command that fails, an outcome that differs from what its comments say,
or a ``kill %1`` that leaves the stack running."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.junit import validate_junit

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Use it from Python, the terminal and CI"


def readme_tour() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in text, f"README.md lost its section {SECTION!r}"
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else len(text)]
    block = re.search(r"^```bash\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    assert block, f"no ```bash block in the README section {SECTION!r}"
    return block.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def session_processes(pgid: int) -> list[str]:
    """Live (not zombie) processes of a process group, as "pid command" (Linux's /proc; elsewhere
    just whether the group still exists)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [f"process group {pgid}"]
    alive = []
    for entry in proc.iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue  # not a process, or gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp …
        if entry.name.isdigit() and int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(f"{entry.name} {stat[stat.index('(') + 1 : stat.rindex(')')]}")
    return alive


def wait_until_gone(pgid: int, seconds: float) -> list[str]:
    """The group's live processes once it is empty or ``seconds`` passed (a stopped stack's helper
    processes, e.g. multiprocessing's resource tracker, exit just after it)."""
    deadline = time.monotonic() + seconds
    while (alive := session_processes(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def test_readme_tour_block_runs_as_pasted_and_gives_the_documented_outcomes(tmp_path):
    if shutil.which("jq") is None:
        pytest.skip("the README tour uses jq (the README says so): install jq (apt-get install jq)")
    tour = readme_tour()
    # what the block's own comments promise
    documented = re.search(r"1 fail \(here: (\w+) ([\d.]+) < ([\d.]+)\)", tour)
    assert documented, "the tour no longer says which metric fails the gate"
    failing_metric, failing_mean, gate_threshold = documented.group(1), *map(float, documented.groups()[1:])
    assert "kill %1" in tour, "the tour no longer stops the stack it started"

    # GIVEN a directory like the repository's root and a port nothing listens on
    venv = Path(sys.prefix)
    assert (venv / "bin" / "assay").is_file(), f"no assay console script in {venv}"
    (tmp_path / ".venv").symlink_to(venv, target_is_directory=True)
    (tmp_path / "docs").symlink_to(ROOT / "docs", target_is_directory=True)
    (tmp_path / "tour.sh").write_text(tour, encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["ASSAY_PORT"] = str(port)

    # WHEN bash runs the block as it stands in the README
    shell = subprocess.Popen(
        ["bash", "tour.sh"],  # noqa: S607
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = shell.communicate(timeout=600)
    finally:
        if shell.poll() is None:  # timed out: stop it, then see what else it left
            shell.kill()
            shell.communicate()
        left_running = wait_until_gone(shell.pid, 15)  # the session's pgid is the shell's pid
        if left_running:
            os.killpg(shell.pid, signal.SIGKILL)
    log_file = tmp_path / "out" / "assay-local.log"
    log = log_file.read_text() if log_file.exists() else ""
    context = f"\n--- stdout\n{out[-4000:]}\n--- stderr\n{err[-4000:]}\n--- assay-local.log\n{log[-3000:]}"

    # THEN every step worked, and `kill %1` stopped the stack and everything it started
    assert shell.returncode == 0, context
    assert "Traceback" not in err and not re.search(r"^error:", err, re.MULTILINE), context
    assert left_running == [], f"still running after the tour ended: {left_running}" + context
    assert refused(port) and "assay-local stopped." in log, context
    # AND it wrote only into out/ and the (gitignored) local stack's state: a user who pastes
    # it in a clone is not left with untracked files in the repository's root
    written = {p.name for p in tmp_path.iterdir()} - {".venv", "docs", "tour.sh"}
    assert written <= {"out", ".assay-local", ".assay-local.json"}, written

    # AND the gate failed as documented: exit 1, on the named metric's mean below the threshold
    assert re.search(r"^exit 1$", out, re.MULTILINE), context
    junit = validate_junit((tmp_path / "out" / "junit.xml").read_bytes())
    failures = {c.get("name"): c.find("failure") for c in junit.iter("testcase")}
    failure = failures[failing_metric]
    assert failure is not None, context
    mean, threshold = map(
        float,
        re.fullmatch(
            rf"metric '{failing_metric}' mean ([\d.]+) < ([\d.]+) \(--threshold [\d.]+\)",
            failure.get("message"),
        ).groups(),
    )
    assert round(mean, 2) == failing_mean and threshold == gate_threshold
    assert [name for name, f in failures.items() if f is not None] == [failing_metric]
    assert (tmp_path / "out" / "summary.md").read_text().startswith("### Assay eval gate: ❌ failed")

    # AND run.jsonl holds one evaluation per record and metric of the documented dataset and eval
    with (ROOT / "docs" / "ci" / "support_qa.csv").open(newline="") as handle:
        record_ids = {row["id"] for row in csv.DictReader(handle)}
    metrics = {m["name"] for m in yaml.safe_load((ROOT / "docs" / "ci" / "eval.yaml").read_text())["metrics"]}
    lines = [json.loads(line) for line in (tmp_path / "out" / "run.jsonl").read_text().splitlines()]
    assert len(record_ids) == 120 and len(lines) == len(record_ids) * len(metrics)
    pairs = {(r, m) for r in record_ids for m in metrics}
    assert {(e["record_id"], e["metric_name"]) for e in lines} == pairs
    [run_id] = {e["run_id"] for e in lines}

    # AND report.html is that run's report, its banner showing the run's verdict
    wrote = re.search(
        r"^wrote out/report\.html\s+\(run verdict (pass|fail); (\d+) evaluations\)$", out, re.MULTILINE
    )
    assert wrote, context
    report = (tmp_path / "out" / "report.html").read_text()
    assert run_id in report and int(wrote.group(2)) == len(lines)
    assert re.search(rf'id="verdict"[^>]*><h1>Run verdict: {wrote.group(1).upper()} <span', report)
