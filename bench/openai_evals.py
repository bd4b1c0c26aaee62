"""OpenAI's Evals API on the embedded local stack, through the official ``openai`` SDK (strict
validation on): an eval of two rule graders (``string_check`` eq, ``text_similarity``
rouge_l), a ``jsonl`` run of ``--items`` items given inline (``file_content``), created,
completed, and its output items paged through to the end (``--page`` a page), ``--repeat``
times. Prints per trial: the create call, created → completed, the paging (pages, items/s),
and the counts; then the median and spread.

Usage: .venv/bin/python bench/openai_evals.py [--items 10000] [--page 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
import warnings

import openai
from assay_local.stack import LocalStack

warnings.filterwarnings("ignore", message="The Evals API is deprecated")
CRITERIA = [
    {
        "type": "string_check",
        "name": "exact",
        "input": "{{sample.output_text}}",
        "reference": "{{item.expected}}",
        "operation": "eq",
    },
    {
        "type": "text_similarity",
        "name": "close",
        "input": "{{sample.output_text}}",
        "reference": "{{item.expected}}",
        "evaluation_metric": "rouge_l",
        "pass_threshold": 0.5,
    },
]


def rows(n: int) -> list[dict]:
    return [
        {
            "item": {
                "question": f"What is {i} plus {i}?",
                "expected": str(2 * i),
            },
            "sample": {"output_text": str(2 * i) if i % 7 else f"It is {2 * i}, I think."},
        }
        for i in range(n)
    ]


def trial(client: openai.OpenAI, eval_id: str, items: int, page: int) -> dict[str, float]:
    content = rows(items)
    t0 = time.perf_counter()
    run = client.evals.runs.create(
        eval_id, data_source={"type": "jsonl", "source": {"type": "file_content", "content": content}}
    )
    created = time.perf_counter()
    while run.status in ("queued", "in_progress"):
        time.sleep(0.2)
        run = client.evals.runs.retrieve(run.id, eval_id=eval_id)
    completed = time.perf_counter()
    seen = pages = 0
    for batch in client.evals.runs.output_items.list(run.id, eval_id=eval_id, limit=page).iter_pages():
        pages += 1
        seen += len(batch.data)
    paged = time.perf_counter()
    expected_exact = sum(1 for i in range(items) if i % 7)
    assert run.status == "completed", run.error
    assert run.result_counts.total == items and seen == items, (run.result_counts, seen)
    exact = next(r for r in run.per_testing_criteria_results if r.testing_criteria == "exact")
    assert exact.passed == expected_exact == run.result_counts.passed, (exact, run.result_counts)
    return {
        "create_s": created - t0,
        "complete_s": completed - created,
        "page_s": paged - completed,
        "pages": pages,
        "items_per_s": seen / (paged - completed),
        "passed": run.result_counts.passed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    key = "ask_bench_" + secrets.token_urlsafe(24)
    t_start = time.perf_counter()
    with LocalStack(port=0, bootstrap_key=key, parameters={"LogLevel": "WARNING"}) as stack:
        client = openai.OpenAI(
            base_url=f"{stack.url}/openai/v1", api_key=key, max_retries=0, _strict_response_validation=True
        )
        ev = client.evals.create(
            name="bench",
            data_source_config={
                "type": "custom",
                "item_schema": {"type": "object"},
                "include_sample_schema": True,
            },
            testing_criteria=CRITERIA,
        )
        print(f"stack up and eval created in {time.perf_counter() - t_start:.1f} s")
        print(f"{args.items:,} items × {len(CRITERIA)} graders, pages of {args.page}")
        heads = (
            ("create s", 9),
            ("complete s", 11),
            ("page s", 8),
            ("pages", 6),
            ("items/s", 8),
            ("passed", 7),
        )
        print(f"{'trial':>5} " + " ".join(f"{h:>{w}}" for h, w in heads))
        results = []
        for n in range(args.repeat):
            r = trial(client, ev.id, args.items, args.page)
            results.append(r)
            print(
                f"{n + 1:>5} {r['create_s']:9.2f} {r['complete_s']:11.2f} {r['page_s']:8.2f} "
                f"{r['pages']:>6} {r['items_per_s']:8.0f} {r['passed']:>7}"
            )
        for key_ in ("create_s", "complete_s", "page_s", "items_per_s"):
            values = [r[key_] for r in results]
            spread = f"min {min(values):.2f}, max {max(values):.2f}"
            print(f"{key_:>12}: median {statistics.median(values):.2f}  ({spread})")


if __name__ == "__main__":
    main()
