"""Workers of the functions no client waits on run at a lower CPU priority than the API's,
and a worker takes what its cold start left for good out of the garbage collector's walks."""

from __future__ import annotations

import gc
import json
import os
from multiprocessing import get_context
from types import SimpleNamespace
from typing import Any

from assay_local import _worker
from assay_local.lambda_runtime import FunctionConfig
from assay_local.stack import BACKGROUND_NICENESS, LocalStack

from tests.support.factories import lambda_context


def priority_and_frozen(event: dict[str, Any], context: Any) -> list[int]:
    return [os.getpriority(os.PRIO_PROCESS, 0), gc.get_freeze_count()]


def _invoke(parent: Any) -> Any:
    parent.send(({}, lambda_context()))
    payload, errored = parent.recv()
    assert not errored, payload
    return json.loads(payload)


def test_a_worker_runs_at_the_niceness_it_is_given_and_freezes_after_its_cold_start():
    ctx = get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=_worker.worker_main,
        daemon=True,
        args=(child, f"{__name__}.priority_and_frozen", {"PATH": os.environ.get("PATH", "")}, 5),
    )
    process.start()
    try:
        first_priority, frozen_during_first = _invoke(parent)
        second_priority, frozen_after_first = _invoke(parent)
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert first_priority == second_priority == min(ours + 5, 19)
        assert frozen_after_first > frozen_during_first
    finally:
        parent.send(None)
        process.join(timeout=10)


def _config(arn: str) -> FunctionConfig:
    return FunctionConfig(
        name=arn.rsplit(":", 1)[1],
        arn=arn,
        handler="h.handler",
        timeout_s=3,
        memory_mb=128,
        runtime="python3.12",
        region="us-east-1",
        role="arn:aws:iam::123456789012:role/r",
        env=(),
    )


def test_only_the_functions_behind_no_route_are_lowered():
    api, workflow = "arn:aws:lambda:us-east-1:123456789012:function:api", "arn:x:function:score"
    created = SimpleNamespace(routes=SimpleNamespace(routes=[SimpleNamespace(function_arn=api)]))
    stack, unlowered = LocalStack(), LocalStack(background_niceness=0)
    assert stack._worker_niceness(_config(workflow)) == 0  # nothing created yet: no guess
    stack._created = unlowered._created = created  # type: ignore[assignment]
    assert stack._worker_niceness(_config(api)) == 0
    assert stack._worker_niceness(_config(workflow)) == BACKGROUND_NICENESS
    assert unlowered._worker_niceness(_config(workflow)) == 0


def test_workers_start_without_the_parent_main():
    # multiprocessing re-imports the parent's __main__ in every new process; a worker's
    # target is in assay_local._worker, so its start leaves the main out (cold starts).
    from assay_local import lambda_runtime

    plain = lambda_runtime._worker_preparation_data("x")
    assert {"init_main_from_name", "init_main_from_path"} & plain.keys()  # pytest's main
    lambda_runtime._WORKER_START.active = True
    try:
        worker = lambda_runtime._worker_preparation_data("x")
    finally:
        lambda_runtime._WORKER_START.active = False
    assert not {"init_main_from_name", "init_main_from_path"} & worker.keys()
    assert worker["sys_path"] == plain["sys_path"]
