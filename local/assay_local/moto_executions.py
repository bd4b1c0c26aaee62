"""StopExecution on moto right after StartExecution, as on AWS.

moto (5.2.5) starts an execution by returning at once and building the interpreter's
environment on a thread of its own; a StopExecution that arrives before that thread has
built it fails with ``AttributeError`` (``None.set_stop``), which reaches the caller as a
500 from the emulator. On AWS an execution can be stopped from the moment StartExecution
returns, and cancelling a run just scheduled is exactly that call. The replacement waits
for the environment (milliseconds: the thread only parses the definition first) and then
stops it; the interpreter checks for a stop before every state, so the execution ends
ABORTED before its first state runs. No owner, no state: installing it twice is
installing it once.
"""

from __future__ import annotations

import time
from typing import Any

from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from assay_local.moto_hooks import Replacement

STARTING_WAIT_S = 10.0  # far above the parse time; a thread that never builds it has died

_original_stop = ExecutionWorker.stop


def stop(self: ExecutionWorker, stop_date: Any, error: str | None, cause: str | None) -> None:
    deadline = time.monotonic() + STARTING_WAIT_S
    while self.env is None and time.monotonic() < deadline:
        time.sleep(0.005)
    if self.env is None:
        raise RuntimeError("the execution's interpreter never started; it cannot be stopped")
    _original_stop(self, stop_date=stop_date, error=error, cause=cause)


REPLACEMENTS = (Replacement(ExecutionWorker, "stop", stop),)
