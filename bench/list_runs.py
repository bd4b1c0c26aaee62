"""Listing runs (GET /v1/eval-runs) with 10 vs 10,000 runs: median latency through the real
ListRunsFunction handler, and what each request asks of DynamoDB.

Usage: .venv/bin/python bench/list_runs.py [--runs 10000] [--requests 50]

Every resource is created from template.yaml on moto in this process (as the functional
tests do); runs are stored as ``DynamoDBRunRepository.create`` stores them (same item, same
index keys), by BatchWriteItem — moto copies the whole table for each transaction, so
10,000 ``create`` calls would take an hour — and their counters by ``backfill_counters``.
Runs are spread over 10 evals, statuses 70 % completed / 20 % failed / 10 % pending, one per
millisecond.

Scenarios (each on a fresh moto): the tenant has ``small`` runs; the tenant has ``--runs``;
the tenant has ``small`` but another tenant has ``--runs`` in the same table. The third
isolates moto's cost: moto answers an index Query by reading every item of the table, so
its latency grows with the table even where DynamoDB's would not. What DynamoDB would do is
the ``calls`` (round trips) and ``read`` (items the queries scanned + items fetched) columns:
a Query returns at most 1 MB, so reading 10,000 index entries (~450 B each) takes ~5 round
trips on DynamoDB where moto answers in one — ``pages@1MB`` estimates them.

Queries (``limit`` = the small tenant's run count, so every page is full): the first page;
``status=completed``; ``eval_id=E&status=completed`` (index partition + filter, its exact
count a COUNT query over the eval's partition, decision 0007). Target: latency ratio (many /
small) ≤ 1.5 — judged on ``est. ms``: the handler's own time (wall time minus the time in
moto's DynamoDB calls) plus a DynamoDB round trip per call and per extra 1 MB page, since
moto's own latency grows with the table where DynamoDB's does not.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"  # the template's roles attach them

from assay_local.resources import create_template_resources
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
KEY = "ask_bench-list-runs-owner-key-0123456789"
OTHER_KEY = "ask_bench-list-runs-other-tenant-key-98"
INDEX_ENTRY_BYTES = 450  # an RunsBy* entry: keys + the six projected attributes
CALL_MS = 5.0  # an in-region DynamoDB round trip from Lambda, a typical single-digit figure
STATUSES = ["completed"] * 7 + ["failed"] * 2 + ["pending"]


class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def seed_runs(tenant_id: uuid.UUID, n: int, evals: list[uuid.UUID]) -> None:
    from assay_service import dependencies as deps
    from assay_service.adapters.dynamodb import model_item, serialize
    from assay_service.domain.ids import run_key
    from assay_service.models.domain import Metric, Run

    repo, table = deps.runs(), deps.table()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    dataset, version = uuid.uuid4(), uuid.uuid4()
    puts = []
    for i in range(n):
        status = STATUSES[i % len(STATUSES)]
        now = start + timedelta(milliseconds=i)
        run = Run(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            project_id=uuid.uuid4(),
            dataset_id=dataset,
            dataset_version_id=version,
            dataset_version=1,
            eval_id=evals[i % len(evals)],
            eval_version_id=uuid.uuid4(),
            status=status,
            item_count=100,
            completed_count=100 if status == "completed" else 0,
            threshold=0.5,
            metrics=[Metric(name="exact", scorer="exact_match")],
            batch_size=100,
            created_at=now,
            updated_at=now,
        )
        item = model_item(run, PK=repo._pk(tenant_id, run_key(run.id)), SK="RUN", **repo.index_keys(run))
        puts.append({"PutRequest": {"Item": serialize(item)}})
    for i in range(0, len(puts), 25):
        table.client.batch_write_item(RequestItems={table.name: puts[i : i + 25]})
    repo.backfill_counters(tenant_id)  # the run counters ``create`` would have moved (0007)


class Counter:
    """DynamoDB calls a request makes, the items they read, and the time spent in them
    (moto's, not ours: subtracted from the handler's wall time to get our own)."""

    def __init__(self) -> None:
        self.calls = self.read = self.bytes_read = 0
        self.aws_seconds = 0.0
        self._started = 0.0

    def start(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def __call__(self, model: Any, parsed: dict, **_: Any) -> None:
        self.aws_seconds += time.perf_counter() - self._started
        self.calls += 1
        if model.name == "Query":
            self.read += parsed.get("ScannedCount", 0)
        elif model.name == "BatchGetItem":
            self.read += sum(len(v) for v in parsed.get("Responses", {}).values())
        elif model.name in ("GetItem", "UpdateItem"):
            self.read += 1


def event(query: dict[str, str], key: str) -> dict:
    base = json.loads((ROOT / "events" / "api" / "list_runs.json").read_text())
    base["headers"]["authorization"] = f"Bearer {key}"
    base["queryStringParameters"] = query
    base["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return base


def scenario(name: str, mine: int, others: int, requests: int, limit: int) -> dict[str, Any]:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from assay_service import dependencies as deps

    deps.reset(clients=True)
    with mock_aws():
        created = create_template_resources(
            ROOT / "template.yaml", stack_name="assay-bench", session=_session()
        )
        os.environ.update(created.functions["ListRunsFunction"].environment)
        os.environ.update(created.functions["ApiKeysFunction"].environment)
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        deps.reset()
        from assay_service.bootstrap import bootstrap_tenant
        from assay_service.handlers.api import list_runs

        tenant = bootstrap_tenant(slug="bench", owner_key=KEY)
        other = bootstrap_tenant(slug="bench-other", owner_key=OTHER_KEY)
        evals = [uuid.uuid4() for _ in range(10)]
        t0 = time.perf_counter()
        seed_runs(tenant.id, mine, evals)
        seed_runs(other.id, others, evals)
        seeded = time.perf_counter() - t0
        counter = Counter()
        deps.client("dynamodb").meta.events.register("before-call.dynamodb", counter.start)
        deps.client("dynamodb").meta.events.register("after-call.dynamodb", counter)
        # One limit for every scenario (the small tenant's run count): the pages hold as many
        # runs whatever the table holds, so the handler's work on them is the same.
        page = str(limit)
        queries = {
            "first page": {"limit": page},
            "status": {"limit": page, "status": "completed"},
            "eval+status": {"limit": page, "eval_id": str(evals[3]), "status": "completed"},
        }
        out: dict[str, Any] = {"name": name, "seeded_s": seeded, "queries": {}}
        for label, query in queries.items():
            ev = event(query, KEY)
            for _ in range(3):  # warm: first-use imports, client, key cache
                list_runs.handler(copy.deepcopy(ev), Context())
            times, own = [], []
            counter.calls = counter.read = 0
            for _ in range(requests):
                counter.aws_seconds = 0.0
                t = time.perf_counter()
                res = list_runs.handler(copy.deepcopy(ev), Context())
                elapsed = time.perf_counter() - t
                times.append(elapsed * 1000)
                own.append((elapsed - counter.aws_seconds) * 1000)
                assert res["statusCode"] == 200, res
            body = json.loads(res["body"])
            if label == "first page":
                assert body["count"] == mine, (body["count"], mine)  # counters are exact
            out["queries"][label] = {
                "median_ms": statistics.median(times),
                "own_ms": statistics.median(own),
                "calls": counter.calls / requests,
                "read": counter.read / requests,
                "count": body["count"],
                "items": len(body["items"]),
            }
    deps.reset(clients=True)
    return out


def _session() -> Any:
    import boto3  # the resource creator wants a boto3 session (local stack code, not Lambda)

    return boto3.Session(region_name=REGION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    limit = min(args.small, 50)
    results = [
        scenario(f"{args.small} runs", args.small, 0, args.requests, limit),
        scenario(f"{args.runs:,} runs", args.runs, 0, args.requests, limit),
        scenario(
            f"{args.small} runs + {args.runs:,} of another tenant",
            args.small,
            args.runs,
            args.requests,
            limit,
        ),
    ]
    print(
        f"GET /v1/eval-runs?limit={limit} through ListRunsFunction on moto · median of "
        f"{args.requests} requests · read = items scanned/fetched per request"
    )
    print(
        f"own ms = the handler's time outside DynamoDB calls; est. ms = own + {CALL_MS:g} ms "
        "per DynamoDB round trip (pages@1MB of them for a Query), what DynamoDB would take"
    )
    print(
        f"{'scenario':<40} {'query':<12} {'moto ms':>8} {'own ms':>7} {'calls':>6} "
        f"{'read':>7} {'pages@1MB':>9} {'est. ms':>8} {'count':>6}"
    )
    for r in results:
        for label, q in r["queries"].items():
            q["pages"] = max(1, -(-int(q["read"]) * INDEX_ENTRY_BYTES // 1_048_576))
            q["est_ms"] = q["own_ms"] + CALL_MS * (q["calls"] + q["pages"] - 1)
            print(
                f"{r['name']:<40} {label:<12} {q['median_ms']:8.1f} {q['own_ms']:7.1f} "
                f"{q['calls']:6.1f} {q['read']:7.0f} {q['pages']:9d} {q['est_ms']:8.1f} "
                f"{q['count']:6d}"
            )
    small, many = results[0]["queries"], results[1]["queries"]
    for label in small:
        ratio = many[label]["est_ms"] / small[label]["est_ms"]
        moto = many[label]["median_ms"] / small[label]["median_ms"]
        print(
            f"ratio {args.runs:,}/{args.small} runs  {label:<12} est. {ratio:5.2f} "
            f"({'ok' if ratio <= 1.5 else 'over'} ≤ 1.5); moto {moto:.1f} (moto reads the "
            "whole table for every index query)"
        )


if __name__ == "__main__":
    main()
