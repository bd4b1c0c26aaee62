"""The argument parser: every command and option, their help texts, each command's examples,
the exit codes and environment in every help's epilog."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay import __version__
from assay.cli.context import Ctx, is_id
from assay.cli.generation import add_generation_options

EPILOG = """\
environment:
  ASSAY_URL       the API's base URL (default http://127.0.0.1:3000, the local stack)
  ASSAY_API_KEY   the API key (ask_...)

exit codes:
  0    success (for `assay ci`: the gate passed)
  1    `assay ci`: the gate failed (a metric below its threshold, or a significant regression);
       `assay local invoke`: the function's handler raised
  2    error: bad arguments or files, an API error (its code and request id are printed), the
       service unreachable, a run that ended failed/cancelled while waiting, or (`assay local
       up`) a port in use
  3    `--wait` / `assay ci`: the run did not finish within --timeout; `assay health --wait`:
       the service did not answer (or accept the key) within --timeout
  130  interrupted (Ctrl-C)

Human-readable output by default; --json prints the API's JSON (one document) on stdout, and
every list as {"items": [...], "count": N, "next_cursor": ...}. Progress bars, info lines and
hints of the next command go to stderr; -q hides them (results and errors stay).
"""


IMPORT_OPENAI_EVALS = """\
Import history saved from OpenAI's Evals API (shut down on 30 Nov 2026) into Assay's
/openai/v1: evals, runs and output items as the API returned them. Each run is replayed
through Assay's engine from its saved results (`recorded` metrics): no grader or model is
called again, and the imported run keeps its created_at; `imported_from` names the old id.

DIR is read first, recursively: every *.json file holds one object, a list page as the API
returned it ({"object": "list", "data": [...]}) or a JSON array of them; every *.jsonl file
one of those a line. Objects are sorted by their "object": eval, eval.run,
eval.run.output_item (runs grouped by eval_id, output items by run_id, duplicates by id
dropped). Anything else, a run without output items and a run whose eval is not in DIR are
skipped with a warning. A file that is not JSON or not UTF-8 stops the import before any
request (exit 2, naming the file and line).

Each eval is imported, then each of its runs: the output items are uploaded as JSONL files
of at most 4.5 MB (deleted again once the run is imported). An eval or run imported before
(matched by imported_from) is not imported twice: after a failure, run the command again.
A refused object prints the server's message and param, the rest goes on, and the exit
code is 2; a rejected key or an unreachable service stops at once. --json prints one
document: {"ids": {old: new}, "evals", "runs", "skipped", "counts", "dry_run"}.
"""


def _docs_pointer() -> str:
    """Where the docs are: the package's documentation URL when its metadata declares one
    (``[project.urls]``), else the file in the repository (a bare path means nothing after
    ``pip install``)."""
    try:
        from importlib.metadata import PackageNotFoundError, metadata

        urls = metadata("assay").get_all("Project-URL") or []
    except (ImportError, PackageNotFoundError):
        urls = []
    found = {label.strip().lower(): url.strip() for label, _, url in (e.partition(",") for e in urls)}
    for label in ("documentation", "docs", "homepage", "repository", "source"):
        if found.get(label):
            return f"Docs: {found[label]}"
    return "Docs: see docs/cli.md in the Assay repository."


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options taken before and after the command: ``assay --json runs get`` = ``assay runs get --json``."""
    d = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument("--url", default=d(None), help="API base URL (default: $ASSAY_URL)")
    parser.add_argument("--api-key", default=d(None), help="API key (default: $ASSAY_API_KEY)")
    parser.add_argument("--json", action="store_true", default=d(False), help="print the API's JSON")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=d(False),
        help="no progress bars, info lines or hints (results and errors stay)",
    )
    parser.add_argument("--http-timeout", type=float, default=d(60.0), help="seconds per HTTP request (60)")


def _run_id(value: str) -> str:
    """A run argument: runs have ids, not names — say so at once instead of the API's
    "Input should be a valid UUID"."""
    if not is_id(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a run id (runs have no names: `assay runs list`)")
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {number})")
    return number


# Each command's "examples:" (what `assay COMMAND --help` ends with). They are real commands:
# client/tests/test_cli_help.py parses every one with this parser. $DS, $EVV and $RUN stand for
# ids, as in the README's tour (e.g. RUN=$(assay --json runs list --limit 1 | jq -r '.items[0].id')).
EXAMPLES: dict[str, list[str]] = {
    "": [
        "assay health --wait --timeout 120",
        "assay datasets create support-qa --file docs/ci/support_qa.csv",
        "assay evals create --file docs/ci/eval.yaml",
        "assay ci --dataset support-qa --eval-version support-assistant-quality --threshold 0.7",
    ],
    "datasets": ["assay datasets list", "assay datasets upload support-qa outputs.jsonl"],
    "datasets create": [
        "assay datasets create support-qa --file docs/ci/support_qa.csv",
        "assay datasets create support-qa --description 'answers from the help centre'",
    ],
    "datasets upload": [
        "assay datasets upload support-qa outputs.jsonl",
        "assay --json datasets upload $DS big.csv --via upload | jq -r .version",
    ],
    "datasets delete": ["assay datasets delete $DS", "assay datasets delete support-qa"],
    "datasets list": ["assay datasets list --limit 10", "assay --json datasets list | jq -r '.items[].name'"],
    "evals": ["assay evals create --file docs/ci/eval.yaml", "assay evals list"],
    "evals create": ["assay evals create --file docs/ci/eval.yaml"],
    "evals delete": ["assay evals delete support-assistant-quality", "assay evals delete $EVAL --json"],
    "evals list": ["assay evals list --limit 10", "assay --json evals list | jq -r '.items[].id'"],
    "runs": ["assay runs list --status running", "assay runs get $RUN"],
    "runs schedule": [
        "assay runs schedule --dataset support-qa --eval-version support-assistant-quality --wait",
        "assay runs schedule --dataset $DS --eval-version $EVV --dataset-version 2 --name nightly",
        "assay runs schedule --dataset support-qa --eval-version support-assistant-quality "
        "--model gpt-4o-mini --provider openai --prompt-file prompts/terse.txt --wait",
    ],
    "runs sweep": [
        "assay runs sweep --dataset support-qa --eval-version support-assistant-quality "
        "--model gpt-4o-mini --model gpt-4o --provider openai --wait",
        "assay runs sweep --dataset $DS --eval-version $EVV --model amazon.nova-lite-v1:0 "
        "--prompt-file prompts/terse.txt --prompt-file prompts/friendly.txt --wait --timeout 1800",
    ],
    "runs get": ["assay runs get $RUN", "assay --json runs get $RUN | jq .aggregate_results"],
    "runs list": [
        "assay runs list --status running",
        "assay runs list --dataset support-qa --limit 5",
        "assay --json runs list --limit 1 | jq -r '.items[0].id'",
    ],
    "runs evaluations": [
        "assay runs evaluations $RUN --failed",
        "assay runs evaluations $RUN --metric exact --limit 20",
    ],
    "runs cancel": ["assay runs cancel $RUN"],
    "runs delete": ["assay runs delete $RUN", "assay runs delete $RUN --json"],
    "runs export": [
        "assay runs export $RUN --format jsonl -o run.jsonl",
        "assay runs export $RUN --format csv > run.csv",
    ],
    "runs compare": ["assay runs compare $RUN --baseline $BASELINE"],
    "runs report": [
        "assay runs report $RUN -o report.html",
        "assay runs report $RUN -o report.html --baseline $BASELINE",
    ],
    "keys": ["assay keys create --name ci-bot --role member", "assay keys list"],
    "keys create": [
        "assay keys create --name ci-bot --role member",
        "assay keys create --name dashboard --role viewer --expires-at 2027-01-01T00:00:00Z",
    ],
    "keys list": ["assay keys list", "assay --json keys list | jq -r '.items[] | select(.revoked) | .id'"],
    "keys revoke": ["assay keys revoke $KEY_ID"],
    "import": ["assay import openai-evals saved-evals/ --wait"],
    "import openai-evals": [
        "assay import openai-evals saved-evals/ --dry-run",
        "assay import openai-evals saved-evals/ --wait --timeout 1200",
        "assay --json import openai-evals saved-evals/ | jq .ids",
    ],
    "health": ["assay health", "assay health --wait --timeout 120"],
    "local": ["ASSAY_BOOTSTRAP_KEY=ask_local_dev_key_change_me assay local up"],
    "local up": [
        "ASSAY_BOOTSTRAP_KEY=ask_local_dev_key_change_me assay local up",
        "ASSAY_PORT=3001 assay local up --ephemeral",
        "assay local up --port 3001 --data-dir /tmp/assay-data",
        "ASSAY_JUDGE_API_KEY=sk-... assay local up --judge-base-url https://api.openai.com/v1",
    ],
    "local invoke": [
        "assay local invoke ApiMetaFunction -e events/api/health.json",
        "assay local invoke ListRunsFunction -e events/api/list_runs.json",
    ],
    "ci": [
        "assay ci --dataset support-qa --eval-version support-assistant-quality --threshold 0.7",
        "assay ci --dataset $DS --eval-version $EVV --threshold exact=0.9 --baseline $RUN "
        "--junit junit.xml --markdown summary.md",
    ],
}


def _add_examples(parser: argparse.ArgumentParser, path: str = "") -> None:
    """Every parser's help ends with its examples, then the exit codes and where the docs are."""
    examples = EXAMPLES.get(path, [])
    head = "examples:\n" + "".join(f"  {line}\n" for line in examples) + "\n" if examples else ""
    parser.epilog = f"{head}{EPILOG}{_docs_pointer()}\n"
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                _add_examples(sub, f"{path} {name}".strip())


def build_parser() -> argparse.ArgumentParser:
    # The commands as the package exports them, looked up when the parser is built rather than
    # when this module is imported: a command replaced on ``assay.cli`` is the one that runs.
    from assay import cli as commands

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="assay",
        formatter_class=fmt,
        epilog=EPILOG,
        description="Assay from the terminal and CI: datasets, evals, runs, the CI gate, reports, keys, "
        "importing OpenAI Evals history.",
    )
    parser.add_argument("--version", action="version", version=f"assay {__version__}")
    _common(parser, top=True)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    def leaf(
        sub: Any, name: str, func: Callable[[Ctx], int], help_: str, *, api: bool = True, **kw: Any
    ) -> argparse.ArgumentParser:
        """A command. ``api=False`` (the local stack's commands): only -q, not the API's options
        (--url, --api-key, --json, --http-timeout), which would do nothing there."""
        p = sub.add_parser(name, help=help_, description=help_, formatter_class=fmt, epilog=EPILOG, **kw)
        if api:
            _common(p, top=False)
        p.set_defaults(func=func)
        return p

    def group(name: str, help_: str) -> Any:
        g = groups.add_parser(name, help=help_, description=help_, formatter_class=fmt, epilog=EPILOG)
        return g.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    def upload_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--format", choices=["jsonl", "json", "csv"], help="file format (default: from the suffix)"
        )
        p.add_argument(
            "--via",
            choices=["auto", "inline", "upload"],
            default="auto",
            help="inline JSON (≤ 10,000 records), presigned upload (any size), or auto: "
            "inline below 1 MB (default)",
        )
        p.add_argument(
            "--strict",
            action="store_true",
            help="refuse the records, storing nothing, when the server warns about them (a column "
            "such as Output or golden that is not a record field, no output in any record); "
            "without it the warnings are printed to stderr and the version is created",
        )

    def wait_opts(p: argparse.ArgumentParser, timeout: float) -> None:
        p.add_argument("--timeout", type=float, default=timeout, help=f"seconds to wait ({timeout:g})")
        p.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls (1)")

    def schedule_opts(p: argparse.ArgumentParser, *, name: str = "run name") -> None:
        p.add_argument("--dataset", required=True, help="dataset id or exact name")
        p.add_argument(
            "--eval-version",
            required=True,
            help="eval version id, or an eval's exact name (its latest version), or NAME@N (version N)",
        )
        p.add_argument("--dataset-version", type=int, help="dataset version number (default: latest)")
        p.add_argument("--name", help=name)
        p.add_argument(
            "--batch-size",
            type=int,
            help="records per scoring batch (default 100; 10 for runs that generate)",
        )

    ds = group("datasets", "datasets and their versions")
    p = leaf(ds, "create", commands.cmd_datasets_create, "create a dataset (and a first version with --file)")
    p.add_argument("name")
    p.add_argument("--description")
    p.add_argument("--project", help="project id (default: the tenant's default project)")
    p.add_argument(
        "--file",
        type=Path,
        help="JSONL, JSON or CSV records for version 1 (checked before "
        "anything is created; a bad record creates nothing)",
    )
    upload_opts(p)
    p = leaf(
        ds,
        "delete",
        commands.cmd_datasets_delete,
        "delete a dataset with its versions and records (refused while runs use it)",
    )
    p.add_argument("dataset", help="dataset id or exact name")
    p = leaf(ds, "upload", commands.cmd_datasets_upload, "add a version from a JSONL, JSON or CSV file")
    p.add_argument("dataset", help="dataset id or exact name")
    p.add_argument("file", type=Path)
    upload_opts(p)
    p = leaf(ds, "list", commands.cmd_datasets_list, "list datasets, newest first")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")

    ev = group("evals", "evals and their versions")
    p = leaf(
        ev,
        "create",
        commands.cmd_evals_create,
        "create an eval version from a YAML (or JSON) file; adds a version to the eval of the same name",
    )
    p.add_argument(
        "--file",
        type=Path,
        required=True,
        help="eval.yaml: name, threshold, metrics, judge, generation (the model under test, "
        "docs/generation.md; sent as written) "
        "(a new eval is created with its version 1 in one request: a bad spec creates nothing)",
    )
    p = leaf(
        ev,
        "delete",
        commands.cmd_evals_delete,
        "delete an eval and all its versions (refused while runs use it)",
    )
    p.add_argument("eval", help="eval id or exact name")
    p = leaf(ev, "list", commands.cmd_evals_list, "list evals, newest first")
    p.add_argument("--limit", type=_positive, default=50)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")

    runs = group("runs", "eval runs")
    p = leaf(
        runs,
        "schedule",
        commands.cmd_runs_schedule,
        "schedule a run (--wait: follow it, then print its summary)",
    )
    schedule_opts(p)
    p.add_argument("--threshold", dest="run_threshold", type=float, help="the run-level threshold (0..1)")
    p.add_argument("--wait", action="store_true", help="show a progress bar until the run finishes")
    wait_opts(p, 600)
    add_generation_options(p)
    p = leaf(
        runs,
        "sweep",
        commands.cmd_runs_sweep,
        "schedule one sibling run per model × prompt file on the same dataset and metrics "
        "(--wait: then compare them in one table, with the best run); exit 2 when a run did "
        "not complete",
    )
    schedule_opts(p, name="start of each run's name (default 'sweep': 'sweep MODEL PROMPT-FILE-STEM')")
    p.add_argument("--threshold", dest="run_threshold", type=float, help="the run-level threshold (0..1)")
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait for every run, then print the comparison table and the best run",
    )
    wait_opts(p, 1800)
    add_generation_options(p, sweep=True)
    p = leaf(
        runs,
        "get",
        commands.cmd_runs_get,
        "a run's status, per-metric table and verdict; for a run that called models, the calls, "
        "tokens and cost per model and role, the response cache and the cost split",
    )
    p.add_argument("run", type=_run_id, help="run id")
    p = leaf(runs, "list", commands.cmd_runs_list, "list runs, newest first")
    p.add_argument("--dataset", help="only this dataset's runs (id or exact name)")
    p.add_argument("--eval", help="only this eval's runs (id or exact name)")
    p.add_argument("--eval-version", help="only this eval version's runs (id, eval name, or NAME@N)")
    p.add_argument("--status", choices=["pending", "running", "completed", "failed", "cancelled"])
    p.add_argument("--limit", type=_positive, default=20)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")
    p = leaf(runs, "evaluations", commands.cmd_runs_evaluations, "a run's evaluations in record order")
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("--metric")
    passed = p.add_mutually_exclusive_group()
    passed.add_argument("--failed", action="store_true", help="only evaluations that did not pass")
    passed.add_argument("--passed", action="store_true", help="only evaluations that passed")
    p.add_argument("--limit", type=_positive, default=100)
    p.add_argument("--cursor", help="start here (a previous --json output's next_cursor)")
    p = leaf(runs, "cancel", commands.cmd_runs_cancel, "cancel a pending or running run")
    p.add_argument("run", type=_run_id, help="run id")
    p = leaf(
        runs,
        "delete",
        commands.cmd_runs_delete,
        "delete a finished run with its evaluations and exports (cancel a running one first)",
    )
    p.add_argument("run", type=_run_id, help="run id")
    p = leaf(
        runs,
        "export",
        commands.cmd_runs_export,
        "download a finished run's export (follows the presigned link)",
    )
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("--format", choices=["json", "jsonl", "csv"], default="jsonl")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument(
        "--delivery",
        choices=["inline", "link"],
        default="inline",
        help="inline (follows a 303 for large exports) or link (always through S3)",
    )
    p = leaf(
        runs,
        "compare",
        commands.cmd_runs_compare,
        "per-metric deltas and significance against a baseline run",
    )
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("--baseline", required=True, type=_run_id, help="the baseline run id")
    p.add_argument("--limit", type=int, default=20, help="records listed per direction (1-100; 20)")
    p.add_argument("--confidence", type=float, help="confidence level (0.8-0.99; default 0.95)")
    p = leaf(
        runs,
        "report",
        commands.cmd_runs_report,
        "write a self-contained HTML report of a run (verdict, metrics, cost, models, worst records)",
    )
    p.add_argument("run", type=_run_id, help="run id")
    p.add_argument("-o", "--output", type=Path, required=True, help="report.html")
    p.add_argument("--baseline", type=_run_id, help="also compare with this run (id)")

    keys = group("keys", "API keys")
    p = leaf(keys, "create", commands.cmd_keys_create, "create an API key (the secret is printed once)")
    p.add_argument("--name")
    p.add_argument("--role", choices=["owner", "member", "viewer"], default="member")
    p.add_argument("--expires-at", help="ISO 8601 date-time in the future")
    leaf(keys, "list", commands.cmd_keys_list, "list API keys (never their secrets)")
    p = leaf(keys, "revoke", commands.cmd_keys_revoke, "revoke an API key")
    p.add_argument("key_id")

    imports = group("import", "import history saved from elsewhere")
    p = leaf(
        imports,
        "openai-evals",
        commands.cmd_import_openai_evals,
        "import evals, runs and output items saved from OpenAI's Evals API; each run replays its "
        "saved results (no grader or model is called again)",
    )
    p.description = IMPORT_OPENAI_EVALS
    p.add_argument("dir", type=Path, metavar="DIR", help="the directory of saved history (or one file)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read and classify DIR and say what would be imported; no request, no API key needed",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="wait until the imported runs finish, then print their result_counts (beside the saved ones)",
    )
    wait_opts(p, 600)

    p = leaf(
        groups,
        "health",
        commands.cmd_health,
        "check that the API answers and accepts the API key (--wait: until it does, e.g. after "
        "`assay local up &`); exit 0 ready, 2 error, 3 not ready within --timeout",
    )
    p.add_argument("--wait", action="store_true", help="poll until ready instead of one check")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait with --wait (60)")
    p.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls (0.5)")

    local = group("local", "the embedded local stack (needs the repository's environment)")
    p = leaf(
        local,
        "up",
        commands.cmd_local_up,
        "serve the API locally from template.yaml until Ctrl-C or SIGTERM (the command becomes "
        "the server process: `kill PID` stops it); its state (datasets, evals, runs, API keys) is "
        "kept in --data-dir across restarts and crashes, and runs cut short are resumed",
        api=False,
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no 'starting …' line"
    )
    p.add_argument("--port", type=int, help="HTTP port (default $ASSAY_PORT or 3000)")
    keep = p.add_mutually_exclusive_group()
    keep.add_argument(
        "--data-dir",
        metavar="PATH",
        help="where the state is kept (default ./.assay-local/data); one running stack per directory",
    )
    keep.add_argument(
        "--ephemeral", action="store_true", help="keep nothing: start empty, forget everything at stop"
    )
    p.add_argument(
        "--bootstrap-key",
        default=os.environ.get("ASSAY_BOOTSTRAP_KEY"),
        help="owner key of the 'local' tenant (default $ASSAY_BOOTSTRAP_KEY; ≥ 20 characters)",
    )
    p.add_argument(
        "--judge-base-url",
        metavar="URL",
        help="an OpenAI-compatible endpoint for LLM judges and generation (provider 'openai'), before "
        "/chat/completions, e.g. http://127.0.0.1:11434/v1 (default $ASSAY_JUDGE_BASE_URL); Bedrock "
        "cannot be called locally, so without it a judged or generating run is refused (400) when scheduled",
    )
    p.add_argument(
        "--judge-api-key",
        metavar="KEY",
        help="that endpoint's API key (default $ASSAY_JUDGE_API_KEY, preferred: a flag shows in the "
        "process list); kept in the stack's judge secret, a new one replaces it; never printed",
    )
    p = leaf(
        local,
        "invoke",
        commands.cmd_local_invoke,
        "run one function's handler once against the running local stack (`sam local invoke` "
        "without Docker): the function's environment from template.yaml, its IAM role; the result "
        "on stdout, logs on stderr; exit 0 returned, 1 raised (Lambda's error payload), 2 usage error",
        api=False,
    )
    p.add_argument(
        "function", metavar="FUNCTION", help="the template's logical id (e.g. GetRunFunction) or name"
    )
    p.add_argument(
        "-e",
        "--event",
        metavar="PATH",
        help="event JSON file (e.g. events/api/health.json), - for stdin; default {}",
    )
    p.add_argument("--state-file", help="the running stack's state file (default ./.assay-local.json)")

    p = leaf(
        groups,
        "ci",
        commands.cmd_ci,
        "CI gate: schedule a run, wait, pass when every metric's mean reaches its threshold "
        "(and, with --baseline, nothing regressed significantly); exit 0 pass, 1 fail, 2 error",
    )
    schedule_opts(p)
    p.add_argument(
        "--threshold",
        action="append",
        metavar="[METRIC=]VALUE",
        help="gate threshold for every metric's mean (default: each metric's own threshold); "
        "METRIC=VALUE for one metric; repeatable",
    )
    p.add_argument("--baseline", help="fail on a significant regression against this run")
    p.add_argument("--junit", type=Path, help="write JUnit XML here (one test case per metric)")
    p.add_argument("--markdown", type=Path, help="write a Markdown summary here (for a PR comment)")
    p.add_argument("--report", type=Path, help="write the HTML report here")
    wait_opts(p, 1800)
    add_generation_options(p)
    _add_examples(parser)
    return parser
