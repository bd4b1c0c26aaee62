"""Lambda workers are forks of a forkserver that preloaded third-party libraries
(assay_local/_preload.py): each still runs under exactly its function's environment, and
imports its handler — assay_service, edited while the stack runs — itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from assay_local import _worker
from assay_local.lambda_runtime import (
    _FORKSERVER,
    FunctionConfig,
    LambdaRuntime,
    _WorkerPool,
    forkserver_pid,
)

# What this module saw when the worker imported it as its handler (its first invocation).
AT_IMPORT = {
    "assay_service": sorted(m for m in sys.modules if m.split(".")[0] == "assay_service"),
    "preloaded": [m for m in _worker.PRELOAD_MODULES if m in sys.modules],
}


def report(event: Any, context: Any) -> dict[str, Any]:
    user_agent = sys.modules.get("aws_lambda_powertools.shared.user_agent")
    return {
        "environ": dict(os.environ),
        "at_import": AT_IMPORT,
        "parent": os.getppid(),
        "exec_env": getattr(user_agent, "EXEC_ENV", None),
    }


def invoke(pool: _WorkerPool) -> dict[str, Any]:
    worker = pool.acquire()
    try:
        context = {
            "function_name": "f",
            "function_version": "$LATEST",
            "invoked_function_arn": "arn:f",
            "memory_limit_in_mb": 128,
            "aws_request_id": "r",
            "log_group_name": "g",
            "log_stream_name": "s",
            "deadline_epoch_ms": int(time.time() * 1000) + 60_000,
        }
        payload, errored = worker.invoke({}, context, 120)
        assert not errored, payload
        result: dict[str, Any] = json.loads(payload)
        return result
    finally:
        pool.release(worker)


def function_env(name: str, **variables: str) -> dict[str, str]:
    return _worker.lambda_environment(
        name=name,
        region="eu-west-1",
        memory_mb=128,
        runtime="python3.12",
        handler=f"{__name__}.report",
        function_env=variables,
        aws_env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": name},
        role_credentials=None,
    )


def config(name: str) -> FunctionConfig:
    return FunctionConfig(
        name=name,
        arn=f"arn:{name}",
        handler=f"{__name__}.report",
        timeout_s=120,
        memory_mb=128,
        runtime="python3.12",
        region="eu-west-1",
        role="r",
        env=(),
    )


def test_forked_workers_run_under_their_own_environment_and_import_their_handler():
    os.environ["ASSAY_TEST_PARENT_ONLY"] = "leak"  # the stack process's: never a worker's
    runtime = LambdaRuntime(aws_env={})
    pools = []
    try:
        runtime._start_forkserver()
        server = forkserver_pid()
        seen = {}
        for name, variables in (("fa", {"ONLY_A": "1", "SHARED": "a"}), ("fb", {"SHARED": "b"})):
            env = function_env(name, **variables)
            assert not _worker.needs_spawn(env)
            pool = _WorkerPool(config(name), env, max_workers=1, ctx=_FORKSERVER)
            pools.append(pool)
            seen[name] = (env, invoke(pool))
        for env, result in seen.values():
            assert result["environ"] == env  # exactly: nothing of the parent, the server or the other
            assert result["parent"] == server  # a fork of the preloaded forkserver …
            assert result["at_import"]["preloaded"] == list(_worker.PRELOAD_MODULES)
            # … which holds no assay_service module: the handler's code is imported anew
            assert result["at_import"]["assay_service"] == []
            assert result["exec_env"] == "AWS_Lambda_python3.12"  # re-applied after the fork
    finally:
        del os.environ["ASSAY_TEST_PARENT_ONLY"]
        for pool in pools:
            pool.close()
        runtime.shutdown()
    assert forkserver_pid() is None
    assert not os.path.exists(f"/proc/{server}") or _zombie_or_gone(server)


def test_a_ctrl_c_to_the_process_group_leaves_workers_to_the_stack():
    """A terminal's Ctrl-C signals every process of the group: a worker ignores it (no
    KeyboardInterrupt traceback per worker) and still serves until the stack stops it."""
    runtime = LambdaRuntime(aws_env={})
    pool = None
    try:
        runtime._start_forkserver()
        pool = _WorkerPool(config("fc"), function_env("fc"), max_workers=1, ctx=_FORKSERVER)
        invoke(pool)
        (pid,) = pool.pids(None)
        os.kill(pid, signal.SIGINT)
        time.sleep(0.2)
        assert invoke(pool)["environ"]["AWS_LAMBDA_FUNCTION_NAME"] == "fc"
        assert pool.pids(None) == [pid]  # the same worker, alive
    finally:
        if pool is not None:
            pool.close()
        runtime.shutdown()


def _zombie_or_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_no_assay_service_module_is_preloaded():
    assert not [
        m for m in _worker.PRELOAD_MODULES if m.split(".")[0] in ("assay_service", "assay_local", "tests")
    ]


RECORD_ENV_READS = """
import importlib, json, os, sys
reads = set()
cls = type(os.environ)
get, getitem, contains = cls.get, cls.__getitem__, cls.__contains__
cls.get = lambda self, k, d=None: (reads.add(k), get(self, k, d))[1]
cls.__getitem__ = lambda self, k: (reads.add(k), getitem(self, k))[1]
cls.__contains__ = lambda self, k: (reads.add(k), contains(self, k))[1]
for name in sys.argv[1:]:
    importlib.import_module(name)
cls.get, cls.__getitem__, cls.__contains__ = get, getitem, contains
print(json.dumps(sorted(reads)))
"""


def test_every_variable_the_preloaded_libraries_read_at_import_is_accounted_for():
    """If a library started reading another variable at import, the forkserver's value would
    stick in every worker: add it to PRELOAD_IMPORT_ENV (then a function setting it is
    spawned), or re-apply it in _worker._reapply_import_env."""
    basics = {k: os.environ[k] for k in _worker.INHERITED_ENV if k in os.environ}
    out = subprocess.run(
        [sys.executable, "-c", RECORD_ENV_READS, *_worker.PRELOAD_MODULES],
        env=basics,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    read = set(json.loads(out)) - set(_worker.INHERITED_ENV)
    assert read <= set(_worker.PRELOAD_IMPORT_ENV), sorted(read - set(_worker.PRELOAD_IMPORT_ENV))


def test_a_function_setting_what_the_libraries_read_at_import_gets_spawned_workers():
    assert not _worker.needs_spawn(function_env("f", LOG_LEVEL="DEBUG"))
    assert _worker.needs_spawn(function_env("f", POWERTOOLS_DEBUG="true"))
    assert _worker.needs_spawn(function_env("f", PYDANTIC_DISABLE_PLUGINS="__all__"))
