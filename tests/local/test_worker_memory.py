"""An idle Lambda worker gives back the memory its last invocation freed (flat
memory): without that, every warm worker kept the peak of its busiest invocation."""

from __future__ import annotations

import os
import time
from multiprocessing import get_context
from pathlib import Path

from assay_local import _worker

from tests.support.factories import lambda_context

KEPT: list[bytes] = []


def allocate_and_free(event, context):
    """~200 MB in 2 KB blocks (malloc's heap, not Python's small-object arenas), one kept
    block allocated after them so the heap cannot simply shrink from its top, the rest freed."""
    blocks = [bytes(2000) for _ in range(100_000)]
    KEPT.append(bytes(2000))
    del blocks
    return rss_mb(os.getpid())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_an_idle_worker_hands_back_what_an_invocation_freed():
    ctx = get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(
        target=_worker.worker_main,
        daemon=True,
        args=(child, f"{__name__}.allocate_and_free", {"PATH": os.environ.get("PATH", "")}),
    )
    process.start()
    try:
        parent.send(({}, lambda_context()))
        payload, errored = parent.recv()
        assert not errored, payload
        after_invocation = float(payload)
        deadline = time.monotonic() + _worker.TRIM_AFTER_IDLE_S + 10
        while rss_mb(process.pid) > after_invocation - 100 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rss_mb(process.pid) <= after_invocation - 100, (after_invocation, rss_mb(process.pid))
    finally:
        parent.send(None)
        process.join(timeout=10)
