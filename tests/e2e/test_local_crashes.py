"""A Lambda worker that dies — killed mid-invocation (as by the out-of-memory killer), or
while idle between invocations — on the embedded local stack, with the real template.

* Lambda answers a crashed invocation with ``FunctionError`` and ``{"errorType":
  "Runtime.ExitError", "errorMessage": "RequestId: … Error: Runtime exited with error:
  signal: killed"}``; Step Functions reports it as ``Lambda.Unknown``, which the state
  machine's Retry names. So a run whose PrepareRun, ScoreBatch, FinalizeRun or MarkRunFailed
  worker is SIGKILLed mid-invocation still ends as if nothing happened, every evaluation
  exactly once.
* A worker that died idle is never handed an invocation; an event that could not even be
  sent to a dead worker is sent once more to a fresh one (it never ran).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from assay_local import lambda_runtime
from assay_local.lambda_runtime import LambdaRuntime
from assay_local.moto_requests import drop_incomplete_requests
from assay_local.resources import placeholder_zip
from assay_local.stack import LocalStack
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
    StateTaskServiceLambda,
)

from tests.e2e.runs import Api

pytestmark = pytest.mark.e2e

# The stack's workers are spawned with this process's sys.path and import the module so.
sys.path.insert(0, str(Path(__file__).parent))
HANDLERS = importlib.import_module("crash_handlers").__name__

KEY = "ask_e2e-crash-owner-key-0123456789abcdef"
RECORDS, BATCH = 600, 150  # four batches, long enough to be killed in
METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 1.0},
    {"name": "contains", "scorer": "contains", "args": {}, "threshold": 1.0},
]
CRASH = re.compile(r"RequestId: [0-9a-f-]{36} Error: Runtime exited with error: signal: killed")
TRIALS = 3  # a kill that lands after the invocation answered is no test: try again
RESULTS: dict[str, list[str]] = {}  # per function: what each trial did (printed at the end)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # Two workers per function: fewer cold starts on a small machine, still concurrent.
    with LocalStack(port=0, bootstrap_key=KEY, max_workers_per_function=2) as local:
        yield local
    for name, trials in RESULTS.items():
        print(f"\n{name}: {len(trials)} trial(s): {'; '.join(trials)}")


def name_of(stack: LocalStack, logical_id: str) -> str:
    return stack.resources[logical_id]


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Api:
    return Api(stack, KEY)


@pytest.fixture(scope="module")
def warm_run(api: Api) -> dict[str, Any]:
    """A dataset of RECORDS records, an eval of two metrics, and one run of them, so every
    workflow function has warm workers (a kill then lands in the handler, not in its
    import)."""
    rows = [
        {"id": f"r{i}", "input": f"q{i}", "output": "a" if i % 3 else "b", "golden_answer": "a"}
        for i in range(RECORDS)
    ]
    created = api.call("POST", "/v1/datasets", json={"name": "crashes"}).json()["id"]
    version = api.call("POST", f"/v1/datasets/{created}/versions", json={"records": rows})
    assert version.status_code == 201, version.text
    ev = api.call("POST", "/v1/evals", json={"name": "crashes"}).json()["id"]
    ev_version = api.call("POST", f"/v1/evals/{ev}/versions", json={"metrics": METRICS, "threshold": 0.5})
    assert ev_version.status_code == 201, ev_version.text
    warm = api.schedule(created, ev_version.json()["id"], batch_size=BATCH)
    assert api.wait(warm["id"], {"completed", "failed"})["status"] == "completed"
    return {"dataset": created, "eval_version": ev_version.json()["id"], "run_id": warm["id"]}


@pytest.fixture(scope="module")
def dataset(warm_run: dict[str, Any]) -> tuple[str, str]:
    return warm_run["dataset"], warm_run["eval_version"]


# ----------------------------------------------------------------------- killing workers
def wait_dead(pid: int, seconds: float = 10) -> None:
    """Until ``pid`` has exited (gone, or a zombie its parent has not reaped yet)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return
        if state in {"Z", "X"}:
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} is still alive")


class Killer(threading.Thread):
    """Waits until one of ``warm`` (worker pids of ``function``) is busy, lets it run for
    ``delay`` seconds, then SIGKILLs it if it is still busy."""

    def __init__(self, stack: LocalStack, function: str, delay: float, seconds: float = 90) -> None:
        super().__init__(daemon=True)
        self.stack, self.function, self.delay, self.seconds = stack, function, delay, seconds
        self.warm = set(stack.worker_pids().get(function, []))
        self.killed: int | None = None
        self.busy_for = 0.0
        self.stop = threading.Event()

    def busy(self) -> list[int]:
        return [p for p in self.stack.worker_pids(busy=True).get(self.function, []) if p in self.warm]

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            busy = self.busy()
            if busy:
                seen = time.monotonic()
                time.sleep(self.delay)
                if busy[0] in self.busy():
                    os.kill(busy[0], signal.SIGKILL)
                    self.killed, self.busy_for = busy[0], time.monotonic() - seen
                    return
            time.sleep(0.002)


def execution_errors(stack: LocalStack, run_id: str) -> list[tuple[str, str]]:
    """(error, cause) of every failed Task in the run's execution history."""
    machine = stack.outputs["StateMachineArn"]
    arn = machine.replace(":stateMachine:", ":execution:") + f":{run_id}"
    events = stack.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)
    found = []
    for event in events["events"]:
        details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails")
        if details:
            found.append((details.get("error", ""), details.get("cause", "")))
    return found


def export_items(api: Api, run_id: str) -> list[dict[str, Any]]:
    link = api.call("GET", f"/v1/eval-runs/{run_id}/export", params={"format": "jsonl", "delivery": "link"})
    assert link.status_code == 200, link.text
    body = requests.get(link.json()["url"], timeout=60)
    assert body.status_code == 200, body.text
    return [json.loads(line) for line in body.content.splitlines() if line.strip()]


def assert_every_evaluation_once(api: Api, run: dict[str, Any]) -> None:
    assert run["status"] == "completed", run
    assert run["item_count"] == RECORDS
    assert run["completed_count"] + run["failed_count"] == run["item_count"], run
    items = export_items(api, run["id"])
    assert len(items) == RECORDS * len(METRICS)
    assert len({i["id"] for i in items}) == len(items)
    assert {(i["record_id"], i["metric_name"]) for i in items} == {
        (f"r{n}", m["name"]) for n in range(RECORDS) for m in METRICS
    }


# Per function: the share of a warm invocation's usual length (measured on this machine by the
# runs so far: about 0.1-0.2 s to prepare, 0.3-1.5 s per batch of 150 records x 2 scorings,
# 0.3-2 s to finalize) to let the handler run before the kill. In this order, each function
# has had warm invocations by its turn (the warm-up run's prepare and finalize were cold).
KILLS = {"ScoreBatchFunction": 0.4, "FinalizeRunFunction": 0.4, "PrepareRunFunction": 0.4}


def delay(stack: LocalStack, function: str, share: float) -> float:
    seconds, count, _, _ = stack.invocation_seconds().get(function, (0.0, 0, 0.0, 0))
    return share * seconds / count if count else 0.0


@pytest.mark.parametrize("logical_id", list(KILLS))
def test_a_run_completes_exactly_once_when_a_workflow_worker_is_killed_mid_invocation(
    stack, api, dataset, logical_id
):
    function = name_of(stack, logical_id)
    trials = RESULTS.setdefault(logical_id, [])
    batches = -(-RECORDS // BATCH)
    for _ in range(TRIALS):
        before = stack.invocation_counts()
        killer = Killer(stack, function, delay(stack, function, KILLS[logical_id]))
        killer.start()
        run = api.schedule(*dataset, batch_size=BATCH)
        ended = api.wait(run["id"], {"completed", "failed", "cancelled"}, 150)
        killer.stop.set()
        killer.join()
        spent = stack.invocation_counts()[function] - before.get(function, 0)
        usual = batches if logical_id == "ScoreBatchFunction" else 1
        if killer.killed is None or spent == usual:  # no kill, or it came after the answer
            trials.append(f"missed (killed={killer.killed}, invocations={spent}, {ended['status']})")
            assert_every_evaluation_once(api, ended)
            continue
        trials.append(
            f"killed pid {killer.killed} after {killer.busy_for:.2f} s busy: "
            f"{ended['status']}, {spent} invocations (retried once)"
        )
        assert spent == usual + 1
        assert_every_evaluation_once(api, ended)
        assert stack.iam_denials() == []  # a request the killed worker left half-sent is no denial
        assert killer.killed not in stack.worker_pids()[function]
        if logical_id != "ScoreBatchFunction":  # a Map child's history is another execution's
            errors = execution_errors(stack, run["id"])
            assert [e for e, _ in errors] == ["Lambda.Unknown"], errors
            cause = json.loads(errors[0][1])
            assert cause["errorType"] == "Runtime.ExitError" and CRASH.fullmatch(cause["errorMessage"])
        return
    pytest.fail(f"no kill landed mid-invocation in {TRIALS} trials: {trials}")


def test_a_run_is_still_marked_failed_when_mark_run_failed_is_killed_mid_invocation(stack, api):
    """The Catch path: records no scorer can read fail the run; MarkRunFailed, killed while
    it marks it, is retried (States.ALL) and the run ends failed with the original error."""
    logical_id = "MarkRunFailedFunction"
    function = name_of(stack, logical_id)
    # Warm it (its first call imports the handler): a run that does not exist is left alone.
    warm = stack.client("lambda").invoke(
        FunctionName=function,
        Payload=json.dumps(
            {"tenant_id": str(uuid.uuid4()), "run_id": str(uuid.uuid4()), "error": {"Error": "Warm"}}
        ),
    )
    assert "FunctionError" not in warm, warm["Payload"].read()
    trials = RESULTS.setdefault(logical_id, [])
    for _ in range(TRIALS):
        dataset, eval_version = api.dataset_and_eval()
        api.corrupt_dataset(dataset)
        before = stack.invocation_counts()
        killer = Killer(stack, function, 0.0)
        killer.start()
        run = api.schedule(dataset, eval_version)
        ended = api.wait(run["id"], {"completed", "failed", "cancelled"}, 150)
        killer.stop.set()
        killer.join()
        spent = stack.invocation_counts()[function] - before.get(function, 0)
        assert ended["status"] == "failed", ended
        assert "Lambda.Unknown" not in ended["error_message"]  # the run's own error, not the kill's
        if killer.killed is None or spent == 1:
            trials.append(f"missed (killed={killer.killed}, invocations={spent})")
            continue
        trials.append(
            f"killed pid {killer.killed} after {killer.busy_for:.2f} s busy: "
            f"{ended['status']}, {spent} invocations (retried once)"
        )
        assert spent == 2
        assert stack.iam_denials() == []
        errors = execution_errors(stack, run["id"])
        assert "Lambda.Unknown" in [e for e, _ in errors], errors
        return
    pytest.fail(f"no kill landed mid-invocation in {TRIALS} trials: {trials}")


def test_idle_workers_killed_between_requests_do_not_break_the_next_one(stack, api, warm_run):
    function = name_of(stack, "GetRunFunction")
    path = f"/v1/eval-runs/{warm_run['run_id']}"
    assert api.call("GET", path).status_code == 200
    idle = stack.worker_pids(busy=False)[function]
    assert idle
    for pid in idle:
        os.kill(pid, signal.SIGKILL)
        wait_dead(pid)
    response = api.call("GET", path)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    assert not set(idle) & set(stack.worker_pids()[function])


# ------------------------------------------------------------ the wire: Lambda, Step Functions
def _function(stack: LocalStack, name: str, handler: str, env: dict[str, str] | None = None) -> str:
    return stack.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=stack.attributes["EvalRunStateMachineRole"]["Arn"],
        Handler=f"{HANDLERS}.{handler}",
        Code={"ZipFile": placeholder_zip()},
        Timeout=30,
        Environment={"Variables": env or {}},
    )["FunctionArn"]


@pytest.fixture(scope="module")
def crashing(stack: LocalStack) -> dict[str, str]:
    return {
        "killed": _function(stack, "fx-killed", "killed"),
        "exits": _function(stack, "fx-exits", "exits"),
        "echo": _function(stack, "fx-echo", "echo"),
    }


def test_a_crashed_invocation_is_answered_as_lambda_answers_it(stack, crashing):
    lam = stack.client("lambda")
    killed = lam.invoke(FunctionName="fx-killed", Payload=b"{}")
    assert killed["FunctionError"]  # moto says "Handled" where Lambda says "Unhandled"
    payload = json.loads(killed["Payload"].read())
    assert set(payload) == {"errorType", "errorMessage"}
    assert payload["errorType"] == "Runtime.ExitError" and CRASH.fullmatch(payload["errorMessage"])
    exited = json.loads(lam.invoke(FunctionName="fx-exits", Payload=b'{"status": 3}')["Payload"].read())
    assert exited["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    # The function's next invocation gets a fresh worker.
    assert json.loads(lam.invoke(FunctionName="fx-echo", Payload=b"{}")["Payload"].read())["pid"]


def _execute(stack: LocalStack, name: str, task: dict[str, Any]) -> dict[str, Any]:
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                **task,
                "Type": "Task",
                "Retry": [{"ErrorEquals": ["Lambda.Unknown"], "IntervalSeconds": 1, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Done"}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    sfn = stack.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=stack.attributes["EvalRunStateMachineRole"]["Arn"],
    )
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described
            return json.loads(described["output"])["caught"]
        time.sleep(0.1)
    raise AssertionError("execution did not finish in 60 s")


@pytest.mark.parametrize("form", ["lambda:invoke", "function ARN"])
def test_step_functions_reports_a_crash_as_lambda_unknown_and_retries_it(stack, crashing, form):
    arn = crashing["killed"]
    task = (
        {"Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": arn}}
        if form == "lambda:invoke"
        else {"Resource": arn}
    )
    before = stack.invocation_counts().get("fx-killed", 0)
    caught = _execute(stack, f"fx-crash-{form.split()[0].replace(':', '-')}", task)
    assert caught["Error"] == "Lambda.Unknown"
    cause = json.loads(caught["Cause"])
    assert cause["errorType"] == "Runtime.ExitError" and CRASH.fullmatch(cause["errorMessage"])
    assert stack.invocation_counts()["fx-killed"] - before == 2  # the Retry on Lambda.Unknown ran


def test_moto_names_a_function_error_after_its_error_type_without_the_hook(stack, crashing):
    """Guards the hook: moto 5.2.5 names the error after the payload's errorType (so
    Runtime.ExitError, where Step Functions says Lambda.Unknown). If moto changes how it
    names function errors, this fails: re-check lambda_runtime.SFN_CRASH_HOOKS."""
    hook = lambda_runtime.SFN_CRASH_HOOKS[0]
    owner = hook.active
    assert owner is not None and StateTaskServiceLambda._from_error is hook._replacement
    task = {"Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": crashing["killed"]}}
    hook.uninstall(owner)
    try:
        caught = _execute(stack, "fx-crash-unhooked", task)
    finally:
        hook.install(owner)
    assert caught["Error"] == "Runtime.ExitError"


# ------------------------------------------------------------------ the pool, on its own
def test_an_event_a_dead_worker_never_read_is_sent_once_more(tmp_path, monkeypatch):
    """The worker dies between the pool's liveness check and the send: the send fails, the
    event never ran, so it goes to a fresh worker — once, and the handler runs once."""
    marks = tmp_path / "marks"
    fn = SimpleNamespace(
        function_name="fx-pool",
        function_arn="arn:aws:lambda:us-east-1:1:function:fx-pool",
        handler=f"{HANDLERS}.echo",
        timeout=30,
        memory_size=128,
        run_time="python3.12",
        region="us-east-1",
        role="r",
        environment_vars={"CRASH_MARKS": str(marks)},
    )
    runtime = LambdaRuntime({}, max_workers_per_function=2)
    try:
        first = json.loads(runtime.invoke(fn, {"n": 1})[0])["pid"]
        (dead,) = runtime.worker_pids()["fx-pool"]
        assert dead == first
        os.kill(dead, signal.SIGKILL)
        wait_dead(dead)
        # Pretend it still looked alive when the pool handed it out.
        monkeypatch.setattr(BaseProcess, "is_alive", lambda self: True)
        payload, errored, _ = runtime.invoke(fn, {"n": 2})
        monkeypatch.undo()
        assert not errored, payload
        assert json.loads(payload)["pid"] not in (dead, None)
        assert runtime.invocation_counts() == {"fx-pool": 2}
        assert marks.read_text().splitlines() == [str(first), str(json.loads(payload)["pid"])]
        assert runtime.worker_pids()["fx-pool"] == [json.loads(payload)["pid"]]
        # Found dead while idle (no pretending): skipped, replaced, nothing resent.
        os.kill(json.loads(payload)["pid"], signal.SIGKILL)
        wait_dead(json.loads(payload)["pid"])
        third, errored, _ = runtime.invoke(fn, {"n": 3})
        assert not errored, third
        assert len(marks.read_text().splitlines()) == 3
    finally:
        with contextlib.suppress(Exception):
            monkeypatch.undo()
        runtime.shutdown()


def test_a_request_cut_short_by_its_dying_client_is_not_served():
    """A worker killed while calling AWS leaves half a request (headers, no body): nothing
    behind the moto server's door may take it for a request with an empty body."""
    served: list[bytes] = []

    def moto(env: dict[str, Any], start_response: Any) -> list[bytes]:
        served.append(env["wsgi.input"].read(int(env.get("CONTENT_LENGTH") or 0)))
        start_response("200 OK", [])
        return [b"{}"]

    app = drop_incomplete_requests(moto)
    statuses: list[str] = []
    body = b'{"TableName": "t", "Key": {}}'
    whole = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    cut = {**whole, "wsgi.input": io.BytesIO(body[:5])}
    bare = {"REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO(b"")}
    for environ in (whole, cut, bare):
        b"".join(app(environ, lambda status, headers: statuses.append(status)))
    assert statuses == ["200 OK", "400 Bad Request", "200 OK"]
    assert served == [body, b""]
