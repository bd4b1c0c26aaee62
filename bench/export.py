"""Export of a run of 100,000 evaluations: time and peak memory of the finalize step.

Usage: .venv/bin/python bench/export.py [--records 34000] [--batch-size 100]

On a moto server in a child process (so the uploaded parts and the table live outside the
measured process, as S3 and DynamoDB do for a Lambda): every resource from template.yaml;
a running run of N records x 3 rule metrics recorded batch by batch through
``DynamoDBRunRepository.record_batch`` (the write the scoring step makes; evaluations built
like the scorer's, ~40 % failing with a reasoning text); then the real
``services.workflow.finalize``: aggregates, the JSON/JSONL/CSV exports streamed to S3 by
MultipartWriter, the status write.

Figures: wall time of finalize (its own run, no tracing); the Python heap peak during a
second finalize of an identical run under ``tracemalloc``; the growth of the process's peak
RSS (``ru_maxrss``) across the untraced finalize (C extensions and freed-but-kept memory
included), and that peak itself. Target: ≤ 200 MB.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # the template's roles attach them
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)

from assay_local.resources import create_template_resources

ROOT = Path(__file__).resolve().parents[1]
METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "mentions", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1},
    {"name": "digits", "scorer": "regex", "args": {"pattern": r"\d+"}, "threshold": 1},
]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def seed_run(tenant_id: uuid.UUID, records: int, batch_size: int) -> Any:
    """A running run with every batch recorded, as the scoring step leaves it."""
    from assay_service import dependencies as deps
    from assay_service.adapters.dynamodb.keys import dataset_pk, eval_pk
    from assay_service.domain.ids import evaluation_id
    from assay_service.models.domain import Evaluation, Metric, Run

    now = datetime.now(UTC)
    metrics = [Metric(**m) for m in METRICS]
    run = Run(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        project_id=uuid.uuid4(),
        dataset_id=uuid.uuid4(),
        dataset_version_id=uuid.uuid4(),
        dataset_version=1,
        eval_id=uuid.uuid4(),
        eval_version_id=uuid.uuid4(),
        status="running",
        item_count=records,
        threshold=0.5,
        metrics=metrics,
        batch_size=batch_size,
        created_at=now,
        updated_at=now,
        started_at=now,
    )
    for pk, sk in ((dataset_pk(tenant_id, run.dataset_id), "DS"), (eval_pk(tenant_id, run.eval_id), "EVAL")):
        deps.table().put({"PK": pk, "SK": sk})  # a run's create checks its dataset and eval stand
    deps.runs().create(run, max_in_flight=1_000)
    for index, start in enumerate(range(0, records, batch_size)):
        batch = [
            {
                "id": f"r{i}",
                "input": f"What is {i} + {i}?",
                "output": f"It is {2 * i}.",
                "golden_answer": str(2 * i) if i % 5 else "wrong",
            }
            for i in range(start, min(start + batch_size, records))
        ]
        evaluations = []
        for offset, record in enumerate(batch):
            for m, metric in enumerate(metrics):
                passed = (start + offset + m) % 5 > 1
                evaluations.append(
                    Evaluation(
                        id=evaluation_id(run.id, start + offset, m),
                        run_id=run.id,
                        trace_id=uuid.uuid4(),
                        project_id=run.project_id,
                        record_id=record["id"],
                        record_index=start + offset,
                        metric_name=metric.name,
                        scorer=metric.scorer,
                        evaluator_type="rule",
                        status="complete",
                        score=1.0 if passed else 0.0,
                        label="pass" if passed else "fail",
                        reasoning=None
                        if passed
                        else f"expected {record['golden_answer']!r} in the output, found none",
                        is_passed=passed,
                        threshold=1.0,
                        metric_args=metric.args,
                        created_at=now,
                        started_at=now,
                        completed_at=now,
                    )
                )
        outcome = deps.runs().record_batch(
            run,
            index,
            completed=len(batch),
            failed=0,
            records=batch,
            evaluations=evaluations,
            now=now.isoformat(),
        )
        assert outcome == "recorded", outcome
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=34_000)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    from assay_service import dependencies as deps

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        import boto3  # the resource creator wants a boto3 session (local stack code)

        created = create_template_resources(
            ROOT / "template.yaml", stack_name="assay-bench", session=boto3.Session(region_name="us-east-1")
        )
        os.environ.update(created.functions["FinalizeRunFunction"].environment)
        deps.reset(clients=True)
        from assay_service.services import workflow

        tenant = uuid.uuid4()
        t0 = time.perf_counter()
        timed, traced = (seed_run(tenant, args.records, args.batch_size) for _ in range(2))
        seeded = time.perf_counter() - t0
        gc.collect()
        before = rss_mb()
        t0 = time.perf_counter()
        result = workflow.finalize(tenant, timed.id)
        wall = time.perf_counter() - t0
        after = rss_mb()
        assert result.status == "completed", result
        gc.collect()
        tracemalloc.start()
        workflow.finalize(tenant, traced.id)
        _, heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        from assay_service.adapters.s3 import export_key

        sizes = {
            fmt: deps.client("s3").head_object(
                Bucket=deps.get_settings().bucket_name, Key=export_key(tenant, timed.id, fmt)
            )["ContentLength"]
            for fmt in ("jsonl", "json", "csv")
        }
    finally:
        server.terminate()
        server.wait()
    evaluations = args.records * len(METRICS)
    print(
        f"evaluations         {evaluations:,} ({args.records:,} records x {len(METRICS)} metrics, "
        f"batches of {args.batch_size}; seeded 2 runs in {seeded:.0f} s)"
    )
    print("export sizes        " + ", ".join(f"{fmt} {n / 2**20:,.1f} MB" for fmt, n in sizes.items()))
    print(f"finalize wall time  {wall:.1f} s   ({evaluations / wall:,.0f} evaluations/s)")
    print(f"heap peak           {heap_peak / 2**20:,.1f} MB (tracemalloc, during finalize)")
    print(
        f"peak RSS growth     {max(after - before, 0):,.1f} MB (ru_maxrss {before:,.0f} -> "
        f"{after:,.0f} MB for the whole process)"
    )
    print(f"target              <= 200 MB: {'ok' if heap_peak / 2**20 <= 200 else 'OVER'}")


if __name__ == "__main__":
    main()
