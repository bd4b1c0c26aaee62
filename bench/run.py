"""One eval run of N records × 3 rule metrics on the embedded local stack, schedule →
completed: wall time, records/s, and peak memory (the stack process + its workers: the sum
of their resident sizes sampled during the run, and the getrusage peaks).
Usage: .venv/bin/python bench/run.py [--records 10000] [--batch-size 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import time

import requests
from assay_local.stack import LocalStack
from proctree import process_tree

METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "mentions", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "digits", "scorer": "regex", "args": {"pattern": r"\d+"}, "threshold": 1},
]


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest finished child
    return (own + children) / 1024


def tree_rss_mb() -> float:
    """Resident memory now of this process and all its descendants (the stack's workers)."""
    pages = sum(int(fields[21]) for fields in process_tree(os.getpid()).values())
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
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
    with LocalStack(port=0, bootstrap_key=key, parameters={"LogLevel": "WARNING"}) as stack:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        base = stack.url
        ds = api.post(f"{base}/v1/datasets", json={"name": "bench"}, timeout=30).json()
        for start in range(0, len(records), 10_000):
            api.post(
                f"{base}/v1/datasets/{ds['id']}/versions",
                json={"records": records[start : start + 10_000]},
                timeout=300,
            ).raise_for_status()
        ev = api.post(f"{base}/v1/evals", json={"name": "bench"}, timeout=30).json()
        version = api.post(
            f"{base}/v1/evals/{ev['id']}/versions", json={"metrics": METRICS}, timeout=30
        ).json()
        t0 = time.perf_counter()
        run = api.post(
            f"{base}/v1/datasets/{ds['id']}/runs",
            timeout=60,
            json={"eval_version_id": version["id"], "batch_size": args.batch_size},
        ).json()
        peak_tree = tree_rss_mb()
        while run["status"] in {"pending", "running"}:
            time.sleep(0.5)
            peak_tree = max(peak_tree, tree_rss_mb())
            run = api.get(f"{base}/v1/eval-runs/{run['id']}", timeout=30).json()
        wall = time.perf_counter() - t0
        workers = stack.worker_counts()
    print(f"records x metrics   {args.records:,} x {len(METRICS)}  (batch size {args.batch_size})")
    print(
        f"status              {run['status']} {run.get('error_message') or ''} "
        f"completed {run['completed_count']:,} "
        f"failed {run['failed_count']:,}"
    )
    print(f"schedule->completed {wall:.1f} s   {args.records / wall:,.0f} records/s")
    print(
        f"peak RSS, all       {peak_tree:,.0f} MB (stack process + every worker, sampled "
        "every 0.5 s during the run)"
    )
    print(f"peak RSS, max       {peak_rss_mb():,.0f} MB (stack process peak + largest worker peak)")
    print(f"workers per fn      {workers}")


if __name__ == "__main__":
    main()
