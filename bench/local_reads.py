"""Reads under concurrency on the embedded local stack: latency (p50/p95/max), requests/s and
errors of ``--clients`` concurrent clients reading, (0) one client alone (what a single
user waits), (a) idle, (b) while a run of
``--records`` records × 3 rule metrics scores, and (c) 100 connects at once.

Usage: .venv/bin/python bench/local_reads.py [--clients 20] [--requests 300] [--records 10000]
       [--seconds 40] [--profile]

The stack (``LocalStack``, IAM enforced, functions logging at WARNING) runs in a child process
so the clients do not share its interpreter; the clients are threads of this process, one
``requests.Session`` each, on 127.0.0.1. Set-up: a dataset of 300 records, an eval of 3
rule metrics, 3 runs completed on it. Each client then sends, in turn, GET
/v1/eval-runs/{id}, /v1/eval-runs?limit=10, /v1/eval-runs/{id}/evaluations?limit=50,
/runs/{id} (the Aegis view) and /v2/eval-runs?limit=10 (the Aymara view), on the 3 runs in
turn, until ``--requests`` requests were sent or ``--seconds`` passed (whichever first). An
error is an exception (timeout: 30 s, API Gateway's) or a non-2xx answer.

(b) schedules the big run, then measures the same mix at once; the run's own started_at /
completed_at say how much of the window it was actually running (it is then waited for, at
most 150 s, and its wall time printed). (c) starts 100 threads behind a barrier, each
opening its own connection for one GET /v1/health; an error is a reset, a timeout or a
non-2xx.

CPU: the stack process's and its workers' (``/proc``, every descendant) over each window, in
cores: the stack process is one interpreter (moto, its middleware, the Step Functions
interpreter, the HTTP front), so ~1.0 there means it is bound by its GIL.

``--profile`` instruments the stack process (not for the figures: it adds a little work per
request): per window, the front's time per request split into the wait for a free worker
(``max_workers_per_function`` = 4 per function), the worker's handler time and the rest
(event, moto's Lambda Invoke API, the result); the IAM check per moto request; and per
DynamoDB operation the wait for and hold of the one-DynamoDB-request-at-a-time lock.
Target: 20 clients, p95 ≤ 250 ms and 0 errors, idle and during the run; no reset at 100
connects.
"""

from __future__ import annotations

import argparse
import os
import secrets
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from multiprocessing import get_context
from typing import Any

import requests
from proctree import process_tree

METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "mentions", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "digits", "scorer": "regex", "args": {"pattern": r"\d+"}, "threshold": 1},
]
SMALL_RECORDS = 300
TIMEOUT_S = 30
TARGET_P95_MS = 250


# ------------------------------------------------------------------ the stack process
class _Stats:
    """What ``--profile`` collects in the stack process (sums and maxima per key)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])

    def add(self, key: str, seconds: float) -> None:
        with self.lock:
            entry = self.data[key]
            entry[0] += 1
            entry[1] += seconds
            entry[2] = max(entry[2], seconds)

    def take(self) -> dict[str, list[float]]:
        with self.lock:
            data, self.data = dict(self.data), defaultdict(lambda: [0, 0.0, 0.0])
        return data


def _instrument(stats: _Stats) -> None:
    """Patch the stack's pieces before it starts (this process only)."""
    from assay_local import lambda_runtime, moto_requests, stack

    acquire, invoke = lambda_runtime._WorkerPool.acquire, lambda_runtime._Worker.invoke

    def timed_acquire(self: Any) -> Any:
        t = time.perf_counter()
        try:
            return acquire(self)
        finally:
            stats.add(f"worker wait  {self.config.name}", time.perf_counter() - t)

    def timed_invoke(self: Any, *args: Any) -> Any:
        t = time.perf_counter()
        try:
            return invoke(self, *args)
        finally:
            stats.add(f"handler      {self.process.name[7:]}", time.perf_counter() - t)

    lambda_runtime._WorkerPool.acquire = timed_acquire  # type: ignore[method-assign]
    lambda_runtime._Worker.invoke = timed_invoke  # type: ignore[method-assign]

    real_iam = stack.iam_middleware

    def timed_iam(enforcer: Any) -> Any:
        def wrap(app: Any) -> Any:
            def inner(environ: dict, start_response: Any) -> Any:
                stats.add("iam check    (per moto request)", time.perf_counter() - environ["bench.iam"])
                return app(environ, start_response)

            checked = real_iam(enforcer)(inner)

            def outer(environ: dict, start_response: Any) -> Any:
                environ["bench.iam"] = time.perf_counter()
                return checked(environ, start_response)

            return outer

        return wrap

    def timed_lock(app: Any) -> Any:
        lock = threading.Lock()

        def serialised(environ: dict, start_response: Any) -> Any:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if not target.startswith("DynamoDB_"):
                return app(environ, start_response)
            op = target.split(".", 1)[1]
            t = time.perf_counter()
            with lock:
                held = time.perf_counter()
                stats.add(f"ddb wait     {op}", held - t)
                response = app(environ, start_response)
                try:
                    return list(response)
                finally:
                    close = getattr(response, "close", None)
                    if close is not None:
                        close()
                    stats.add(f"ddb hold     {op}", time.perf_counter() - held)

        return serialised

    assert moto_requests.one_dynamodb_request_at_a_time is stack.one_dynamodb_request_at_a_time
    stack.iam_middleware = timed_iam
    stack.one_dynamodb_request_at_a_time = timed_lock


def serve(conn: Any, key: str, profile: bool) -> None:
    """Child process: run the stack until told to stop; answer "stats" with the profile."""
    from assay_local.stack import LocalStack

    stats = _Stats()
    if profile:
        _instrument(stats)
    with LocalStack(port=0, bootstrap_key=key, parameters={"LogLevel": "WARNING"}) as stack:
        if profile:
            front = stack._front
            handle, invoke = front.handle, front._invoke

            def timed_handle(request: Any) -> Any:
                t = time.perf_counter()
                try:
                    return handle(request)
                finally:
                    match = front.routes.match(request.method, request.raw_path)
                    route = match.route.route_key if match else request.raw_path
                    stats.add(f"front        {route}", time.perf_counter() - t)

            def timed_invoke(arn: str, event: dict) -> Any:
                t = time.perf_counter()
                try:
                    return invoke(arn, event)
                finally:
                    stats.add("front invoke (moto Lambda API round trip)", time.perf_counter() - t)

            front.handle, front._invoke = timed_handle, timed_invoke
        conn.send(("up", stack.url))
        while True:
            command = conn.recv()
            if command == "stats":
                conn.send(stats.take())
            elif command == "workers":
                conn.send(stack.worker_counts())
            else:
                break


# ------------------------------------------------------------------ the clients
def cpu_ticks(root: int) -> tuple[int, int]:
    """(ticks of ``root`` itself, ticks of all its descendants), utime + stime."""
    ticks = {pid: int(f[11]) + int(f[12]) for pid, f in process_tree(root).items()}
    return ticks.get(root, 0), sum(n for pid, n in ticks.items() if pid != root)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def measure(
    base: str, key: str, paths: list[tuple[str, str]], clients: int, total: int, seconds: float
) -> dict[str, Any]:
    """``clients`` threads send ``paths`` in turn until ``total`` requests or ``seconds``."""
    lock = threading.Lock()
    sent = [0]
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        i = n
        while time.monotonic() < deadline:
            with lock:
                if sent[0] >= total:
                    break
                sent[0] += 1
            kind, path = paths[i % len(paths)]
            i += 1
            t = time.perf_counter()
            try:
                status = session.get(base + path, timeout=TIMEOUT_S).status_code
                error = None if 200 <= status < 300 else f"{kind}: HTTP {status}"
            except requests.RequestException as exc:
                error = f"{kind}: {type(exc).__name__}"
            elapsed = (time.perf_counter() - t) * 1000
            with lock:
                latencies[kind].append(elapsed)
                if error:
                    errors.append(error)
        session.close()

    t0 = time.time()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.time() - t0
    every = [v for values in latencies.values() for v in values]
    return {"start": t0, "wall": wall, "n": len(every), "all": every, "kinds": latencies, "errors": errors}


def hundred_connects(base: str, n: int = 100) -> dict[str, Any]:
    barrier = threading.Barrier(n)
    results: list[tuple[float, str | None]] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait(timeout=30)
        t = time.perf_counter()
        try:
            status = requests.get(
                f"{base}/v1/health", timeout=TIMEOUT_S, headers={"Connection": "close"}
            ).status_code
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {str(exc)[:80]}"
        with lock:
            results.append(((time.perf_counter() - t) * 1000, error))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [e for _, e in results if e]
    return {
        "n": len(results),
        "errors": errors,
        "resets": sum("reset" in e.lower() or "aborted" in e.lower() for e in errors),
        "p50": pct([ms for ms, _ in results], 0.5),
        "max": max(ms for ms, _ in results),
    }


def line(label: str, r: dict[str, Any], cpu: tuple[float, float]) -> str:
    p95 = pct(r["all"], 0.95)
    verdict = "ok" if p95 <= TARGET_P95_MS and not r["errors"] else "over"
    return (
        f"{label:<22} {r['n']:>5} {pct(r['all'], 0.5):8.0f} {p95:8.0f} "
        f"{max(r['all'], default=float('nan')):8.0f} {r['n'] / r['wall']:7.1f} "
        f"{len(r['errors']):>6}  {cpu[0]:4.2f} {cpu[1]:5.2f}  {verdict}"
    )


def print_kinds(r: dict[str, Any]) -> None:
    for kind, values in r["kinds"].items():
        print(
            f"    {kind:<34} n {len(values):>4}  p50 {pct(values, 0.5):6.0f}  "
            f"p95 {pct(values, 0.95):6.0f}  max {max(values):6.0f} ms"
        )
    if r["errors"]:
        counts: dict[str, int] = defaultdict(int)
        for e in r["errors"]:
            counts[e] += 1
        print("    errors: " + ", ".join(f"{e} ×{c}" for e, c in sorted(counts.items())))


def print_profile(stats: dict[str, list[float]], top: int = 30) -> None:
    print(
        "    profile (stack process; the keys above 0.5 s in all): key · count · total s · mean ms · max ms"
    )
    for key, (n, total, peak) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:top]:
        if total < 0.5:
            break
        print(f"      {key:<58} {int(n):>6} {total:8.1f} {1000 * total / n:8.1f} {1000 * peak:8.0f}")


def parse_time(value: str | None) -> float | None:
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main() -> None:  # noqa: C901
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=300, help="per window (a) and (b)")
    parser.add_argument("--seconds", type=float, default=40, help="at most, per window")
    parser.add_argument("--records", type=int, default=10_000, help="of the run scored in (b)")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    key = "ask_bench_" + secrets.token_urlsafe(24)
    ctx = get_context("spawn")
    ours, theirs = ctx.Pipe()
    stack = ctx.Process(target=serve, args=(theirs, key, args.profile), name="assay-stack")
    t_start = time.monotonic()
    stack.start()
    try:
        if not ours.poll(180):
            raise SystemExit("the stack did not start within 180 s")
        _, base = ours.recv()
        started_s = time.monotonic() - t_start
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"

        def post(path: str, body: dict, timeout: float = 60) -> dict:
            response = api.post(base + path, json=body, timeout=timeout)
            response.raise_for_status()
            return response.json()

        def records(n: int) -> list[dict]:
            return [
                {
                    "id": f"r{i}",
                    "input": f"What is {i} + {i}?",
                    "output": f"It is {2 * i}.",
                    "golden_answer": str(2 * i) if i % 5 else "wrong",
                }
                for i in range(n)
            ]

        ev = post("/v1/evals", {"name": "bench-reads"})
        version = post(f"/v1/evals/{ev['id']}/versions", {"metrics": METRICS})
        small = post("/v1/datasets", {"name": "bench-reads"})
        post(f"/v1/datasets/{small['id']}/versions", {"records": records(SMALL_RECORDS)})
        big = post("/v1/datasets", {"name": "bench-reads-big"})
        for start in range(0, args.records, 10_000):
            post(
                f"/v1/datasets/{big['id']}/versions",
                {"records": records(args.records)[start : start + 10_000]},
                timeout=300,
            )
        runs = [
            post(f"/v1/datasets/{small['id']}/runs", {"eval_version_id": version["id"], "batch_size": 100})[
                "id"
            ]
            for _ in range(3)
        ]
        pending = set(runs)
        setup_deadline = time.monotonic() + 120
        while pending and time.monotonic() < setup_deadline:
            time.sleep(0.5)
            for run_id in list(pending):
                run = api.get(f"{base}/v1/eval-runs/{run_id}", timeout=TIMEOUT_S).json()
                if run["status"] not in {"pending", "running"}:
                    pending.discard(run_id)
                    if run["status"] != "completed":
                        raise SystemExit(f"set-up run {run_id} ended {run['status']}")
        if pending:
            raise SystemExit("the set-up runs did not complete within 120 s")
        setup_s = time.monotonic() - t_start - started_s
        paths = []
        for run_id in runs:
            paths += [
                ("GET /v1/eval-runs/{id}", f"/v1/eval-runs/{run_id}"),
                ("GET /v1/eval-runs?limit=10", "/v1/eval-runs?limit=10"),
                ("GET /v1/eval-runs/{id}/evaluations", f"/v1/eval-runs/{run_id}/evaluations?limit=50"),
                ("GET /runs/{id} (Aegis)", f"/runs/{run_id}"),
                ("GET /v2/eval-runs?limit=10 (Aymara)", "/v2/eval-runs?limit=10"),
            ]
        hz = os.sysconf("SC_CLK_TCK")

        def window(go: Any) -> tuple[dict[str, Any], tuple[float, float], dict]:
            if args.profile:
                ours.send("stats")
                ours.recv()  # drop what the set-up / the previous window collected
            c0 = cpu_ticks(stack.pid)
            result = go()
            c1 = cpu_ticks(stack.pid)
            cores = tuple((b - a) / hz / result["wall"] for a, b in zip(c0, c1, strict=True))
            stats = {}
            if args.profile:
                ours.send("stats")
                stats = ours.recv()
            return result, cores, stats  # type: ignore[return-value]

        # Warm-up: every read function gets its workers (cold starts are not what is measured).
        measure(base, key, paths, args.clients, 2 * args.clients, 60)
        alone, alone_cpu, _ = window(lambda: measure(base, key, paths, 1, 50, args.seconds))
        idle, idle_cpu, idle_stats = window(
            lambda: measure(base, key, paths, args.clients, args.requests, args.seconds)
        )

        scheduled = time.time()
        big_run = post(
            f"/v1/datasets/{big['id']}/runs", {"eval_version_id": version["id"], "batch_size": 100}
        )
        busy, busy_cpu, busy_stats = window(
            lambda: measure(base, key, paths, args.clients, args.requests, args.seconds)
        )
        window_end = busy["start"] + busy["wall"]
        wait_deadline = time.monotonic() + 150
        run = api.get(f"{base}/v1/eval-runs/{big_run['id']}", timeout=TIMEOUT_S).json()
        while run["status"] in {"pending", "running"} and time.monotonic() < wait_deadline:
            time.sleep(1)
            run = api.get(f"{base}/v1/eval-runs/{big_run['id']}", timeout=TIMEOUT_S).json()
        run_start = parse_time(run.get("started_at")) or scheduled
        run_end = parse_time(run.get("completed_at")) or time.time()
        overlap = max(0.0, min(run_end, window_end) - max(run_start, busy["start"]))

        connects = hundred_connects(base)
        if args.profile:
            ours.send("workers")
            workers = ours.recv()
    finally:
        if stack.is_alive():
            ours.send("stop")
            stack.join(60)
        if stack.is_alive():
            stack.kill()

    print(
        f"stack up in {started_s:.1f} s; set-up (datasets of {SMALL_RECORDS:,} and "
        f"{args.records:,} records, 3 runs of {SMALL_RECORDS} × {len(METRICS)}) {setup_s:.1f} s"
    )
    print(
        f"{args.clients} clients, requests.Session each, mix of 5 reads over 3 runs; "
        f"≤ {args.requests} requests or {args.seconds:g} s per window; latency in ms; "
        f"cpu in cores (stack process, its workers)"
    )
    print(
        f"{'window':<22} {'reqs':>5} {'p50':>8} {'p95':>8} {'max':>8} {'req/s':>7} "
        f"{'errors':>6}  {'cpu':>4} {'wkrs':>5}  p95 ≤ {TARGET_P95_MS}, 0 errors"
    )
    print(line("(0) one client, idle", alone, alone_cpu))
    print_kinds(alone)
    print(line("(a) idle", idle, idle_cpu))
    print_kinds(idle)
    if args.profile:
        print_profile(idle_stats)
    print(line(f"(b) {args.records // 1000}k-record run", busy, busy_cpu))
    print_kinds(busy)
    if args.profile:
        print_profile(busy_stats)
    running = (
        f"{run_end - run_start:.1f} s"
        if run["status"] not in {"pending", "running"}
        else "still running after the wait"
    )
    print(
        f"    the run ({args.records:,} × {len(METRICS)}) was running {overlap:.1f} s of the "
        f"{busy['wall']:.1f} s window ({100 * overlap / busy['wall']:.0f} %); it ended "
        f"{run['status']} (started → completed {running}; "
        f"{run.get('completed_count', 0):,} scored)"
    )
    print(
        f"(c) 100 concurrent connects, one GET /v1/health each: {connects['n']} answered, "
        f"{len(connects['errors'])} errors ({connects['resets']} resets); p50 "
        f"{connects['p50']:.0f} ms, max {connects['max']:.0f} ms"
    )
    if connects["errors"]:
        print("    " + "; ".join(sorted(set(connects["errors"]))[:5]))
    if args.profile:
        print(f"workers per function at the end: {workers}")
    print(f"total {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
