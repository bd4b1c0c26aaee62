"""Lambda handlers for the crash tests (run in the local stack's workers): a runtime that
dies mid-invocation, as an out-of-memory kill or a native crash does on Lambda."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any


def killed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The process is killed by SIGKILL (what Lambda's out-of-memory killer sends)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def exits(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The process exits with a status, without answering."""
    os._exit(int(event.get("status", 3)))


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers with its pid; appends a line to ``$CRASH_MARKS`` (if set) per execution."""
    marks = os.environ.get("CRASH_MARKS")
    if marks:
        with Path(marks).open("a") as out:
            out.write(f"{os.getpid()}\n")
    return {"pid": os.getpid(), "event": event}
