"""``python -m assay_local serve`` (the local stack, foreground), ``bootstrap`` (a tenant)
and ``invoke`` (one function's handler, once, against the running stack).

Heavy imports (moto, boto3, samtranslator) happen inside ``main``: worker processes
are spawned and re-import this module as their ``__main__``, and they must stay light.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assay_local.stack import LocalStack

# Where `serve` keeps the stack's state unless told otherwise: relative to the current
# directory, like the state file, so `make local` (the repository's root) and `assay local
# up` run from a project each find their own. Git ignores it (.gitignore).
DEFAULT_DATA_DIR = Path(".assay-local") / "data"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assay_local",
        description="Embedded local stack for Assay: moto + template.yaml + real handlers.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the HTTP API locally until Ctrl-C / SIGTERM",
        description=(
            "Start moto in-process, create every template resource on it and serve the "
            "HTTP API. If ASSAY_BOOTSTRAP_KEY is set (20+ characters), the 'local' tenant "
            "is bootstrapped with it as owner key. Each function's IAM role is enforced "
            "unless ASSAY_LOCAL_IAM=off. The state (datasets, evals, runs, API keys: the "
            "table's items, the bucket's objects, the secrets' values) is kept in --data-dir "
            "across restarts and crashes; runs in flight when it stopped are resumed."
        ),
    )
    serve.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port (default: $ASSAY_PORT or 3000; 0 picks a free one)",
    )
    serve.add_argument("--template", default=None, help="template path (default: the repo's)")
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    keep = serve.add_mutually_exclusive_group()
    keep.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="PATH",
        help=f"keep the state in PATH across restarts (default: ./{DEFAULT_DATA_DIR}); one "
        "running stack per directory",
    )
    keep.add_argument(
        "--ephemeral",
        action="store_true",
        help="keep nothing: start empty, forget everything at stop",
    )
    serve.add_argument(
        "--judge-base-url",
        metavar="URL",
        default=None,
        help="an OpenAI-compatible endpoint for LLM judges and generation, before /chat/completions (e.g. "
        "http://127.0.0.1:11434/v1; default $ASSAY_JUDGE_BASE_URL). Bedrock cannot be called "
        "locally: without it, scheduling a judged or generating run is refused (400)",
    )
    serve.add_argument(
        "--judge-api-key",
        metavar="KEY",
        default=None,
        help="that endpoint's API key (default $ASSAY_JUDGE_API_KEY, preferred: a flag shows in "
        "the process list); kept in the stack's judge secret, and a new one replaces it",
    )
    from assay_local import bootstrap_cli, invoke_cli

    bootstrap_cli.add_parser(commands)
    invoke_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bootstrap":
        from assay_local.bootstrap_cli import run

        return run(args)
    if args.command == "invoke":
        from assay_local.invoke_cli import run as invoke

        return invoke(args)
    # Before anything is imported or built (moto, the template's resources: seconds): a port
    # in use would otherwise only be found when the HTTP front binds, at the very end.
    busy = port_problem(args.port)
    if busy:
        print(f"assay-local: {busy}", file=sys.stderr)
        return 2
    from assay_local.bootstrap_cli import STATE_FILE
    from assay_local.invoke_cli import UsageError, read_state, write_state_file

    # `bootstrap --local` and `invoke` find the stack by this directory's state file: a
    # second stack started here would take it over (and remove it when it stops).
    with contextlib.suppress(UsageError):  # none, or a stack killed without cleanup
        other = read_state(STATE_FILE)["url"]
        print(
            f"assay-local: another local stack serves from this directory ({other}, {STATE_FILE}); "
            "stop it first, or start this one from another directory",
            file=sys.stderr,
        )
        return 2
    from assay_local.stack import BOOTSTRAP_KEY_MIN_LENGTH, DEFAULT_TEMPLATE, LocalStack

    key = os.environ.get("ASSAY_BOOTSTRAP_KEY") or None
    if key is not None and len(key) < BOOTSTRAP_KEY_MIN_LENGTH:
        print(
            f"ASSAY_BOOTSTRAP_KEY must be at least {BOOTSTRAP_KEY_MIN_LENGTH} characters (got {len(key)}).",
            file=sys.stderr,
        )
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    judge_base_url, judge_api_key = judge_settings(args)
    if judge_base_url is not None and not judge_base_url.startswith(("http://", "https://")):
        print(
            f"the judge base URL must start with http:// or https:// (got {judge_base_url!r}), "
            "e.g. http://127.0.0.1:11434/v1",
            file=sys.stderr,
        )
        return 2
    stack = LocalStack(
        port=args.port,
        template_path=args.template or DEFAULT_TEMPLATE,
        bootstrap_key=key,
        access_log=args.access_log,
        data_dir=None if args.ephemeral else args.data_dir,
        judge_base_url=judge_base_url,
        judge_api_key=judge_api_key,
    )
    try:
        stack.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            print(f"assay-local failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        # taken between the check above and the bind
        print(f"assay-local: {port_problem(args.port) or exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"assay-local failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        # For `python -m assay_local bootstrap --local` and `invoke` (endpoints, and each
        # function's configuration as created).
        write_state_file(stack, STATE_FILE)
        print(
            f"Assay local API on {stack.url} (moto at {stack.moto_endpoint}); "
            f"started in {stack.startup_seconds:.2f}s",
            flush=True,
        )
        _print_durability(stack)
        if key is not None:
            print("Tenant 'local' bootstrapped with ASSAY_BOOTSTRAP_KEY.", flush=True)
        print(judge_line(judge_base_url, judge_api_key), flush=True)
        if stack.iam is not None:
            print(
                "Each function runs with its own IAM role; calls the role does not allow get "
                "AccessDenied, as on AWS (ASSAY_LOCAL_IAM=off to disable).",
                flush=True,
            )
        print("Ctrl-C to stop.", flush=True)
        stop.wait()
    finally:
        STATE_FILE.unlink(missing_ok=True)
        stack.stop()
        print("assay-local stopped.", flush=True)
    return 0


def judge_settings(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(base URL, API key) of the OpenAI-compatible judge: each flag, else its variable."""
    base_url = args.judge_base_url or os.environ.get("ASSAY_JUDGE_BASE_URL") or None
    api_key = args.judge_api_key or os.environ.get("ASSAY_JUDGE_API_KEY") or None
    return base_url, api_key


def judge_line(base_url: str | None, api_key: str | None) -> str:
    """What the LLM judges can call, in one line (never the key itself)."""
    if base_url is None:
        return (
            "LLM judges and generation: none (Bedrock cannot be called locally; --judge-base-url URL or "
            "ASSAY_JUDGE_BASE_URL for an OpenAI-compatible endpoint, provider 'openai')."
        )
    key = "API key given" if api_key else "no API key given: the judge secret keeps its value"
    return f"LLM judges and generation: provider 'openai' at {base_url} ({key})."


def port_problem(port: int | None) -> str | None:
    """Why ``serve`` cannot listen on its port (``--port``, else ``$ASSAY_PORT``, else 3000), in
    one line naming the setting to change, or ``None``. The probe binds as the HTTP front does
    (127.0.0.1 with SO_REUSEADDR, so a just-stopped stack's TIME_WAIT sockets do not count)."""
    source = "--port"
    if port is None:
        raw = os.environ.get("ASSAY_PORT") or "3000"
        source = "ASSAY_PORT" if os.environ.get("ASSAY_PORT") else "the default"
        try:
            port = int(raw)
        except ValueError:
            return f"ASSAY_PORT={raw!r} is not a port number: set ASSAY_PORT=3001 (or pass --port 3001)"
    if port == 0:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OverflowError:
            return f"port {port} ({source}) is not a port number (0-65535)"
        except OSError as exc:
            other = 3001 if port != 3001 else 3002
            return (
                f"port {port} ({source}) is not free ({exc.strerror}): choose another with "
                f"ASSAY_PORT={other} or --port {other} (then ASSAY_URL=http://127.0.0.1:{other})"
            )
    return None


def _print_durability(stack: LocalStack) -> None:
    """Where the state is kept (or that it is not), what was restored, which runs resumed."""
    if stack.data_dir is None:
        print("Ephemeral: nothing is kept after it stops (--data-dir to keep the state).", flush=True)
        return
    restored = stack.restored
    replayed = (
        f"restored {restored.rows} journal rows in {restored.seconds:.2f}s"
        if restored is not None and restored.rows
        else "empty: a new data directory"
    )
    print(f"State kept in {stack.data_dir} ({replayed}; --ephemeral to keep nothing).", flush=True)
    if restored is not None and restored.failed:
        print(
            f"WARNING: {restored.failed} journal rows could not be replayed (the journal "
            f"is kept as it is): {'; '.join(restored.errors[:3])}",
            file=sys.stderr,
            flush=True,
        )
    if stack.resumed_runs:
        print(
            f"Resumed {len(stack.resumed_runs)} run(s) in flight when the stack stopped: "
            f"{', '.join(stack.resumed_runs)}",
            flush=True,
        )
    if stack.failed_runs:
        print(
            f"Ended {len(stack.failed_runs)} run(s) failed that could not be resumed: "
            f"{', '.join(stack.failed_runs)}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
