"""The body of a warm Lambda worker process (stdlib only).

Kept apart from ``lambda_runtime`` on purpose: a spawned process imports the module
that holds its target, and this one must not drag moto or boto3 into a worker before
the handler asks for them. Results travel over the Pipe, never stdout, because
handlers log JSON lines to stdout.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib
import json
import os
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


def worker_main(conn: Connection, handler: str, env: dict[str, str]) -> None:
    """Serve invocations from ``conn`` until it closes or sends ``None``.

    Each message is ``(event, context_fields)``; each reply ``(payload_json, errored)``.
    """
    os.environ.clear()
    os.environ.update(env)
    func: Callable[[Any, LambdaContext], Any] | None = None
    trim, trimmed = _trimmer(), True
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
