"""Memory over many runs and the time a stop takes, on the embedded local stack as a user
keeps it running (durable, a data directory in a temporary folder).

Usage: .venv/bin/python bench/soak.py [--runs 20] [--records 2000] [--batch-size 100]

One dataset of ``--records`` records and an eval of 3 rule metrics; then ``--runs`` runs on
them, one after the other, each waited for. After each run: the resident memory of the stack
process and of every worker (``/proc``, the whole process tree), the Step Functions
executions moto still holds (parent and Distributed Map children) and the events in their
histories. At the end: the growth per run (least squares over the second half, after the
workers have warmed up), the extrapolation to a day at that pace, the memory after
``--idle`` seconds without requests, and the wall time of the stop (SIGTERM-equivalent:
``LocalStack.stop()``, the clean stop with its compaction).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from proctree import process_tree, proportional_mb

# requests and the stack (moto, boto3) are imported in main(), not here: every Lambda worker
# process re-imports this script as its ``__main__`` (multiprocessing does, for a script run
# by path), and would otherwise carry moto and the whole stack — which the workers of
# ``python -m assay_local serve`` (``make local``) do not.

METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "mentions", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "digits", "scorer": "regex", "args": {"pattern": r"\d+"}, "threshold": 1},
]


def rss_mb() -> tuple[float, float, float]:
    """(the stack process, the whole tree) resident MB, and the tree's proportional MB (a
    shared page counted once)."""
    tree = process_tree(os.getpid())
    page = resource.getpagesize() / 2**20
    return (
        int(tree[os.getpid()][21]) * page,
        sum(int(f[21]) for f in tree.values()) * page,
        proportional_mb(list(tree)),
    )


def held_executions() -> tuple[int, int]:
    """Executions moto still holds and the events in their histories (the stack's moto runs
    in this process)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    executions = events = 0
    for regions in stepfunctions_parser_backends.values():
        for backend in regions.values():
            for execution in backend._get_executions():
                executions += 1
                worker = execution.exec_worker
                if worker is not None:
                    events += len(worker.env.event_manager.get_event_history())
    return executions, events


def slope(xs: list[float], ys: list[float]) -> float:
    return statistics.linear_regression(xs, ys).slope if len(xs) > 1 else 0.0


def main() -> None:
    import requests
    from assay_local.stack import LocalStack

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--idle",
        type=float,
        default=150,
        help="seconds to leave the stack idle after the runs, then measure again "
        "(idle workers beyond one per function are stopped after 120 s)",
    )
    args = parser.parse_args()
    key = "ask_bench_" + secrets.token_urlsafe(24)
    records = [
        {
            "id": f"r{i}",
            "input": f"What is {i} + {i}?",
            "output": f"It is {2 * i}.",
            "golden_answer": str(2 * i) if i % 5 else "wrong",
        }
        for i in range(args.records)
    ]
    data_dir = Path(tempfile.mkdtemp(prefix="assay-soak-"))
    stack = LocalStack(port=0, bootstrap_key=key, parameters={"LogLevel": "WARNING"}, data_dir=data_dir)
    started = time.perf_counter()
    stack.start()
    print(f"start               {time.perf_counter() - started:.1f} s; data in {data_dir}")
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"
    base = stack.url

    def post(path: str, body: dict) -> dict:
        answer = api.post(f"{base}{path}", json=body, timeout=300)
        if answer.status_code >= 400:
            sys.exit(f"POST {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json()

    ds = post("/v1/datasets", {"name": "soak"})
    for start in range(0, len(records), 10_000):
        post(f"/v1/datasets/{ds['id']}/versions", {"records": records[start : start + 10_000]})
    ev = post("/v1/evals", {"name": "soak"})
    version = post(f"/v1/evals/{ev['id']}/versions", {"metrics": METRICS})
    own0, tree0, pss0 = rss_mb()
    print(f"before the runs     stack {own0:,.0f} MB, tree {tree0:,.0f} MB (PSS {pss0:,.0f} MB)")
    print(
        f"{'run':>4} {'status':>10} {'s':>6} {'stack MB':>9} {'tree MB':>8} {'tree PSS':>8} "
        f"{'executions':>10} {'events':>8}"
    )
    xs, own_ys, tree_ys, seconds = [], [], [], []
    for n in range(1, args.runs + 1):
        t0 = time.perf_counter()
        answer = api.post(
            f"{base}/v1/datasets/{ds['id']}/runs",
            timeout=60,
            json={"eval_version_id": version["id"], "batch_size": args.batch_size},
        )
        if answer.status_code >= 400:
            sys.exit(f"scheduling run {n}: {answer.status_code} {answer.text[:500]}")
        run = answer.json()
        while run["status"] in {"pending", "running"}:
            time.sleep(0.5)
            answer = api.get(f"{base}/v1/eval-runs/{run['id']}", timeout=30)
            if answer.status_code >= 400:  # a read timed out on a busy machine: ask again
                continue
            run = answer.json()
        seconds.append(time.perf_counter() - t0)
        own, tree, pss = rss_mb()
        executions, events = held_executions()
        print(
            f"{n:>4} {run['status']:>10} {seconds[-1]:>6.1f} {own:>9,.0f} {tree:>8,.0f} "
            f"{pss:>8,.0f} {executions:>10,} {events:>8,}",
            flush=True,
        )
        xs.append(n)
        own_ys.append(own)
        tree_ys.append(tree)
    half = len(xs) // 2
    per_run = slope(xs[half:], tree_ys[half:])
    per_day = per_run * 86_400 / statistics.mean(seconds)
    print(
        f"growth per run      tree {per_run:+.1f} MB, stack {slope(xs[half:], own_ys[half:]):+.1f}"
        f" MB (runs {half + 1}-{len(xs)})"
    )
    print(
        f"a day at this pace  {86_400 / statistics.mean(seconds):,.0f} runs: tree "
        f"{tree_ys[-1] + per_day:,.0f} MB (linear extrapolation of the growth per run)"
    )
    if args.idle:
        time.sleep(args.idle)
        own, tree, pss = rss_mb()
        workers = sum(stack.worker_counts().values())
        print(
            f"after {args.idle:.0f} s idle   stack {own:,.0f} MB, tree {tree:,.0f} MB "
            f"(PSS {pss:,.0f} MB; {workers} workers)"
        )
    t0 = time.perf_counter()
    stack.stop()
    print(f"stop                {time.perf_counter() - t0:.1f} s")
    return None


if __name__ == "__main__":
    sys.exit(main())
