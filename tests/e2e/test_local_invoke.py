"""`python -m assay_local invoke` (and `assay local invoke`): one function's handler, once,
against a running local stack found through its state file — every sample event under
events/ runs on the function the template routes it to, with that function's environment
and IAM role. Usage errors are one line on stderr and exit 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from assay_local.__main__ import main
from assay_local.invoke_cli import (
    find_function,
    function_env,
    invoke_each,
    role_credentials,
    write_state_file,
)
from assay_local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
KEY = "ask_" + "invoke" * 6  # the 'local' tenant's owner key
PLACEHOLDER_KEY = "ask_REPLACE_WITH_YOUR_API_KEY_0000000000000"
WORKFLOW = {
    "prepare": "PrepareRunFunction",
    "score_batch": "ScoreBatchFunction",
    "finalize": "FinalizeRunFunction",
    "mark_failed": "MarkRunFailedFunction",
    "reconcile": "ReconcileRunFunction",
}
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """A running stack with the state file `serve` writes for it (the same function)."""
    with LocalStack(port=0, bootstrap_key=KEY) as stack:
        state_file = tmp_path_factory.mktemp("invoke") / "state.json"
        state = write_state_file(stack, state_file)
        yield stack, state_file, state


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assay_local", "invoke", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        input=stdin,
        timeout=120,
    )


def _function_of(stack: LocalStack, path: Path, event: dict) -> str:
    """The logical id of the function the template gives this sample event to."""
    if path.parent.name == "workflow":
        return WORKFLOW[path.stem]
    match = stack._created.routes.match(event["requestContext"]["http"]["method"], event["rawPath"])
    assert match is not None, path
    arn = match.route.function_arn
    return next(lid for lid, f in stack.functions.items() if f.arn == arn)


def test_the_state_file_keeps_what_bootstrap_reads_and_each_functions_configuration(running):
    stack, _, state = running
    assert state["url"] == stack.url and state["aws_env"] == stack.aws_env()
    assert state["function_env"] == stack.shared_function_env()
    assert state["iam"] is (stack.iam is not None)
    assert set(state["functions"]) == set(stack.functions)
    get_run = state["functions"]["GetRunFunction"]
    assert get_run["environment"] == stack.function_env("GetRunFunction")
    assert get_run["handler"] == "assay_service.handlers.api.get_run.handler"
    assert get_run["role"].startswith("arn:aws:iam::") and get_run["timeout_s"] > 0
    assert find_function(state, get_run["name"])[0] == "GetRunFunction"  # the physical name too


def test_every_sample_event_runs_on_its_function(running):
    """In-process (one fresh process per function, not per event, to stay quick): each API
    sample answers a response below 500; a workflow sample's placeholder ids name no run,
    so its step raises — Lambda's error payload — or returns."""
    stack, _, state = running
    assert state["iam"], "the e2e stacks enforce IAM"
    by_function: dict[str, list[tuple[Path, dict]]] = defaultdict(list)
    paths = sorted(EVENTS.glob("api/*.json")) + sorted(EVENTS.glob("workflow/*.json"))
    assert len(paths) > 30
    for path in paths:
        event = json.loads(path.read_text().replace(PLACEHOLDER_KEY, KEY))
        by_function[_function_of(stack, path, event)].append((path, event))

    def run(logical_id: str) -> list[tuple[object, bool]]:
        config = state["functions"][logical_id]
        credentials = role_credentials(config, state["aws_env"])
        assert credentials["AWS_ACCESS_KEY_ID"].startswith("ASIA")  # the role's, as in the stack
        env = function_env(config, state["aws_env"], credentials)
        return invoke_each(config, [event for _, event in by_function[logical_id]], env)

    with ThreadPoolExecutor(max_workers=2) as pool:  # two functions' processes at a time
        answers = dict(zip(by_function, pool.map(run, by_function), strict=True))
    seen = {}
    for logical_id, samples in by_function.items():
        assert len(answers[logical_id]) == len(samples), (logical_id, answers[logical_id][-1])
        for (path, _), (result, errored) in zip(samples, answers[logical_id], strict=True):
            seen[f"{path.parent.name}/{path.stem}"] = result
            if path.parent.name == "api":
                assert not errored, (path, result)
                assert isinstance(result, dict) and result["statusCode"] < 500, (path, result)
            elif errored:
                assert set(result) == {"errorType", "errorMessage", "stackTrace"}, (path, result)
                assert result["errorType"] == "NotFoundError", (path, result)
    assert seen["api/health"]["statusCode"] == 200
    assert seen["api/no_route"]["statusCode"] == 405  # DELETE /v1/datasets: the catch-all route
    assert seen["api/list_datasets"]["statusCode"] == 200  # the key was accepted: a real read
    assert seen["api/get_run"]["statusCode"] == 404  # … of a run the sample's id does not name
    # Steps that read the run raise; marking it failed and reconciling an execution that
    # ended are idempotent writes: they return.
    assert {k: "errorType" in v for k, v in seen.items() if k.startswith("workflow/")} == {
        "workflow/prepare": True,
        "workflow/score_batch": True,
        "workflow/finalize": True,
        "workflow/mark_failed": False,
        "workflow/reconcile": False,
    }


def test_the_cli_prints_the_result_alone_on_stdout(running):
    _, state_file, state = running
    out = _cli("ApiMetaFunction", "-e", "events/api/health.json", "--state-file", str(state_file))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["statusCode"] == 200  # the whole of stdout: logs go to stderr
    name = state["functions"]["GetRunFunction"]["name"]  # the physical name, the event on stdin
    out = _cli(
        name, "-e", "-", "--state-file", str(state_file), stdin=(EVENTS / "api" / "get_run.json").read_text()
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["statusCode"] == 401  # the sample's placeholder key
    assert '"message":"authentication failed"' in out.stderr  # the handler's log line


def test_a_handler_that_raises_prints_lambdas_error_payload_and_exits_1(running):
    _, state_file, _ = running
    out = _cli(
        "PrepareRunFunction", "--event", "events/workflow/prepare.json", "--state-file", str(state_file)
    )
    assert out.returncode == 1, out.stderr
    payload = json.loads(out.stdout)
    assert set(payload) == {"errorType", "errorMessage", "stackTrace"}
    assert payload["errorType"] == "NotFoundError" and payload["stackTrace"]


def test_usage_errors_are_one_line_and_exit_2(running, tmp_path, capsys):
    _, state_file, state = running

    def usage(*args: str) -> str:
        assert main(["invoke", *args]) == 2
        out = capsys.readouterr()
        assert out.out == "" and out.err.count("\n") == 1 and out.err.startswith("invoke: "), out
        return out.err

    err = usage("NoSuchFunction", "--state-file", str(state_file))
    assert "unknown function 'NoSuchFunction'" in err
    assert all(logical_id in err for logical_id in state["functions"])
    assert "event file nope.json not found" in usage(
        "GetRunFunction", "-e", "nope.json", "--state-file", str(state_file)
    )
    with socket.socket() as sock:  # a state file left by a stack that is gone
        sock.bind(("127.0.0.1", 0))
        dead = {
            **state,
            "aws_env": {**state["aws_env"], "AWS_ENDPOINT_URL": f"http://127.0.0.1:{sock.getsockname()[1]}"},
        }
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps(dead))
    assert "no running local stack (nothing answers at" in usage("GetRunFunction", "--state-file", str(stale))


def test_without_a_running_stack_it_says_how_to_start_one(tmp_path):
    for command in (
        [sys.executable, "-m", "assay_local", "invoke", "GetRunFunction"],
        [sys.executable, "-m", "assay", "local", "invoke", "GetRunFunction"],
    ):
        out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert out.returncode == 2 and out.stdout == ""
        lines = out.stderr.splitlines()
        assert len(lines) == 1, out.stderr
        assert lines[0].startswith("invoke: no running local stack (.assay-local.json not found)")
        assert "make local" in lines[0] and "assay local up" in lines[0]
