"""``assay local …``: the embedded local stack (the assay_local package of the repository's
environment): ``up`` serves the API, ``invoke`` runs one function's handler once."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys

from assay.cli.context import Ctx, echo
from assay.exit_codes import ExitCode


def cmd_local_up(ctx: Ctx) -> int:
    if importlib.util.find_spec("assay_local") is None:
        echo(
            "assay local up needs the embedded local stack (the assay_local package), which comes with the "
            "repository's environment: run `make install` in a clone and use .venv/bin/assay, "
            "or `make local`.",
            file=sys.stderr,
        )
        return ExitCode.ERROR
    # Checked before anything is built (the stack takes seconds to create its resources, and a
    # port in use would only be found at the very end), the way `serve` itself checks it.
    from assay_local.__main__ import port_problem

    busy = port_problem(ctx.args.port)
    if busy:
        echo(f"error: {busy}", file=sys.stderr)
        return ExitCode.ERROR
    command = [sys.executable, "-m", "assay_local", "serve"]
    if ctx.args.port is not None:
        command += ["--port", str(ctx.args.port)]
    if ctx.args.data_dir is not None:
        command += ["--data-dir", ctx.args.data_dir]
    if ctx.args.ephemeral:
        command += ["--ephemeral"]
    if ctx.args.judge_base_url:
        command += ["--judge-base-url", ctx.args.judge_base_url]
    env = dict(os.environ)
    if ctx.args.bootstrap_key:
        env["ASSAY_BOOTSTRAP_KEY"] = ctx.args.bootstrap_key
    if ctx.args.judge_api_key:  # through the environment: an argument shows in the process list
        env["ASSAY_JUDGE_API_KEY"] = ctx.args.judge_api_key
    ctx.info(
        f"starting the local stack: {' '.join(command)} (it prints its URL when ready; "
        "`assay health --wait` waits for it)"
    )
    if os.name == "posix":
        # Become the server (same pid): `kill PID`, `kill %1` or Ctrl-C reach it directly, and it
        # stops its workers and moto cleanly on SIGTERM/SIGINT. A child would be left running.
        sys.stdout.flush()
        os.execve(sys.executable, command, env)  # noqa: S606 (our own interpreter and module)
    return _run_forwarding_signals(command, env)


def cmd_local_invoke(ctx: Ctx) -> int:
    if importlib.util.find_spec("assay_local") is None:
        echo(
            "assay local invoke needs the embedded local stack (the assay_local package), which comes with "
            "the repository's environment: run `make install` in a clone and use .venv/bin/assay.",
            file=sys.stderr,
        )
        return ExitCode.ERROR
    command = [sys.executable, "-m", "assay_local", "invoke", ctx.args.function]
    if ctx.args.event is not None:
        command += ["--event", ctx.args.event]
    if ctx.args.state_file is not None:
        command += ["--state-file", ctx.args.state_file]
    # Same streams (stdin for `-e -`): the result on stdout, logs on stderr, its exit code.
    return subprocess.run(command, check=False).returncode  # noqa: S603 (our own interpreter and module)


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Where exec is not the real thing (Windows): run the child, pass SIGTERM/SIGINT on to it."""
    child = subprocess.Popen(command, env=env)  # noqa: S603 (our own interpreter and module)
    forwarded = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in forwarded:
        signal.signal(sig, lambda signum, frame: child.send_signal(signum))
    try:
        return child.wait()
    finally:
        for sig, handler in forwarded.items():
            signal.signal(sig, handler)
