"""Run the real handler code behind moto's Lambda, in warm worker processes.

moto only runs Lambda code in Docker. Its one usable seam is the private method
``moto.awslambda.models.LambdaFunction._invoke_lambda(self, event) -> (payload, errored,
logs)``, called for every Invoke — from boto3 clients (the HTTP front, handlers) and
from the Step Functions interpreter, which reaches Lambda over HTTP through the moto
server. moto serves each request on its own thread, so concurrent Map children arrive
here concurrently; each function gets a small pool of worker processes, grown on demand.

The hook is private API: moto is pinned, and the e2e tests fail if it stops being used.

A worker that dies mid-invocation (SIGKILL, out of memory, ``os._exit``) is answered as
Lambda answers a runtime that exited: ``FunctionError`` with ``{"errorType":
"Runtime.ExitError", "errorMessage": "RequestId: … Error: Runtime exited with error: signal:
killed"}``. moto's Step Functions interpreter names every function error after the payload's
``errorType``, where Step Functions reports such a crash as ``Lambda.Unknown``
(docs: "Unhandled errors in Lambda are reported as Lambda.Unknown … out-of-memory errors");
``SFN_CRASH_HOOKS`` renames it there — and only there: a direct Invoke still sees Lambda's
payload. A worker found dead before it was sent anything is replaced, and the event, which
never ran, is sent once more to a fresh worker.

Workers are forks of multiprocessing's ``forkserver``, which imported the heavy third-party
libraries once (``_preload``: botocore, pydantic, regex, Powertools and its event handler,
under the inherited basics of the environment only, then ``gc.freeze()``): a worker's cold
start is its handler's own import, and those libraries' pages are shared between the
workers. The forkserver is started with the first runtime (``install``) and stopped with the
last one (``shutdown``); it is the parent of the workers but not a worker itself (not in
``worker_pids``). A function whose environment would change what those libraries read at
import (``_worker.needs_spawn``) gets spawned workers instead, as do one-off ``call``s.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.spawn
import os
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
    CustomErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import (
    StateTaskLambda,
)

from assay_local._worker import (
    INHERITED_ENV,
    call_in_env,
    error_payload,
    lambda_environment,
    needs_spawn,
    worker_main,
)
from assay_local.moto_hooks import MotoHook

_SPAWN = multiprocessing.get_context("spawn")
_FORKSERVER = multiprocessing.get_context("forkserver")

# multiprocessing makes every new process (spawned, or forked by the forkserver) import the
# parent's ``__main__`` again, so that a target defined there can be unpickled. A worker's
# target is ``_worker.worker_main``, never the parent's main; and the parent's main is
# ``assay_local.__main__``, a benchmark or a test runner, all of which import moto and the
# stack: ~2.5 s of every cold start, for nothing a handler uses. While a worker is started
# (``_WORKER_START.active``, this thread only) its preparation data leaves the main out.
_WORKER_START = threading.local()
_preparation_data = multiprocessing.spawn.get_preparation_data


def _worker_preparation_data(name: str) -> dict[str, Any]:
    data = _preparation_data(name)
    if getattr(_WORKER_START, "active", False):
        data.pop("init_main_from_name", None)
        data.pop("init_main_from_path", None)
    return data


multiprocessing.spawn.get_preparation_data = _worker_preparation_data


def _start_without_parent_main(process: BaseProcess) -> None:
    """Start ``process`` (whose target lives in ``assay_local._worker``) without the
    parent's ``__main__``."""
    _WORKER_START.active = True
    try:
        process.start()
    finally:
        _WORKER_START.active = False


# The one module the forkserver imports; it imports _worker.PRELOAD_MODULES (third-party only).
FORKSERVER_PRELOAD = ["assay_local._preload"]
# Idle workers beyond one per function are stopped after this long (Lambda reclaims idle
# execution environments after minutes; the exact time is not documented).
WORKER_IDLE_S = 120.0
LAST_WORKER_IDLE_S = 900.0  # … and the last one of a function after this long
REAP_EVERY_S = 15.0


@dataclass(frozen=True)
class FunctionConfig:
    """What a worker needs from a moto ``LambdaFunction`` (read at invoke time, so a
    configuration update reaches new workers)."""

    name: str
    arn: str
    handler: str
    timeout_s: int
    memory_mb: int
    runtime: str
    region: str
    role: str
    env: tuple[tuple[str, str], ...]

    @classmethod
    def from_moto(cls, fn: LambdaFunction) -> FunctionConfig:
        return cls(
            name=fn.function_name,
            arn=fn.function_arn,
            handler=fn.handler or "",  # a zip function always has one
            timeout_s=int(fn.timeout),
            memory_mb=int(fn.memory_size),
            runtime=str(fn.run_time),
            region=fn.region,
            role=str(fn.role),
            env=tuple(sorted((fn.environment_vars or {}).items())),
        )


class _NotDelivered(Exception):
    """The event could not be sent: the worker's pipe was already broken, so the worker never
    read it and the handler never ran (safe to send again, to another worker)."""


class _Worker:
    """One warm process serving one function, one invocation at a time."""

    def __init__(
        self, config: FunctionConfig, env: dict[str, str], ctx: BaseContext = _SPAWN, niceness: int = 0
    ) -> None:
        parent_conn, child_conn = ctx.Pipe()
        self.conn: Connection = parent_conn
        self.process: BaseProcess = ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(child_conn, config.handler, env, niceness),
            name=f"lambda:{config.name}",
            daemon=True,
        )
        _start_without_parent_main(self.process)
        child_conn.close()
        self.invocations = 0  # the first one also waits for the handler's import (cold start)
        self.idle_since = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def invoke(self, event: Any, context: dict[str, Any], timeout_s: float) -> tuple[str, bool]:
        """Send one event; ``_NotDelivered`` if it could not be sent, ``TimeoutError`` if no
        answer in time, ``EOFError`` (or ``OSError``) if the process died meanwhile."""
        try:
            self.conn.send((event, context))
        except OSError as exc:  # BrokenPipeError, ConnectionResetError: nobody reads
            raise _NotDelivered(repr(exc)) from exc
        if not self.conn.poll(timeout_s):
            raise TimeoutError
        return self.conn.recv()

    def exit_reason(self) -> str:
        """How the process ended, worded as the Lambda runtime words it (call once the pipe
        said EOF: the process is gone or going)."""
        self.process.join(timeout=1)  # reap it, to read its exit code
        code = self.process.exitcode
        if code is None or code == 0:
            return "Runtime exited without providing a reason"
        if code < 0:
            name = signal.strsignal(-code) or f"signal {-code}"
            return f"Runtime exited with error: signal: {name[:1].lower()}{name[1:]}"
        return f"Runtime exited with error: exit status {code}"

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # already gone: nothing to tell it
            self.conn.send(None)
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class _WorkerPool:
    """Warm workers of one function configuration: idle ones are reused, new ones are
    spawned while fewer than ``max_workers`` exist, beyond that callers wait; from
    ``ctx`` (the preloaded forkserver, or spawn), at CPU priority ``niceness`` (0: the
    stack's own)."""

    def __init__(
        self,
        config: FunctionConfig,
        env: dict[str, str],
        max_workers: int,
        ctx: BaseContext = _SPAWN,
        niceness: int = 0,
    ) -> None:
        self.config = config
        self._env = env
        self.ctx = ctx
        self.niceness = niceness
        self._max = max_workers
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._spawned = 0  # live workers plus those being spawned
        self._cond = threading.Condition()
        self._closed = False

    def acquire(self) -> _Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the local Lambda runtime is shutting down")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.process.is_alive():
                        self._busy.add(worker)
                        return worker
                    # Died while idle (killed, out of memory): never hand it out.
                    self._spawned -= 1
                    worker.conn.close()
                if self._spawned < self._max:
                    self._spawned += 1
                    break
                self._cond.wait()
        try:
            worker = _Worker(self.config, self._env, self.ctx, self.niceness)  # start outside the lock
        except BaseException:
            with self._cond:
                self._spawned -= 1
                self._cond.notify()
            raise
        with self._cond:
            self._busy.add(worker)
        return worker

    def release(self, worker: _Worker) -> None:
        with self._cond:
            self._busy.discard(worker)
            if not self._closed:
                worker.idle_since = time.monotonic()
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.stop()

    def reap(self, idle_s: float, keep: int) -> int:
        """Stop the workers idle for longer than ``idle_s``, but the ``keep`` most recently
        used; how many were stopped."""
        now = time.monotonic()
        with self._cond:
            if self._closed:
                return 0
            by_recency = sorted(self._idle, key=lambda w: w.idle_since, reverse=True)
            stale = [w for w in by_recency[keep:] if now - w.idle_since > idle_s]
            for worker in stale:
                self._idle.remove(worker)
                self._spawned -= 1
            if stale:
                self._cond.notify_all()
        for worker in stale:
            worker.stop()
        return len(stale)

    def discard(self, worker: _Worker) -> None:
        """Forget a worker that was killed (timeout) or died."""
        with self._cond:
            self._busy.discard(worker)
            self._spawned -= 1
            self._cond.notify()

    @property
    def size(self) -> int:
        with self._cond:
            return len(self._idle) + len(self._busy)

    def pids(self, busy: bool | None = None) -> list[int]:
        """Process ids of the busy workers (``busy=True``), the idle ones (``False``) or
        all (``None``)."""
        with self._cond:
            workers = ([] if busy is False else list(self._busy)) + ([] if busy is True else list(self._idle))
        return sorted(w.pid for w in workers if w.pid is not None)

    def close(self) -> None:
        """Stop idle workers and kill busy ones (their callers get an error payload)."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._cond.notify_all()
        for worker in idle:
            worker.stop()
        for worker in busy:
            # Only the process: the invoking thread sees EOF and cleans up the pipe.
            worker.process.kill()


# ------------------------------------------------------------------ the forkserver
# One per process (multiprocessing keeps it process-global), shared by the runtimes alive in
# it: started by the first, stopped with the last.
_FORKSERVER_LOCK = threading.Lock()
_forkserver_users = 0
FORKSERVER_STOP_S = 5.0  # its workers have this long to exit before it is killed


def _use_forkserver() -> None:
    """Count one more runtime using the forkserver; start it if none runs (it preloads in
    the background, while the stack deploys)."""
    global _forkserver_users
    with _FORKSERVER_LOCK:
        _forkserver_users += 1
        _FORKSERVER.set_forkserver_preload(FORKSERVER_PRELOAD)
        multiprocessing.forkserver.ensure_running()


def _release_forkserver() -> None:
    """Count one runtime less; the last one stops the forkserver (once the workers it forked
    are gone: each holds its "alive" pipe open, and the server exits when none does)."""
    global _forkserver_users
    with _FORKSERVER_LOCK:
        _forkserver_users -= 1
        if _forkserver_users == 0:
            stop_forkserver(FORKSERVER_STOP_S)


def forkserver_pid() -> int | None:
    """The process id of this process's forkserver, if one runs."""
    server: Any = multiprocessing.forkserver._forkserver
    pid: int | None = server._forkserver_pid
    return pid


def stop_forkserver(timeout_s: float) -> None:
    """Stop this process's forkserver: ``ForkServer._stop`` (private, Python 3.12), with a
    bound on the wait — past ``timeout_s`` the server, kept alive by a worker that did not
    exit, is killed."""
    server: Any = multiprocessing.forkserver._forkserver
    with server._lock:
        pid = server._forkserver_pid
        if pid is None:
            return
        os.close(server._forkserver_alive_fd)  # asks it to stop, once its workers are gone
        server._forkserver_alive_fd = None
        server._forkserver_pid = None
        server._forkserver_address = None  # abstract socket on Linux: nothing to unlink
        deadline = time.monotonic() + timeout_s
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)


# (role ARN, function name) -> AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
RoleCredentials = Callable[[str, str], dict[str, str]]
# A function's configuration -> how much lower than the stack's its workers' CPU priority is
# (``os.nice`` increment; 0 = the same).
Niceness = Callable[[FunctionConfig], int]


class LambdaRuntime:
    """Dispatches moto Lambda invocations to per-function worker pools.

    ``install()`` replaces moto's hook; only one runtime can be installed per process
    (moto's backends are process-global anyway). With ``role_credentials``, each worker
    runs with its function's execution-role credentials instead of ``aws_env``'s keys,
    as on Lambda (``iam``). With ``niceness``, a function's new workers run at the CPU
    priority it gives (on Lambda each execution environment has a CPU of its own; here they
    share the machine's, and the stack lowers the functions no client waits on).
    """

    def __init__(
        self,
        aws_env: dict[str, str],
        max_workers_per_function: int = 4,
        role_credentials: RoleCredentials | None = None,
        idle_s: float = WORKER_IDLE_S,
        niceness: Niceness | None = None,
    ) -> None:
        self._aws_env = dict(aws_env)
        self._niceness = niceness
        self._idle_s = idle_s
        self._stopping = threading.Event()
        self._reaper: threading.Thread | None = None
        self._role_credentials = role_credentials
        self._max_workers = max_workers_per_function
        self._pools: dict[str, _WorkerPool] = {}
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        # warm handler wall time, for the cost model
        self._busy_seconds: defaultdict[str, float] = defaultdict(float)
        self._warm_counts: Counter[str] = Counter()
        self._cold_seconds: defaultdict[str, float] = defaultdict(float)  # first invocation of each worker
        self._memory_mb: dict[str, int] = {}
        self._uses_forkserver = False

    # ------------------------------------------------------------------ hook
    def install(self) -> None:
        self._start_forkserver()
        if self._reaper is None:
            self._reaper = threading.Thread(target=self._reap_idle, name="lambda-reaper", daemon=True)
            self._reaper.start()
        HOOK.install(self)
        try:
            for hook in SFN_CRASH_HOOKS:
                hook.install(self)
        except BaseException:
            self.uninstall()
            raise

    def uninstall(self) -> None:
        for hook in SFN_CRASH_HOOKS:
            hook.uninstall(self)
        HOOK.uninstall(self)

    # ----------------------------------------------------------- invocation
    def invocation_counts(self) -> dict[str, int]:
        """Invocations per function name since start (including failed ones)."""
        with self._lock:
            return dict(self._counts)

    def invocation_seconds(self) -> dict[str, tuple[float, int, float, int]]:
        """Per function name: (seconds in warm invocations, their number, seconds in each
        worker's first invocation — the handler's import included —, memory in MB)."""
        with self._lock:
            return {
                n: (self._busy_seconds[n], self._warm_counts[n], self._cold_seconds[n], mb)
                for n, mb in self._memory_mb.items()
            }

    def worker_counts(self) -> dict[str, int]:
        """Live worker processes per function name."""
        with self._lock:
            pools = list(self._pools.values())
        return {pool.config.name: pool.size for pool in pools}

    def worker_pids(self, busy: bool | None = None) -> dict[str, list[int]]:
        """Worker process ids per function name: those serving an invocation now
        (``busy=True``), the idle ones (``False``) or all (``None``)."""
        with self._lock:
            pools = list(self._pools.values())
        return {pool.config.name: pool.pids(busy) for pool in pools}

    def invoke(self, fn: LambdaFunction, event: Any) -> tuple[str, bool, str]:
        """Run ``fn``'s handler on ``event`` in a warm worker: (payload, errored, logs)."""
        config = FunctionConfig.from_moto(fn)
        with self._lock:
            self._counts[config.name] += 1
        if isinstance(event, str | bytes):
            # moto hands over the literal "{}" when the Invoke had no payload.
            event = json.loads(event or "{}")
        pool = self._pool_for(config)
        request_id = str(uuid.uuid4())
        for attempt in (1, 2):
            worker = pool.acquire()
            deadline_ms = int(time.time() * 1000) + config.timeout_s * 1000
            context = {
                "function_name": config.name,
                "function_version": "$LATEST",
                "invoked_function_arn": config.arn,
                "memory_limit_in_mb": config.memory_mb,
                "aws_request_id": request_id,
                "log_group_name": f"/aws/lambda/{config.name}",
                "log_stream_name": f"local/[$LATEST]{uuid.uuid4().hex}",
                "deadline_epoch_ms": deadline_ms,
            }
            started, cold = time.perf_counter(), worker.invocations == 0
            worker.invocations += 1
            try:
                payload, errored = worker.invoke(event, context, config.timeout_s)
            except _NotDelivered:
                # The worker died before it read the event, so nothing ran: resend once.
                reason = worker.exit_reason()
                worker.kill()
                pool.discard(worker)
                if attempt == 1:
                    continue
                return crash_payload(request_id, reason), True, ""
            except TimeoutError:
                worker.kill()
                pool.discard(worker)
                message = (
                    f"RequestId: {request_id} Error: Task timed out after "
                    f"{config.timeout_s:.2f} seconds"
                )  # Lambda's wording
                return error_payload("Sandbox.Timedout", message, []), True, ""
            except (EOFError, OSError):
                # Died mid-invocation: the handler may have done part of its work.
                reason = worker.exit_reason()
                worker.kill()
                pool.discard(worker)
                return crash_payload(request_id, reason), True, ""
            break
        pool.release(worker)
        with self._lock:
            (self._cold_seconds if cold else self._busy_seconds)[config.name] += time.perf_counter() - started
            self._warm_counts[config.name] += not cold
            self._memory_mb[config.name] = config.memory_mb
        return payload, errored, ""

    def _start_forkserver(self) -> None:
        with self._lock:
            if self._uses_forkserver or self._stopping.is_set():
                return
            self._uses_forkserver = True
        _use_forkserver()

    def _pool_for(self, config: FunctionConfig) -> _WorkerPool:
        with self._lock:
            pool = self._pools.get(config.arn)
            if pool is not None and pool.config == config:
                return pool
        env = self._worker_env(config)  # may call STS AssumeRole: not under the lock
        self._start_forkserver()  # already running once installed
        with self._lock:
            pool = self._pools.get(config.arn)
            if pool is not None and pool.config == config:
                return pool  # another invocation built it meanwhile
            stale = pool
            ctx = _FORKSERVER if self._uses_forkserver and not needs_spawn(env) else _SPAWN
            niceness = self._niceness(config) if self._niceness is not None else 0
            pool = _WorkerPool(config, env, self._max_workers, ctx, niceness)
            self._pools[config.arn] = pool
        if stale is not None:  # configuration changed: retire the old workers
            stale.close()
        return pool

    def _worker_env(self, config: FunctionConfig) -> dict[str, str]:
        credentials = (
            self._role_credentials(config.role, config.name) if self._role_credentials is not None else None
        )
        return lambda_environment(
            name=config.name,
            region=config.region,
            memory_mb=config.memory_mb,
            runtime=config.runtime,
            handler=config.handler,
            function_env=dict(config.env),
            aws_env=self._aws_env,
            role_credentials=credentials,
        )

    def call(self, target: str, kwargs: dict[str, Any], env: dict[str, str], timeout_s: float) -> str:
        """Run ``target(**kwargs)`` once in a fresh process whose environment is ``env``
        plus this runtime's AWS variables; its repr, or ``RuntimeError`` with the
        error it raised."""
        full_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
        full_env.update(env)
        full_env.update(self._aws_env)
        parent_conn, child_conn = _SPAWN.Pipe()
        process = _SPAWN.Process(target=call_in_env, args=(child_conn, target, kwargs, full_env), daemon=True)
        _start_without_parent_main(process)
        child_conn.close()
        try:
            if not parent_conn.poll(timeout_s):
                raise RuntimeError(f"{target} did not finish in {timeout_s:.0f}s")
            ok, text = parent_conn.recv()
        except EOFError:
            raise RuntimeError(f"{target}: the process exited without an answer") from None
        finally:
            process.kill()
            process.join(timeout=5)
            parent_conn.close()
        if not ok:
            raise RuntimeError(text)
        return text

    def _reap_idle(self) -> None:
        """Like Lambda, which reclaims execution environments left idle, stop the workers
        idle for ``idle_s``: a run's burst of ScoreBatch workers (4 × ~100 MB) does not stay
        resident for the rest of the day. One per function stays warm for
        ``LAST_WORKER_IDLE_S`` (its next request after that is a cold start, as on Lambda)."""
        while not self._stopping.wait(min(self._idle_s, REAP_EVERY_S)):
            with self._lock:
                pools = list(self._pools.values())
            for pool in pools:
                pool.reap(self._idle_s, keep=1)
                pool.reap(max(self._idle_s, LAST_WORKER_IDLE_S), keep=0)

    def shutdown(self) -> None:
        """Stop every worker process, and the forkserver if no other runtime uses it."""
        self._stopping.set()
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            uses_forkserver, self._uses_forkserver = self._uses_forkserver, False
        for pool in pools:
            pool.close()
        if uses_forkserver:
            _release_forkserver()


def crash_payload(request_id: str, reason: str) -> str:
    """Lambda's answer for an invocation whose runtime process exited (``FunctionError``
    set): ``{"errorType": "Runtime.ExitError", "errorMessage": "RequestId: … Error: Runtime
    exited with error: signal: killed"}``, with no stack trace."""
    return json.dumps(
        {"errorType": RUNTIME_EXIT_ERROR, "errorMessage": f"RequestId: {request_id} Error: {reason}"}
    )


def invoke_lambda_hook(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Replacement for ``LambdaFunction._invoke_lambda``."""
    runtime = HOOK.active
    if runtime is None:
        message = "no local Lambda runtime installed"
        return error_payload("Runtime.Unavailable", message, []), True, ""
    return runtime.invoke(self, event)


HOOK = MotoHook(LambdaFunction, "_invoke_lambda", invoke_lambda_hook, "local Lambda runtime")


# --------------------------------------------- how Step Functions names a crashed function
RUNTIME_EXIT_ERROR = "Runtime.ExitError"
LAMBDA_UNKNOWN = "Lambda.Unknown"


def _crash_as_lambda_unknown(owner: type) -> Any:
    """A ``_from_error`` for ``owner`` (a Lambda Task state class of moto's interpreter) that
    reports a function whose runtime exited as ``Lambda.Unknown``.

    moto (5.2.5) names a function error after its payload's ``errorType`` (and ``Exception``
    when there is none); a crash's payload says ``Runtime.ExitError``. Step Functions reports
    unhandled errors such as a crashed or out-of-memory function as ``Lambda.Unknown`` instead,
    which is what the state machine's Retry names. The cause stays the function's payload (it
    says ``Runtime.ExitError`` and how the process ended). Every other error is moto's."""

    def from_error(self: Any, env: Any, ex: Exception) -> FailureEvent:
        failure: FailureEvent = _SFN_HOOKS[owner].original(self, env, ex)
        if _SFN_HOOKS[owner].active is None or not _is_crash(ex):
            return failure
        failure.error_name = CustomErrorName(LAMBDA_UNKNOWN)  # type: ignore[misc]
        for details in (failure.event_details or {}).values():
            if isinstance(details, dict) and "error" in details:
                details["error"] = LAMBDA_UNKNOWN
        return failure

    return from_error


def _is_crash(ex: Exception) -> bool:
    if not isinstance(ex, lambda_eval_utils.LambdaFunctionErrorException):
        return False
    try:
        payload = json.loads(ex.payload)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("errorType") == RUNTIME_EXIT_ERROR


_SFN_HOOKS: dict[type, MotoHook] = {
    owner: MotoHook(
        owner, "_from_error", _crash_as_lambda_unknown(owner), f"crash naming of {owner.__name__}"
    )
    for owner in (StateTaskServiceLambda, StateTaskLambda)  # lambda:invoke, a function ARN
}
SFN_CRASH_HOOKS = tuple(_SFN_HOOKS.values())
