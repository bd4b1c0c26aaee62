"""The body of a warm Lambda worker process (stdlib only).

Kept apart from ``lambda_runtime`` on purpose: a new process imports the module that holds
its target, and this one must not drag moto or boto3 into a worker before the handler asks
for them. Results travel over the Pipe, never stdout, because handlers log JSON lines to
stdout.

The stack's workers are forks of a forkserver that imported ``PRELOAD_MODULES`` once
(``_preload``), so they start with those third-party libraries loaded, imported under the
inherited basics of the environment only; ``worker_main`` then sets the function's own
environment and re-applies what those libraries took from it at import
(``PRELOAD_IMPORT_ENV``). The handler — ``assay_service`` — is still imported by each worker
on its first invocation. ``assay local invoke`` and ``call_in_env`` one-offs are spawned
fresh, nothing preloaded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


@dataclass
class LambdaContext:
    """The subset of the Lambda context object handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline_epoch_ms: int

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_epoch_ms - int(time.time() * 1000))


class HandlerLoadError(Exception):
    """Handler could not be imported; ``error_type`` mirrors the Lambda runtime's."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


# Parent variables a worker keeps; everything else comes from the function's own
# configuration, so one function's variables never leak into another's.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")

# Third-party modules the workers' forkserver imports once (``_preload``), so that each
# worker's cold start does not: ~1.3 s of CPU and ~40 MB a worker, most of it Powertools'
# event handler with its OpenAPI models (pydantic), regex and botocore. Never assay_service
# (its code must be re-imported by each new worker, as it is edited while the stack runs).
PRELOAD_MODULES = (
    "botocore.session",
    "botocore.client",
    "botocore.config",
    "pydantic",
    "pydantic_core",
    "regex",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.openapi.params",
)

# What importing PRELOAD_MODULES reads from the environment (tests/local check the list).
# The forkserver imports them under INHERITED_ENV only, so what they kept is the value of
# the basics, or the library's default. ``_reapply_import_env`` fixes up the first group for
# each function; a function whose environment gives any other one a different value than
# the forkserver saw gets spawned workers (``needs_spawn``), which import everything anew.
PRELOAD_ENV_REAPPLIED = ("AWS_EXECUTION_ENV",)  # Powertools' User-Agent suffix "PTEnv/…"
PRELOAD_IMPORT_ENV = PRELOAD_ENV_REAPPLIED + (
    "AWS_LAMBDA_INITIALIZATION_TYPE",  # Powertools metrics' cold-start flag
    "POWERTOOLS_DEBUG",  # Powertools' own package logger
    "POWERTOOLS_TRACE_MIDDLEWARES",  # middleware decorators applied at import
    "PYDANTIC_DISABLE_PLUGINS",
    "HOME",
    "PYTHONTZPATH",
    "PYTHONUSERBASE",
    "_PYTHON_PROJECT_BASE",
    "_PYTHON_SYSCONFIGDATA_NAME",
)


def needs_spawn(env: dict[str, str], basics: dict[str, str] | None = None) -> bool:
    """Whether a worker with environment ``env`` must not be a fork of the preloaded
    forkserver: ``env`` gives a variable the preloaded libraries read at import another
    value than the forkserver's (``basics``, default: this process's INHERITED_ENV)."""
    if basics is None:
        basics = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    return any(env.get(k) != basics.get(k) for k in PRELOAD_IMPORT_ENV if k not in PRELOAD_ENV_REAPPLIED)


def _reapply_import_env() -> None:
    """Give the libraries the forkserver preloaded what they would have read from this
    function's environment, had the worker imported them itself."""
    user_agent: Any = sys.modules.get("aws_lambda_powertools.shared.user_agent")
    if user_agent is not None:
        exec_env = os.environ.get("AWS_EXECUTION_ENV", "NA")
        old_no_op = user_agent.HEADER_NO_OP
        user_agent.EXEC_ENV = exec_env
        user_agent.HEADER_NO_OP = old_no_op.rsplit("PTEnv/", 1)[0] + f"PTEnv/{exec_env}"


def lambda_environment(
    *,
    name: str,
    region: str,
    memory_mb: int,
    runtime: str,
    handler: str,
    function_env: dict[str, str],
    aws_env: dict[str, str],
    role_credentials: dict[str, str] | None,
) -> dict[str, str]:
    """The environment of a function's process, as Lambda builds it: the inherited basics,
    the function's variables, the stack's AWS endpoint (and the role's credentials), then the
    reserved variables the runtime sets (functions cannot override them). One recipe for the
    stack's warm workers and ``assay local invoke``."""
    env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    # X-Ray has no daemon locally; the function's own setting wins if it has one.
    env["POWERTOOLS_TRACE_DISABLED"] = "true"
    env.update(function_env)
    env.update(aws_env)
    if role_credentials is not None:
        # Lambda hands each function its execution role's temporary credentials.
        env.update(role_credentials)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
            "_HANDLER": handler,
        }
    )
    return env


def error_payload(error_type: str, message: str, stack: list[str]) -> str:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": stack})


def _load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    module_name, _, func_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the runtime reports any import-time failure this way
        raise HandlerLoadError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    func = getattr(module, func_name, None)
    if not callable(func):
        raise HandlerLoadError(
            "Runtime.HandlerNotFound", f"Handler '{func_name}' missing on module '{module_name}'"
        )
    return func


# A worker that has had no invocation for this long gives its freed memory back to the
# system. CPython and glibc keep what a big invocation freed (a run's records, a finalize's
# evaluations) mapped for reuse, so an idle worker kept the peak of its busiest invocation:
# ~200 MB each, a dozen of them, where the code and its imports need ~100 MB.
TRIM_AFTER_IDLE_S = 1.0


def _trimmer() -> Callable[[], None]:
    """Collect garbage, then hand free heap pages back (glibc's ``malloc_trim``; elsewhere
    only the collection)."""
    name = ctypes.util.find_library("c")
    malloc_trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None

    def trim() -> None:
        gc.collect()
        if malloc_trim is not None:
            malloc_trim(0)

    return trim


def _freeze_cold_start() -> bool:
    """After the first invocation (the cold start: the handler's modules imported, its
    clients built, botocore's service models loaded — ~100,000 objects that live as long as
    the worker): collect, then move what survived out of the collector's reach
    (``gc.freeze``), as the forkserver did with the preloaded libraries. Every later full
    collection — the idle trim's, and those the allocator triggers during invocations —
    then walks only what was allocated since, instead of ~30 ms over those objects."""
    gc.collect()
    gc.freeze()
    return True


def worker_main(conn: Connection, handler: str, env: dict[str, str], niceness: int = 0) -> None:
    """Serve invocations from ``conn`` until it closes or sends ``None``.

    Each message is ``(event, context_fields)``; each reply ``(payload_json, errored)``.
    ``niceness`` > 0 lowers the process's CPU priority by that much (``os.nice``) before
    anything else runs in it (threads the handler starts inherit it).
    """
    # A terminal's Ctrl-C reaches the whole process group: the stack stops its workers
    # itself (and a worker whose pipe closes returns), so none prints a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness > 0:
        os.nice(niceness)
    os.environ.clear()
    os.environ.update(env)
    _reapply_import_env()
    func: Callable[[Any, LambdaContext], Any] | None = None
    trim, trimmed, frozen = _trimmer(), True, False
    while True:
        try:
            if not trimmed and not conn.poll(TRIM_AFTER_IDLE_S):
                trim()
                trimmed = True
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        event, context_fields = message
        try:
            if func is None:
                func = _load_handler(handler)
            result = func(event, LambdaContext(**context_fields))
            try:
                reply = (json.dumps(result), False)
            except (TypeError, ValueError) as exc:
                reply = (error_payload("Runtime.MarshalError", str(exc), []), True)
        except HandlerLoadError as exc:
            reply = (error_payload(exc.error_type, str(exc), []), True)
        except Exception as exc:
            # Drop this module's own frame, as the Lambda runtime hides its frames.
            stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
            reply = (error_payload(type(exc).__name__, str(exc), stack), True)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        conn.send(reply)
        trimmed = False
        if not frozen and func is not None:
            frozen = _freeze_cold_start()


def call_in_env(conn: Connection, target: str, kwargs: dict[str, Any], env: dict[str, str]) -> None:
    """Call ``target`` (``module.func``) with ``kwargs`` under ``env`` and send back
    ``(ok, text)``: the result's repr, or the error's ``Type: message``.

    Used for one-off calls (the tenant bootstrap) that must see exactly the functions'
    environment and must not leave module-level caches (settings, boto3 clients bound
    to this stack's endpoint) behind in the long-lived parent process.
    """
    os.environ.clear()
    os.environ.update(env)
    module_name, _, func_name = target.rpartition(".")
    try:
        result = getattr(importlib.import_module(module_name), func_name)(**kwargs)
        reply = (True, repr(result))
    except Exception as exc:
        reply = (False, f"{type(exc).__name__}: {exc}")
    conn.send(reply)
    conn.close()
