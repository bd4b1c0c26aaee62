"""asl-validator (npm, pinned in tools/asl/package-lock.json) on the state machine: 0 errors.

Runs the same script as ``make asl-validate`` (``npm ci`` first when node_modules is missing
or older than the lock), on the definition after its ``${...}`` substitutions — and on a
broken copy, which it must reject (so a validator that passes everything would fail here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.npm  # `-m "not npm"` leaves it out where npm or its registry is missing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "asl" / "validate.py"
ASL = ROOT / "statemachine" / "eval_run.asl.json"


def validate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--install", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_state_machine_has_no_asl_errors():
    done = validate()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid" in done.stdout and "asl-validator: 0 errors" in done.stdout


def test_the_validator_rejects_a_broken_definition(tmp_path):
    broken = json.loads(ASL.read_text())
    broken["States"]["Finalize Run"]["Next"] = "Nowhere"  # a transition to no state
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))
    done = validate(str(path))
    assert done.returncode != 0
    assert "MISSING_TRANSITION_TARGET" in done.stdout, done.stdout
