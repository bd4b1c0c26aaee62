"""``python -m assay_local invoke FUNCTION -e EVENT``: one function's real handler, once,
against the running local stack — ``sam local invoke`` without Docker.

The running stack is found through the state file ``serve`` writes (``write_state_file``):
besides the endpoints (``url``, ``aws_env``, ``function_env``, which ``bootstrap --local``
reads) it records each function's configuration as the stack created it on moto (handler,
role, environment resolved from the template, memory, timeout) and whether IAM is enforced.

The handler runs in a fresh spawned process running ``_worker.worker_main`` — the stack's own
worker body — whose environment is exactly the function's: the variables the stack's
``LambdaRuntime`` gives its workers (a few inherited ones, the function's variables, the
stack's AWS endpoint, the Lambda reserved variables) and, when the stack enforces IAM, the
function's execution-role credentials (moto's STS AssumeRole, session name = the function's
name, as the stack does), so a call is allowed or denied exactly as inside the stack.
Unlike the stack's workers (forks of a forkserver that preloaded the third-party libraries),
this one process imports everything itself: a one-off would gain nothing from a server it
starts for one fork.

The handler's result goes to stdout as indented JSON; its logs (the handler logs JSON lines
to stdout) and this command's messages go to stderr. Exit 0 when the handler returned, 1 when
it raised (stdout then holds Lambda's error payload ``{"errorType", "errorMessage",
"stackTrace"}``), 2 for a usage error (one line on stderr).

Stdlib only at import time: ``boto3`` is imported only to assume the role.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import sys
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from assay_local._worker import error_payload, lambda_environment, worker_main

STATE_FILE = Path(".assay-local.json")  # the same file as bootstrap_cli.STATE_FILE
EXIT_OK, EXIT_RAISED, EXIT_USAGE = 0, 1, 2
NOT_RUNNING = "start it with `make local` or `assay local up` (in this directory), or pass --state-file"

_SPAWN = multiprocessing.get_context("spawn")


class UsageError(Exception):
    """Something the caller can fix: one line on stderr, exit code 2."""


# --------------------------------------------------------------------- the state file
def stack_state(stack: Any) -> dict[str, Any]:
    """What the running ``LocalStack`` records in the state file: its endpoints and, per
    function (by logical id), the configuration its Lambda runtime hands the workers."""
    lam = stack.client("lambda")
    functions: dict[str, dict[str, Any]] = {}
    for logical_id, info in sorted(stack.functions.items()):
        config = lam.get_function_configuration(FunctionName=info.name)
        functions[logical_id] = {
            "name": config["FunctionName"],
            "arn": config["FunctionArn"],
            "handler": config["Handler"],
            "role": config["Role"],
            "runtime": config.get("Runtime", ""),
            "memory_mb": int(config.get("MemorySize", 128)),
            "timeout_s": int(config.get("Timeout", 3)),
            "region": config["FunctionArn"].split(":")[3],
            "environment": dict(config.get("Environment", {}).get("Variables", {})),
        }
    return {
        "url": stack.url,
        "aws_env": stack.aws_env(),
        "function_env": stack.shared_function_env(),
        "iam": stack.iam is not None,
        "functions": functions,
    }


def write_state_file(stack: Any, path: Path = STATE_FILE) -> dict[str, Any]:
    """Write ``stack_state(stack)`` to ``path`` (what ``serve`` does once the stack is up)."""
    state = stack_state(stack)
    path.write_text(json.dumps(state, indent=1))
    return state


def read_state(path: Path) -> dict[str, Any]:
    """The running stack's state, or ``UsageError`` if there is none (or it stopped)."""
    if not path.exists():
        raise UsageError(f"no running local stack ({path} not found): {NOT_RUNNING}")
    try:
        state = json.loads(path.read_text())
        endpoint = state["aws_env"]["AWS_ENDPOINT_URL"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path} is not a local stack state file ({exc!r})") from None
    if "functions" not in state:
        raise UsageError(
            f"{path} was written by an older local stack (no function configurations): restart it"
        )
    parts = urlsplit(endpoint)
    try:  # a stack killed without cleanup leaves its state file behind
        socket.create_connection((parts.hostname, parts.port or 80), timeout=2).close()
    except OSError:
        raise UsageError(
            f"no running local stack (nothing answers at {endpoint}, from {path}): {NOT_RUNNING}"
        ) from None
    return state


def find_function(state: dict[str, Any], wanted: str) -> tuple[str, dict[str, Any]]:
    """The function by template logical id (``GetRunFunction``) or physical name."""
    functions: dict[str, dict[str, Any]] = state["functions"]
    if wanted in functions:
        return wanted, functions[wanted]
    for logical_id, config in functions.items():
        if config["name"] == wanted:
            return logical_id, config
    raise UsageError(f"unknown function {wanted!r}; the template's functions: {', '.join(sorted(functions))}")


def read_event(source: str | None) -> Any:
    """The event from a JSON file, ``-`` (stdin), or ``{}`` when there is none."""
    if source is None:
        return {}
    if source == "-":
        text, where = sys.stdin.read(), "stdin"
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"event file {source} not found")
        text, where = path.read_text(), source
    try:
        return json.loads(text or "{}")
    except ValueError as exc:
        raise UsageError(f"the event in {where} is not JSON: {exc}") from None


# ------------------------------------------------------------- the function's process
def function_env(
    config: dict[str, Any], aws_env: dict[str, str], role_credentials: dict[str, str] | None
) -> dict[str, str]:
    """The environment the stack gives this function's workers (one recipe for both)."""
    return lambda_environment(
        name=config["name"],
        region=config["region"],
        memory_mb=config["memory_mb"],
        runtime=config["runtime"],
        handler=config["handler"],
        function_env=config["environment"],
        aws_env=aws_env,
        role_credentials=role_credentials,
    )


def role_credentials(config: dict[str, Any], aws_env: dict[str, str]) -> dict[str, str]:
    """The function's execution-role credentials, as the stack gets them for its workers."""
    import boto3

    sts = boto3.client(
        "sts",
        endpoint_url=aws_env["AWS_ENDPOINT_URL"],
        region_name=config["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's dummy keys
    )
    keys = sts.assume_role(RoleArn=config["role"], RoleSessionName=config["name"][:64], DurationSeconds=3600)[
        "Credentials"
    ]
    return {
        "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
        "AWS_SESSION_TOKEN": keys["SessionToken"],
    }


def _logs_to_stderr(conn: Connection, handler: str, env: dict[str, str]) -> None:
    """``worker_main`` with the process's stdout sent to stderr: handlers log to stdout,
    and this command's stdout is the result alone."""
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    worker_main(conn, handler, env)


def invoke(config: dict[str, Any], event: Any, env: dict[str, str]) -> tuple[Any, bool]:
    """Run the handler once on ``event`` in a fresh process whose environment is ``env``:
    (the result or Lambda's error payload, whether it errored)."""
    return invoke_each(config, [event], env)[0]


def invoke_each(config: dict[str, Any], events: list[Any], env: dict[str, str]) -> list[tuple[Any, bool]]:
    """Run the handler on each event in turn in one fresh process (a warm worker after the
    first: the module is imported once), as ``invoke`` does for one. If the process times
    out or dies, that event's answer is Lambda's (``Sandbox.Timedout``,
    ``Runtime.ExitError``) and the events after it are not run (a shorter list)."""
    parent_conn, child_conn = _SPAWN.Pipe()
    process = _SPAWN.Process(
        target=_logs_to_stderr,
        args=(child_conn, config["handler"], env),
        name=f"lambda:{config['name']}",
        daemon=True,
    )
    process.start()
    child_conn.close()
    answers: list[tuple[Any, bool]] = []
    timeout_s = config["timeout_s"]
    try:
        for event in events:
            request_id = str(uuid.uuid4())
            context = {
                "function_name": config["name"],
                "function_version": "$LATEST",
                "invoked_function_arn": config["arn"],
                "memory_limit_in_mb": config["memory_mb"],
                "aws_request_id": request_id,
                "log_group_name": f"/aws/lambda/{config['name']}",
                "log_stream_name": f"local/[$LATEST]{uuid.uuid4().hex}",
                "deadline_epoch_ms": int(time.time() * 1000) + timeout_s * 1000,
            }
            try:
                parent_conn.send((event, context))
                if not parent_conn.poll(timeout_s):
                    message = (
                        f"RequestId: {request_id} Error: Task timed out after "
                        f"{timeout_s:.2f} seconds"
                    )  # Lambda's wording
                    answers.append((json.loads(error_payload("Sandbox.Timedout", message, [])), True))
                    break
                payload, errored = parent_conn.recv()
            except (EOFError, OSError):
                answers.append((_exit_payload(process, request_id), True))
                break
            answers.append((json.loads(payload), errored))
        else:
            with contextlib.suppress(OSError):  # done: let it exit
                parent_conn.send(None)
    finally:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
        parent_conn.close()
    return answers


def _exit_payload(process: Any, request_id: str) -> dict[str, str]:
    """Lambda's answer for an invocation whose runtime process exited."""
    process.join(timeout=5)
    code = process.exitcode
    if code is not None and code < 0:
        name = signal.strsignal(-code) or f"signal {-code}"
        reason = f"Runtime exited with error: signal: {name[:1].lower()}{name[1:]}"
    elif code:
        reason = f"Runtime exited with error: exit status {code}"
    else:
        reason = "Runtime exited without providing a reason"
    return {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: {reason}"}


def run(args: Any) -> int:
    try:
        state = read_state(Path(args.state_file))
        logical_id, config = find_function(state, args.function)
        event = read_event(args.event)
    except UsageError as exc:
        print(f"invoke: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    aws_env: dict[str, str] = state["aws_env"]
    credentials = role_credentials(config, aws_env) if state.get("iam") else None
    env = function_env(config, aws_env, credentials)
    print(
        f"invoke: {logical_id} ({config['name']}, {config['handler']}) against "
        f"{aws_env['AWS_ENDPOINT_URL']}{' with its IAM role' if credentials else ''}",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    result, errored = invoke(config, event, env)
    print(
        f"invoke: {'raised' if errored else 'returned'} in {time.perf_counter() - started:.2f}s",
        file=sys.stderr,
        flush=True,
    )
    print(json.dumps(result, indent=2), flush=True)
    return EXIT_RAISED if errored else EXIT_OK


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "invoke",
        help="run one function's handler once against the running local stack",
        description="Run one function's real handler once, in a fresh process with the "
        "function's environment from the running local stack (its template "
        "variables as the stack resolved them, the Lambda reserved variables, "
        "the stack's AWS endpoint and, when IAM is enforced, its role's "
        "credentials): `sam local invoke` without Docker. Prints the result "
        "(JSON) on stdout, logs on stderr; exit 0 returned, 1 raised (Lambda's "
        "error payload on stdout), 2 usage error.",
    )
    parser.add_argument(
        "function",
        metavar="FUNCTION",
        help="the template's logical id (e.g. GetRunFunction) or the function's name",
    )
    parser.add_argument(
        "-e",
        "--event",
        metavar="PATH",
        help="the event, a JSON file (e.g. events/api/health.json) or - for stdin (default: {})",
    )
    parser.add_argument(
        "--state-file",
        default=str(STATE_FILE),
        help=f"where `serve` wrote the local stack's state (default: ./{STATE_FILE})",
    )
