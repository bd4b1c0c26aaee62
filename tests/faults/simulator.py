"""A small at-least-once executor of the REAL state machine definition.

It walks ``statemachine/eval_run.asl.json`` the way Step Functions does for the states the
definition uses (Task on ``lambda:invoke``, a Distributed Map reading its items from S3,
Fail/Succeed), invoking the real handlers in-process:

* a Task's error name is what Lambda reports: the exception's class name, ``Lambda.Unknown``
  when the process died (``LambdaCrash``), ``States.Timeout`` when the Task timed out;
* ``Retry`` is applied as written: the first retrier whose ``ErrorEquals`` matches decides,
  each retrier keeps its own attempt count, ``MaxAttempts`` bounds it (delays are computed
  with the retrier's backoff, cap and FULL jitter and recorded, not slept);
* ``Catch`` moves to its ``Next`` with ``{Error, Cause}`` at its ``ResultPath``;
  ``States.ALL`` does not catch ``States.Runtime`` (as on AWS);
* the Map fails with ``States.ExceedToleratedFailureThreshold`` when more children failed
  than ``ToleratedFailurePercentage``/``ToleratedFailureCount`` allow (default 0).

Faults come from a ``planner`` (seeded, per task/item/attempt, so thread scheduling never
changes which faults are drawn) and are fired by ``FaultInjector`` through botocore events on
the real clients, or by the simulator itself (a timed-out invocation that keeps running while
its retry runs, a Lambda service error after the function succeeded, a redelivered item).
"""

from __future__ import annotations

import copy
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

_ABSENT = object()


class LambdaCrash(BaseException):
    """The function's process died (OOM, kill, runtime exit): no errorType is returned."""


class TaskFailure(Exception):
    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class ExecutionFailed(Exception):
    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


# ----------------------------------------------------------------------------- JSONPath
def path_get(doc: Any, path: str, context: dict[str, Any]) -> Any:
    if path == "$":
        return doc
    if path.startswith("$$."):
        node, parts = context, path[3:].split(".")
    elif path.startswith("$."):
        node, parts = doc, path[2:].split(".")
    else:
        raise TaskFailure("States.Runtime", f"unsupported path {path!r}")
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise TaskFailure("States.Runtime", f"the JSONPath {path!r} could not be found")
        node = node[part]
    return node


def resolve(template: Any, doc: Any, context: dict[str, Any]) -> Any:
    """Parameters / ResultSelector / ItemSelector: keys ending in ``.$`` are paths."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = copy.deepcopy(path_get(doc, value, context))
            else:
                out[key] = resolve(value, doc, context)
        return out
    if isinstance(template, list):
        return [resolve(v, doc, context) for v in template]
    return template


def put_result(doc: Any, result_path: Any, result: Any) -> Any:
    if result_path is None:
        return doc
    if result_path is _ABSENT or result_path == "$":
        return result
    if not result_path.startswith("$.") or not isinstance(doc, dict):
        raise TaskFailure("States.Runtime", f"unsupported ResultPath {result_path!r}")
    out = copy.deepcopy(doc)
    node = out
    parts = result_path[2:].split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = result
    return out


def matches(names: list[str], error: str) -> bool:
    if error in ("States.Runtime", "States.DataLimitExceeded"):
        return error in names  # States.ALL does not catch these
    if "States.ALL" in names:
        return True
    if "States.TaskFailed" in names and error != "States.Timeout":
        return True
    return error in names


# ----------------------------------------------------------------------------- faults
@dataclass
class Fault:
    kind: str
    barrier: threading.Barrier | None = None
    fired: bool = False


@dataclass
class Stats:
    injected: Counter = field(default_factory=Counter)
    retries: Counter = field(default_factory=Counter)  # by error name
    delays: list[float] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)  # score batch outcomes
    map_failures: int = 0
    child_errors: Counter = field(default_factory=Counter)  # why Map children failed
    orphan_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str) -> None:
        with self.lock:
            self.injected[kind] += 1


Planner = Callable[[str, str, int, Callable[[str], int]], Fault | None]
"""(state name, item key, attempt, budget(error name) → attempts left) → fault or None."""

Invoke = Callable[[str, dict[str, Any]], dict[str, Any]]
"""(function logical id, payload) → the handler's JSON result."""


class Armed(threading.local):
    fault: Fault | None = None


class Simulator:
    """Runs one execution of ``definition`` with the real handlers and injected faults."""

    def __init__(
        self,
        definition: dict[str, Any],
        *,
        invoke: Invoke,
        read_items: Callable[[dict], list],
        armed: Armed,
        stats: Stats,
        planner: Planner,
        seed: int,
        redeliver: Callable[[str], bool],
        max_workers: int = 4,
    ) -> None:
        self.definition = definition
        self.invoke = invoke
        self.read_items = read_items
        self.armed = armed
        self.stats = stats
        self.planner = planner
        self.seed = seed
        self.redeliver = redeliver
        self.max_workers = max_workers
        self.orphans: list[threading.Thread] = []

    # ------------------------------------------------------------------ execution
    def run(self, execution_input: dict[str, Any]) -> tuple[str, Any]:
        """``("SUCCEEDED", output)`` or ``("FAILED", error name)``."""
        try:
            out = self._machine(self.definition, copy.deepcopy(execution_input), {})
            return "SUCCEEDED", out
        except (TaskFailure, ExecutionFailed) as exc:
            return "FAILED", exc.error
        finally:
            for orphan in self.orphans:
                orphan.join(timeout=30)

    def _machine(self, machine: dict[str, Any], doc: Any, context: dict[str, Any]) -> Any:
        name = machine["StartAt"]
        while True:
            state = machine["States"][name]
            kind = state["Type"]
            if kind == "Fail":
                raise ExecutionFailed(state.get("Error", "States.Fail"), state.get("Cause", ""))
            if kind == "Succeed":
                return doc
            try:
                if kind == "Task":
                    result = self._task(name, state, doc, context)
                elif kind == "Map":
                    result = self._map(name, state, doc, context)
                elif kind == "Pass":
                    result = state.get("Result", doc)
                else:
                    raise TaskFailure("States.Runtime", f"state type {kind} is not simulated")
                if "ResultSelector" in state:
                    result = resolve(state["ResultSelector"], result, context)
                doc = put_result(doc, state.get("ResultPath", _ABSENT), result)
            except TaskFailure as failure:
                catcher = next(
                    (c for c in state.get("Catch", []) if matches(c["ErrorEquals"], failure.error)), None
                )
                if catcher is None:
                    raise
                doc = put_result(
                    doc, catcher.get("ResultPath", _ABSENT), {"Error": failure.error, "Cause": failure.cause}
                )
                name = catcher["Next"]
                continue
            if state.get("End"):
                return doc
            name = state["Next"]

    # ------------------------------------------------------------------ task
    def _task(self, name: str, state: dict[str, Any], doc: Any, context: dict[str, Any]) -> Any:  # noqa: C901
        if state["Resource"] != "arn:aws:states:::lambda:invoke":
            raise TaskFailure("States.Runtime", f"resource {state['Resource']} is not simulated")
        params = resolve(state.get("Parameters", {}), doc, context)
        function = params["FunctionName"]
        payload = params.get("Payload", doc)
        item = context.get("Map", {}).get("Item", {})
        key = f"{item['Index']}#{item.get('Delivery', 0)}" if item else name
        retriers = state.get("Retry", [])
        used = [0] * len(retriers)

        def budget(error: str) -> int:
            for i, retrier in enumerate(retriers):
                if matches(retrier["ErrorEquals"], error):
                    return retrier.get("MaxAttempts", 3) - used[i]
            return 0

        attempt = 0
        partner: threading.Barrier | None = None
        while True:
            if partner is not None:  # the retry of a timed-out invocation that still runs
                fault: Fault | None = Fault("race_partner", barrier=partner)
                partner = None
            else:
                fault = self.planner(name, key, attempt, budget)
            try:
                return {"Payload": self._invoke(function, payload, fault), "StatusCode": 200}
            except _TimedOut as timed_out:
                partner = timed_out.barrier
                failure = TaskFailure("States.Timeout", "Task timed out")
            except TaskFailure as exc:
                failure = exc
            index = next(
                (i for i, r in enumerate(retriers) if matches(r["ErrorEquals"], failure.error)), None
            )
            if index is None or used[index] >= retriers[index].get("MaxAttempts", 3):
                if partner is not None:
                    partner.abort()
                raise failure
            retrier = retriers[index]
            used[index] += 1
            rng = random.Random(f"{self.seed}:{name}:{key}:{attempt}:delay")
            delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** (used[index] - 1)
            if "MaxDelaySeconds" in retrier:
                delay = min(delay, retrier["MaxDelaySeconds"])
            if retrier.get("JitterStrategy") == "FULL":
                delay = rng.uniform(0, delay)
            with self.stats.lock:
                self.stats.retries[failure.error] += 1
                self.stats.delays.append(delay)
            attempt += 1

    def _invoke(self, function: str, payload: Any, fault: Fault | None) -> Any:
        if fault is not None and fault.kind == "timeout_race":
            # The Task times out while the invocation goes on; Step Functions retries it and
            # both invocations reach the write together (the barrier holds the first one).
            fault.barrier = threading.Barrier(2, timeout=15)
            self.stats.count("timeout_race")
            orphan = threading.Thread(target=self._orphan, args=(function, payload, fault), daemon=True)
            orphan.start()
            self.orphans.append(orphan)
            raise _TimedOut(fault.barrier)
        if fault is not None and fault.kind == "lambda_throttle":
            self.stats.count(fault.kind)  # Lambda refused the Invoke: the function never ran
            raise TaskFailure("Lambda.TooManyRequestsException", "Rate Exceeded.")
        result = self._call(function, payload, fault)
        if fault is not None and fault.kind == "service_error_after_success":
            self.stats.count(fault.kind)  # the function ran; the Invoke API call failed
            raise TaskFailure("Lambda.ServiceException", "Lambda returned a 500 after the function ran")
        return result

    def _orphan(self, function: str, payload: Any, fault: Fault) -> None:
        try:
            self._call(function, payload, fault)
        except TaskFailure as exc:  # nobody waits for it: Step Functions moved on
            with self.stats.lock:
                self.stats.orphan_errors.append(exc.error)

    def _call(self, function: str, payload: Any, fault: Fault | None) -> Any:
        self.armed.fault = fault
        try:
            result = self.invoke(function, copy.deepcopy(payload))
        except LambdaCrash:
            raise TaskFailure("Lambda.Unknown", "The function's process exited before completing") from None
        except Exception as exc:
            raise TaskFailure(
                type(exc).__name__, json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)})
            ) from None
        finally:
            self.armed.fault = None
            if fault is not None and fault.barrier is not None:
                fault.barrier.abort()  # never leave the other invocation waiting
        if isinstance(result, dict) and "outcome" in result:
            with self.stats.lock:
                self.stats.outcomes[result["outcome"]] += 1
        return json.loads(json.dumps(result))

    # ------------------------------------------------------------------ distributed map
    def _map(self, name: str, state: dict[str, Any], doc: Any, context: dict[str, Any]) -> Any:
        reader = state["ItemReader"]
        items = self.read_items(resolve(reader.get("Parameters", {}), doc, context))
        if "MaxConcurrencyPath" in state:
            concurrency = int(path_get(doc, state["MaxConcurrencyPath"], context))
        else:
            concurrency = int(state.get("MaxConcurrency", 0)) or len(items) or 1
        processor = state["ItemProcessor"]

        def child(index: int, value: Any) -> bool:
            ctx = {"Map": {"Item": {"Index": index, "Value": value}}}
            item_input = resolve(state["ItemSelector"], doc, ctx) if "ItemSelector" in state else value
            try:
                self._machine(processor, item_input, ctx)
                if self.redeliver(f"{index}"):  # at-least-once: the same item runs again
                    self.stats.count("duplicate_delivery")
                    redelivery = {"Map": {"Item": {**ctx["Map"]["Item"], "Delivery": 1}}}
                    self._machine(processor, item_input, redelivery)
            except (TaskFailure, ExecutionFailed) as exc:
                with self.stats.lock:
                    self.stats.child_errors[exc.error] += 1
                return False
            return True

        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, self.max_workers))) as pool:
            results = list(pool.map(child, range(len(items)), items))
        failed = results.count(False)
        self.stats.map_failures += failed
        # Either threshold, where given, fails the Map; with neither, one failed child does.
        exceeded = [failed > state["ToleratedFailureCount"]] if "ToleratedFailureCount" in state else []
        if "ToleratedFailurePercentage" in state:
            exceeded.append(100.0 * failed / max(1, len(items)) > state["ToleratedFailurePercentage"])
        if any(exceeded) if exceeded else failed > 0:
            raise TaskFailure(
                "States.ExceedToleratedFailureThreshold", f"{failed} of {len(items)} items failed"
            )
        return None


class _TimedOut(Exception):
    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__("timed out")
        self.barrier = barrier
