"""What the CLI tests share: the key and ids the scripted API answers with, running the CLI
against it, a run's JSON, the arguments of a CI gate, and pipes that say whether they are a
terminal."""

from __future__ import annotations

import io

from assay import cli

KEY = "ask_cli_unit_key_0123456789abcdef"
RUN_ID = "22222222-2222-4222-8222-222222222222"
# The CLI takes a name where an id is expected (it looks names up): ids here are real UUIDs.
DS_ID = "11111111-1111-4111-8111-111111111111"
EVV_ID = "33333333-3333-4333-8333-333333333333"


def run_cli(url: str, *args: str) -> int:
    return cli.main(["--url", url, "--api-key", KEY, *args])


def run_json(status: str, done: int = 0, total: int = 4, **extra) -> dict:
    return {
        "id": RUN_ID,
        "status": status,
        "completed_count": done,
        "failed_count": 0,
        "item_count": total,
        "dataset_id": DS_ID,
        "eval_version_id": EVV_ID,
        **extra,
    }


def ci_args(url: str, tmp_path, *extra: str) -> list[str]:
    return [
        "--url",
        url,
        "--api-key",
        KEY,
        "-q",
        "ci",
        "--dataset",
        DS_ID,
        "--eval-version",
        EVV_ID,
        "--junit",
        str(tmp_path / "junit.xml"),
        "--markdown",
        str(tmp_path / "summary.md"),
        "--report",
        str(tmp_path / "report.html"),
        *extra,
    ]


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True
