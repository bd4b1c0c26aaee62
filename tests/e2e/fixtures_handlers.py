"""Lambda handlers for the local-stack workflow tests (run in the stack's workers).

State that must survive across worker processes (which attempt of an item this is)
lives in files under ``$FIXTURE_STATE_DIR``, set as the fixture functions' environment.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class FlakyError(Exception):
    """Raised on an item's first attempt; the state machine retries on this name."""


class CustomBoom(Exception):
    """Always raised by ``boom``; the state machine catches it by class name."""


def flaky_double(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Double ``n``, failing the first attempt of each item with ``FlakyError``."""
    marker = Path(os.environ["FIXTURE_STATE_DIR"]) / f"seen-{event['n']}"
    if not marker.exists():
        marker.touch()
        raise FlakyError(f"first attempt for item {event['n']}")
    time.sleep(float(os.environ.get("FIXTURE_SLEEP_S", "0")))
    return {
        "n": event["n"],
        "value": event["n"] * 2,
        "pid": os.getpid(),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }


def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise CustomBoom("boom on purpose")


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleeps past any small Timeout, to exercise Sandbox.Timedout."""
    time.sleep(float(event.get("seconds", 5)))
    return {"slept": True}
