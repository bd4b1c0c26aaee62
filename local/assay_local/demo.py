"""``make demo``: one real eval run, end to end, on the embedded local stack.

Starts the stack from template.yaml, then acts purely as an HTTP client: creates the
dataset (data/demo/support_qa.jsonl) and the eval (data/demo/eval.json), schedules the
run, follows its progress, prints the summary, downloads the export through its
presigned S3 link, and stops the stack.
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

from assay_local.stack import REPO_ROOT, LocalStack

DATA = REPO_ROOT / "data" / "demo"


class Api:
    def __init__(self, base_url: str, key: str) -> None:
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def __call__(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.session.request(method, self.base + path, timeout=60, **kwargs)
        if response.status_code != expect:
            raise SystemExit(f"{method} {path} → {response.status_code}: {response.text[:500]}")
        return response.json()


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pct(value: float | None) -> str:
    return "   –  " if value is None else f"{100 * value:5.1f}%"


def run_demo(stack_url: str, key: str, out_dir: Path, *, timeout_s: float = 300) -> dict[str, Any]:
    api = Api(stack_url, key)
    records = [
        json.loads(line) for line in (DATA / "support_qa.jsonl").read_text().splitlines() if line.strip()
    ]
    spec = json.loads((DATA / "eval.json").read_text())

    dataset = api(
        "POST",
        "/v1/datasets",
        201,
        json={"name": "northwind-support-qa", "description": "Demo: support assistant answers"},
    )
    version = api("POST", f"/v1/datasets/{dataset['id']}/versions", 201, json={"records": records})
    print(f"dataset   {dataset['id']}  v{version['version']}  {version['record_count']} records")
    ev = api("POST", "/v1/evals", 201, json={"name": spec["name"], "description": spec["description"]})
    ev_version = api("POST", f"/v1/evals/{ev['id']}/versions", 201, json=spec["version"])
    metric_names = ", ".join(m["name"] for m in ev_version["metrics"])
    print(f"eval      {ev['id']}  v{ev_version['version']}  metrics: {metric_names}")

    started = time.monotonic()
    run = api(
        "POST",
        f"/v1/datasets/{dataset['id']}/runs",
        202,
        json={"eval_version_id": ev_version["id"], "name": "demo", "batch_size": 25},
    )
    print(f"run       {run['id']}  scheduled ({run['status']})")
    tty = sys.stdout.isatty()
    last = None
    while run["status"] in {"pending", "running"}:
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"the run did not finish within {timeout_s:.0f} s")
        time.sleep(0.25)
        run = api("GET", f"/v1/eval-runs/{run['id']}")
        line = f"  {run['status']:<9} {_bar(run['completed_count'] + run['failed_count'], run['item_count'])}"
        if tty:
            print("\r" + line, end="", flush=True)
        elif line != last:
            print(line)
        last = line
    if tty:
        print()
    elapsed = time.monotonic() - started
    if run["status"] != "completed":
        raise SystemExit(f"the run ended {run['status']}: {run.get('error_message')}")

    # Both levels, labelled as on every other surface (docs/concepts.md): scores 0–1, rates %.
    print(
        f"\nRun {run['id']} completed in {elapsed:.1f} s — {run['item_count']} records: "
        f"{run['completed_count']} fully scored, {run['failed_count']} with evaluations that "
        "could not be scored"
    )
    print("\n  metric level (each metric's mean vs its own threshold):")
    print(
        f"  {'metric':<16} {'scorer':<13} {'mean':>6} {'threshold':>9} {'':>6} {'pass rate':>9}"
        f" {'unscored':>8}"
    )
    for name, agg in run["aggregate_results"].items():
        below = {True: "ok", False: "BELOW", None: "–"}[agg["is_gte_threshold"]]
        print(
            f"  {name:<16} {agg['scorer']:<13} {_score(agg['mean']):>6} {agg['threshold']:>9.2f}"
            f" {below:>6} {_pct(agg['pass_rate']):>9} {agg['unscored']:>8}"
        )
    if run["verdict"] is None:
        print("\n  no run verdict (no metric could be scored)")
    else:
        op = "≥" if run["verdict"] == "pass" else "<"
        print(
            f"\n  run verdict {run['verdict'].upper()}: result {_score(run['result'])} (mean of the "
            f"metric means) {op} run threshold {run['threshold']:.2f};  records passing every "
            f"metric: {_pct(run['pass_rate']).strip()}"
        )

    link = api("GET", f"/v1/eval-runs/{run['id']}/export", params={"delivery": "link"})
    download = requests.get(link["url"], timeout=60)
    download.raise_for_status()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"eval-run-{run['id']}.json"
    target.write_bytes(download.content)
    export = download.json()
    by_record = {r["id"]: r for r in records}
    failing = [i for i in export["items"] if not i["is_passed"]]
    print(f"\n  A few failing evaluations ({len(failing)} of {len(export['items'])}):")
    for item in failing[:6]:
        record = by_record.get(item["record_id"], {})
        print(f"   • {item['record_id']} {item['metric_name']:<16} output={str(record.get('output'))[:40]!r}")
        print(f"       {item['reasoning'] or item['error_message']}")
    print(
        f"\n  Export downloaded through a presigned S3 link (expires {link['expires_at']}):\n"
        f"    {target.relative_to(REPO_ROOT) if target.is_relative_to(REPO_ROOT) else target}"
        f"  ({link['size_bytes']:,} bytes, {len(export['items'])} evaluations)"
    )
    return {"run": run, "export": export, "elapsed_s": elapsed, "export_path": str(target)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m assay_local.demo",
        description="Run one real eval run end to end on the embedded local stack and show it.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "out",
        help="where the downloaded export goes (default: ./out)",
    )
    args = parser.parse_args(argv)
    key = "ask_demo_" + secrets.token_urlsafe(24)
    t0 = time.monotonic()
    print("Starting the embedded local stack from template.yaml …")
    # The functions log at WARNING so the summary stays readable (LogLevel is a template parameter).
    with LocalStack(port=0, bootstrap_key=key, parameters={"LogLevel": "WARNING"}) as stack:
        print(f"Local stack up at {stack.url} in {time.monotonic() - t0:.1f} s\n")
        run_demo(stack.url, key, args.out)
    print(f"\nStack stopped. Demo wall time {time.monotonic() - t0:.1f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
