"""Validate a state machine definition with asl-validator (pinned in tools/asl/package-lock.json).

The definition carries SAM ``${...}`` substitutions, which are not valid ASL values for the
validator's ARN checks: each ``${XFunctionArn}`` becomes a Lambda function ARN and any other
``${Name}`` a plain name, written to a temporary file that asl-validator reads.

    python tools/asl/validate.py [--install] [definition.asl.json ...]

``--install`` runs ``npm ci`` first when node_modules is missing or older than the lock.
Exits with asl-validator's status (0: every definition valid).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT = ROOT / "statemachine" / "eval_run.asl.json"
VALIDATOR = HERE / "node_modules" / ".bin" / "asl-validator"
STAMP = HERE / "node_modules" / ".package-lock.json"  # npm writes it on every install


def substituted(text: str) -> dict:
    text = text.replace("${Partition}", "aws")
    text = re.sub(
        r"\$\{(\w+)FunctionArn\}", r"arn:aws:lambda:us-east-1:123456789012:function:assay-\1Function", text
    )
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: f"assay-{m.group(1).lower()}", text))


def install() -> None:
    lock = HERE / "package-lock.json"
    if VALIDATOR.exists() and STAMP.exists() and STAMP.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is required for asl-validator (node and npm, e.g. from Debian's packages)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True)  # noqa: S603


def validate(paths: list[Path]) -> int:
    node = shutil.which("node")
    if node is None or not VALIDATOR.exists():
        sys.exit("asl-validator is not installed: run `make asl-validate` (npm ci in tools/asl)")
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            out = Path(tmp) / path.name
            out.write_text(json.dumps(substituted(path.read_text())))
            done = subprocess.run(  # noqa: S603
                [node, str(VALIDATOR), "--json-path", str(out)],
                capture_output=True,
                text=True,
                check=False,
            )
            report = (done.stdout + done.stderr).replace(str(out), str(path)).strip()
            print(report)
            status = status or done.returncode
    print(f"asl-validator: {'0 errors' if status == 0 else 'errors found'}")
    return status


def main(argv: list[str]) -> int:
    if "--install" in argv:
        install()
    paths = [Path(a) for a in argv if a != "--install"] or [DEFAULT]
    return validate(paths)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
