"""A generate + judge run against a provider with limits, on the embedded local stack.

A real OpenAI-compatible server on loopback (``tests/support/judge_server.model_server``)
answers every call after ``--latency`` seconds and enforces ``--rpm`` requests/min and
``--tpm`` tokens/min the way OpenAI does (a 429 with ``Retry-After`` for a request over its
limits, never served). The stack is started with it as its OpenAI-compatible endpoint and
the same limits as its ``ModelRateLimits``. One eval version generates each record's answer
with the model and scores it with ``exact_match`` and an LLM judge (the same model, so both
roles share one bucket on both sides).

Printed: wall time schedule → completed, against the limit-bound minimum (calls ÷ rpm, or
tokens ÷ tpm when that binds) and its ratio; the server's counts (requests received, 429s
sent, requests served over its limit — 0 by construction —, the most requests seen in any
60 s); the run's counts (every record once: completed + failed = records, evaluations =
records × metrics, no duplicate); then the same run again with the cache warm: the calls it
made (target 0) and its wall time. Last, the cost model of 100,000 generated + judged records
on Bedrock, from the price table and the AWS cost model.

Usage: .venv/bin/python bench/generation.py [--records 2000] [--rpm 1200] [--tpm 2000000]
       [--latency 0.2] [--max-concurrency 8]
Target (issue): wall ≤ 1.15 × the limit-bound minimum; 0 requests beyond the limit once
backoff settles; no record lost or doubled; a warm re-run makes 0 model calls.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assay_local.stack import LocalStack  # noqa: E402

from tests.support.judge_server import model_server  # noqa: E402

MODEL = "bench-model"
STARTS: list[float] = []


def version(max_tokens: int) -> dict[str, Any]:
    return {
        "threshold": 0.5,
        "metrics": [
            {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1},
            {"name": "correct", "scorer": "answer_correctness", "threshold": 0.5},
        ],
        "judge": {"provider": "openai", "model": MODEL, "max_tokens": 128, "concurrency": 8},
        "generation": {
            "provider": "openai",
            "model": MODEL,
            "messages": [{"content": "{{record.prompt}}"}],
            "max_tokens": max_tokens,
            "concurrency": 8,
        },
    }


def run_once(
    api: requests.Session, base: str, dataset_id: str, version_id: str, **extra: Any
) -> tuple[dict, float]:
    started = time.monotonic()
    STARTS.append(started)  # the server's clock is time.monotonic too
    scheduled = api.post(
        f"{base}/v1/datasets/{dataset_id}/runs", json={"eval_version_id": version_id, **extra}, timeout=60
    )
    scheduled.raise_for_status()
    run = scheduled.json()
    while run["status"] in {"pending", "running"}:
        time.sleep(0.25)
        run = api.get(f"{base}/v1/eval-runs/{run['id']}", timeout=60).json()
    return run, time.monotonic() - started


def count_evaluations(api: requests.Session, base: str, run_id: str) -> tuple[int, int]:
    """(evaluations, distinct (record, metric) pairs), paging the evaluations list."""
    seen: set[tuple[str, str]] = set()
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = api.get(f"{base}/v1/eval-runs/{run_id}/evaluations", params=params, timeout=60).json()
        for item in page["items"]:
            total += 1
            seen.add((item["record_id"], item["metric_name"]))
        cursor = page.get("next_cursor")
        if not cursor:
            return total, len(seen)


def bedrock_cost_model(records: int) -> None:
    from assay_service.domain.cost import estimated_aws_cost
    from assay_service.domain.pricing import cost_usd

    generator, judge = "amazon.nova-lite-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0"
    gen_in, gen_out, judge_in, judge_out = 150, 120, 650, 80  # tokens per record, assumed
    generation = (cost_usd(generator, gen_in, gen_out) or 0) * records
    judging = (cost_usd(judge, judge_in, judge_out) or 0) * records
    infrastructure = estimated_aws_cost(records, 2, 10) or 0
    print(
        f"\ncost model, {records:,} records generated ({generator}: {gen_in} in / {gen_out} out tokens) and "
        f"judged ({judge}: {judge_in} in / {judge_out} out), batch 10, on Bedrock (us-east-1 list prices):"
    )
    print(
        f"  generation ${generation:,.2f} · judging ${judging:,.2f} · infrastructure ${infrastructure:,.2f}"
    )
    print(
        f"  total ${generation + judging + infrastructure:,.2f} "
        "(the shared limiter's DynamoDB requests aside)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--tpm", type=int, default=2_000_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--max-concurrency", type=int, default=8, help="batches of the run at once")
    args = parser.parse_args()
    key = "ask_bench_" + secrets.token_urlsafe(24)
    records = [
        {"id": f"r{i}", "prompt": f"What is {i} plus {i}?", "golden_answer": str(2 * i)}
        for i in range(args.records)
    ]
    limits = json.dumps({f"openai:{MODEL}": {"requests_per_minute": args.rpm, "tokens_per_minute": args.tpm}})
    with (
        model_server(rpm=args.rpm, tpm=args.tpm, latency=args.latency) as (url, server),
        LocalStack(
            port=0,
            bootstrap_key=key,
            judge_base_url=url,
            judge_api_key="sk-bench",
            parameters={"LogLevel": "WARNING", "ModelRateLimits": limits},
        ) as stack,
    ):
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {key}"
        base = stack.url
        dataset = api.post(f"{base}/v1/datasets", json={"name": "bench-gen"}, timeout=30).json()
        api.post(
            f"{base}/v1/datasets/{dataset['id']}/versions", json={"records": records}, timeout=120
        ).raise_for_status()
        ev = api.post(f"{base}/v1/evals", json={"name": "bench-gen"}, timeout=30).json()
        made = api.post(f"{base}/v1/evals/{ev['id']}/versions", json=version(args.max_tokens), timeout=30)
        made.raise_for_status()
        version_id = made.json()["id"]

        before = server.received
        run, wall = run_once(api, base, dataset["id"], version_id, max_concurrency=args.max_concurrency)
        calls = server.served
        evaluations, distinct = count_evaluations(api, base, run["id"])
        tokens = sum((u["prompt_tokens"] + u["completion_tokens"]) for u in run.get("per_model_usage") or [])
        by_requests = calls / (args.rpm / 60)
        by_tokens = tokens / (args.tpm / 60)
        minimum = max(by_requests, by_tokens)
        print(
            f"{args.records:,} records, generate + judge with {MODEL} behind rpm {args.rpm:,}, "
            f"tpm {args.tpm:,}, "
            f"latency {args.latency * 1000:.0f} ms; run max_concurrency {args.max_concurrency}"
        )
        print(
            f"run {run['status']}: completed {run['completed_count']:,} failed {run['failed_count']:,} of "
            f"{run['item_count']:,}; evaluations {evaluations:,} ({distinct:,} distinct, expected "
            f"{args.records * 2:,}); {run.get('error_message') or ''}"
        )
        print(
            f"wall {wall:.1f} s; limit-bound minimum {minimum:.1f} s "
            f"({calls:,} calls ÷ {args.rpm / 60:.0f}/s = "
            f"{by_requests:.1f} s; {tokens:,} tokens ÷ {args.tpm / 60:,.0f}/s = {by_tokens:.1f} s); "
            f"ratio {wall / minimum:.3f} (target ≤ 1.15)"
        )
        print(
            f"server: received {server.received - before:,}, served {server.served:,}, 429s sent "
            f"{server.rate_limited:,}, served over the limit {server.over_limit_served} (target 0), "
            f"most in any 60 s {server.max_requests_in_window(60):,}, most in flight {server.max_in_flight}"
        )
        print(f"per model usage: {json.dumps(run.get('per_model_usage'))}")
        if server.served_at:
            first = server.served_at[0]
            per_second = [0] * (int(server.served_at[-1] - first) + 1)
            for at in server.served_at:
                per_second[int(at - first)] += 1
            print(f"served per second: {per_second}")
            print(
                f"first call {first - STARTS[0]:.1f} s after the schedule, last "
                f"{server.served_at[-1] - STARTS[0]:.1f} s after"
            )

        before = server.received
        again, wall_again = run_once(
            api, base, dataset["id"], version_id, max_concurrency=args.max_concurrency
        )
        print(
            f"re-run with the cache warm: {again['status']} in {wall_again:.1f} s; model calls "
            f"{server.received - before} (target 0); cache hits {again['cache_hits']:,}, misses "
            f"{again['cache_misses']:,}; total_cost {again['total_cost']}"
        )
    bedrock_cost_model(100_000)


if __name__ == "__main__":
    main()
