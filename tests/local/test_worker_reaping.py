"""Idle Lambda workers are stopped after a while, as Lambda reclaims idle environments, so
a run's burst of workers does not stay resident (flat memory)."""

from __future__ import annotations

import time

from assay_local.lambda_runtime import FunctionConfig, _WorkerPool


class FakeWorker:
    def __init__(self, idle_for: float) -> None:
        self.idle_since = time.monotonic() - idle_for
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def pool_with(*idle_for: float) -> tuple[_WorkerPool, list[FakeWorker]]:
    config = FunctionConfig(
        name="f",
        arn="arn:f",
        handler="h.handler",
        role="r",
        region="us-east-1",
        runtime="python3.12",
        env=(),
        timeout_s=3,
        memory_mb=128,
    )
    pool = _WorkerPool(config, {}, max_workers=4)
    workers = [FakeWorker(s) for s in idle_for]
    pool._idle.extend(workers)  # type: ignore[arg-type]
    pool._spawned = len(workers)
    return pool, workers


def test_workers_idle_past_the_limit_are_stopped_but_the_most_recent_one():
    pool, (a, b, c, d) = pool_with(300, 200, 10, 500)
    assert pool.reap(idle_s=120, keep=1) == 3
    assert [a.stopped, b.stopped, c.stopped, d.stopped] == [True, True, False, True]
    assert pool.size == 1 and pool._spawned == 1  # room to spawn again on demand


def test_the_last_warm_worker_stays_however_long_it_idles():
    pool, (a,) = pool_with(10_000)
    assert pool.reap(idle_s=120, keep=1) == 0
    assert not a.stopped and pool.size == 1


def test_recently_used_workers_stay():
    pool, workers = pool_with(5, 30, 60, 119)
    assert pool.reap(idle_s=120, keep=1) == 0
    assert not any(w.stopped for w in workers)


def test_a_closed_pool_reaps_nothing():
    pool, (a, b) = pool_with(500, 500)
    pool._closed = True
    assert pool.reap(idle_s=120, keep=0) == 0 and not a.stopped
