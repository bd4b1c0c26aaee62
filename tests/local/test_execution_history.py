"""The local stack forgets the oldest ended Step Functions executions past KEPT_EXECUTIONS per
state machine (moto keeps every one, with its whole interpreter state, forever): memory stays
flat over a day of runs, running executions are never touched."""

from __future__ import annotations

from types import SimpleNamespace

from assay_local import eventbridge
from moto.stepfunctions.parser.api import ExecutionStatus

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:runs"


def backend_with(statuses: list) -> tuple[SimpleNamespace, list]:
    executions = [SimpleNamespace(name=f"e{i}", exec_status=s) for i, s in enumerate(statuses)]
    other = SimpleNamespace(
        arn=ARN + "-other", executions=[SimpleNamespace(name="x", exec_status=ExecutionStatus.SUCCEEDED)]
    )
    machine = SimpleNamespace(arn=ARN, executions=list(executions))
    return SimpleNamespace(state_machines=[other, machine]), machine.executions


def test_the_oldest_ended_executions_go_running_ones_stay(monkeypatch):
    done, running, failed = (ExecutionStatus.SUCCEEDED, ExecutionStatus.RUNNING, ExecutionStatus.FAILED)
    backend, executions = backend_with([done, running, failed, done, None, done])
    monkeypatch.setattr(
        eventbridge, "stepfunctions_parser_backends", {"123456789012": {"us-east-1": backend}}
    )
    assert eventbridge.forget_old_executions(ARN, "123456789012", "us-east-1", keep=2) == 2
    # e0 and e2 (the oldest ended) are forgotten; running e1, just-started e4 and the newest
    # two ended (e3, e5) stay, in order; another state machine is untouched
    assert [e.name for e in executions] == ["e1", "e3", "e4", "e5"]
    assert len(backend.state_machines[0].executions) == 1
    assert eventbridge.forget_old_executions(ARN, "123456789012", "us-east-1", keep=2) == 0


def test_the_default_keeps_the_newest_hundred(monkeypatch):
    backend, executions = backend_with([ExecutionStatus.SUCCEEDED] * 105)
    monkeypatch.setattr(
        eventbridge, "stepfunctions_parser_backends", {"123456789012": {"us-east-1": backend}}
    )
    assert eventbridge.forget_old_executions(ARN, "123456789012", "us-east-1") == 5
    assert executions[0].name == "e5" and len(executions) == eventbridge.KEPT_EXECUTIONS == 100
