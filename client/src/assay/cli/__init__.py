"""The ``assay`` command line, built on ``assay.Client``.

``main`` parses the arguments (``parser``), runs the command with a ``Ctx`` (``context``) and
turns what went wrong into one ``error:`` line and an exit code (``assay.exit_codes``). The
commands live one group per module: ``datasets``, ``evals``, ``runs`` (and ``sweep``, sibling
runs over models and prompts), ``keys``, ``health``, ``local``, ``imports`` (``assay import
openai-evals``, history saved from OpenAI's Evals API) and ``ci`` (the CI gate);
``generation`` holds the model-under-test flags they share; ``hints`` says what to run next.

The commands are exported here, and the parser takes them from here when it is built: one
replaced on this package (tests do) is the one that runs, and so is a replaced ``Client``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from assay.cli.ci import cmd_ci
from assay.cli.context import NO_API_KEY, CliError, Ctx, echo
from assay.cli.datasets import (
    cmd_datasets_create,
    cmd_datasets_delete,
    cmd_datasets_list,
    cmd_datasets_upload,
)
from assay.cli.evals import cmd_evals_create, cmd_evals_delete, cmd_evals_list
from assay.cli.health import cmd_health
from assay.cli.hints import next_hint
from assay.cli.imports import cmd_import_openai_evals
from assay.cli.keys import cmd_keys_create, cmd_keys_list, cmd_keys_revoke
from assay.cli.local import cmd_local_invoke, cmd_local_up
from assay.cli.parser import EPILOG, EXAMPLES, build_parser
from assay.cli.runs import (
    cmd_runs_cancel,
    cmd_runs_compare,
    cmd_runs_delete,
    cmd_runs_evaluations,
    cmd_runs_export,
    cmd_runs_get,
    cmd_runs_list,
    cmd_runs_report,
    cmd_runs_schedule,
)
from assay.cli.sweep import cmd_runs_sweep
from assay.client import Client
from assay.errors import ApiError, AssayError, MissingApiKeyError, NotReadyError, RunTimeoutError
from assay.exit_codes import ExitCode
from assay.records import RecordFileError

__all__ = [
    "EPILOG",
    "EXAMPLES",
    "NO_API_KEY",
    "Client",
    "CliError",
    "ExitCode",
    "build_parser",
    "cmd_ci",
    "cmd_datasets_create",
    "cmd_datasets_delete",
    "cmd_datasets_list",
    "cmd_datasets_upload",
    "cmd_evals_create",
    "cmd_evals_delete",
    "cmd_evals_list",
    "cmd_health",
    "cmd_import_openai_evals",
    "cmd_keys_create",
    "cmd_keys_list",
    "cmd_keys_revoke",
    "cmd_local_invoke",
    "cmd_local_up",
    "cmd_runs_cancel",
    "cmd_runs_compare",
    "cmd_runs_delete",
    "cmd_runs_evaluations",
    "cmd_runs_export",
    "cmd_runs_get",
    "cmd_runs_list",
    "cmd_runs_report",
    "cmd_runs_schedule",
    "cmd_runs_sweep",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    """The ``assay`` command (the console script): parse, run the command, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    ctx = Ctx(args, Client)  # this package's Client, looked up now: a replaced one is used
    try:
        code = args.func(ctx)
        if code == ExitCode.OK:
            next_hint(ctx)
        return code
    except KeyboardInterrupt:
        echo("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except (RunTimeoutError, NotReadyError) as exc:
        echo(f"error: {exc}", file=sys.stderr)
        return ExitCode.TIMEOUT
    except ApiError as exc:
        param = exc.details.get("param")  # OpenAI's envelope (/openai/v1) names the parameter at fault
        echo(
            f"error: {exc.message}\n  code {exc.code} · HTTP {exc.status} · request {exc.request_id or '-'}"
            + (f" · param {param}" if param else ""),
            file=sys.stderr,
        )
        return ExitCode.ERROR
    except MissingApiKeyError:  # the client's message speaks Python (api_key=); say it the CLI's way
        echo(f"error: {NO_API_KEY}", file=sys.stderr)
        return ExitCode.ERROR
    except (AssayError, CliError, RecordFileError) as exc:
        echo(f"error: {exc}", file=sys.stderr)
        return ExitCode.ERROR
