"""A durable local stack (``data_dir`` / ``serve --data-dir``) keeps its state across a clean
restart and across a ``kill -9``: every dataset, eval, run (with its evaluations and exports)
and API key, the keys still accepted (the HMAC secret survives); a run in flight when the
stack died is resumed and completes with exact counts; one that cannot be resumed ends
failed through the execution-ended reconciler. docs/decisions/0011-durable-local-stack.md."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from assay_local.stack import LocalStack

pytestmark = pytest.mark.e2e

OWNER = "ask_durable-owner-key-0123456789"
METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 1.0},
    {"name": "mentions", "scorer": "contains", "args": {}, "threshold": 1.0},
]


class Api:
    def __init__(self, url: str, key: str = OWNER) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        answer = self.http.request(method, self.url + path, timeout=120, **kw)
        assert answer.status_code == expect, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json() if "json" in answer.headers.get("content-type", "") else answer

    def dataset(self, name: str, records: int) -> str:
        rows = [
            {"id": f"r{i}", "input": f"q{i}", "output": "a" if i % 3 else "b", "golden_answer": "a"}
            for i in range(records)
        ]
        dataset = self.call("POST", "/v1/datasets", 201, json={"name": name})["id"]
        self.call("POST", f"/v1/datasets/{dataset}/versions", 201, json={"records": rows})
        return dataset

    def eval_version(self, name: str) -> str:
        ev = self.call("POST", "/v1/evals", 201, json={"name": name})["id"]
        return self.call(
            "POST", f"/v1/evals/{ev}/versions", 201, json={"metrics": METRICS, "threshold": 0.5}
        )["id"]

    def schedule(self, dataset: str, eval_version: str, batch_size: int) -> str:
        return self.call(
            "POST",
            f"/v1/datasets/{dataset}/runs",
            202,
            json={"eval_version_id": eval_version, "batch_size": batch_size},
        )["id"]

    def wait(self, run: str, until: set[str], seconds: float = 150) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while True:
            found = self.call("GET", f"/v1/eval-runs/{run}")
            if found["status"] in until or time.monotonic() > deadline:
                return found
            time.sleep(0.25)

    def export(self, run: str) -> list[dict[str, Any]]:
        answer = self.http.get(
            f"{self.url}/v1/eval-runs/{run}/export", params={"format": "jsonl"}, timeout=120
        )  # follows a 303 to the presigned S3 link
        assert answer.status_code == 200, answer.text
        return [json.loads(line) for line in answer.content.splitlines() if line.strip()]

    def everything(self) -> dict[str, Any]:
        """What a user can list: datasets, evals, runs, keys (ids and what identifies them)."""
        runs = self.call("GET", "/v1/eval-runs", params={"limit": 100})["items"]
        return {
            "datasets": sorted(
                d["id"] for d in self.call("GET", "/v1/datasets", params={"limit": 100})["items"]
            ),
            "evals": sorted(e["id"] for e in self.call("GET", "/v1/evals", params={"limit": 100})["items"]),
            "runs": sorted((r["id"], r["status"], r["tenant_id"]) for r in runs),
            "keys": sorted((k["id"], k["role"]) for k in self.call("GET", "/v1/api-keys")["items"]),
        }


def tenants(stack: LocalStack) -> int:
    assert stack.durable is not None
    table = stack.resources["AssayTable"]
    return sum(1 for item in stack.durable.scan(table) if item["SK"]["S"] == "TENANT")


class StartExecutionRefused(LocalStack):
    """A stack whose Step Functions refuses StartExecution (to reach the fallback path)."""

    def client(self, service: str) -> Any:
        client = super().client(service)
        if service == "stepfunctions":

            def refuse(**_: Any) -> None:
                raise RuntimeError("StartExecution refused by the test")

            client.start_execution = refuse
        return client


def test_a_clean_restart_keeps_every_object_run_and_key(tmp_path):
    data = tmp_path / "data"
    # GIVEN a durable stack with datasets, evals, a member key and a completed run
    with LocalStack(port=0, bootstrap_key=OWNER, data_dir=data, judge_api_key="sk-kept-judge-key") as stack:
        assert stack.restored is not None and stack.restored.rows == 0
        assert judge_secret(stack.moto_endpoint) == "sk-kept-judge-key"
        api = Api(stack.url)
        datasets = [api.dataset(f"ds-{n}", 12) for n in range(3)] + [api.dataset("long", 1000)]
        versions = [api.eval_version(f"ev-{n}") for n in range(2)]
        member = api.call("POST", "/v1/api-keys", 201, json={"name": "ci", "role": "member"})["key"]
        done = api.schedule(datasets[0], versions[0], batch_size=5)
        assert api.wait(done, {"completed", "failed"})["status"] == "completed"
        before = api.everything()
        evaluations = api.call("GET", f"/v1/eval-runs/{done}/evaluations", params={"limit": 100})["items"]
        export = api.export(done)
        # AND a run scheduled just before the stop, still in flight when it stops
        cut_short = api.schedule(datasets[3], versions[1], batch_size=5)
        stopping = time.perf_counter()
    stop_seconds = time.perf_counter() - stopping

    # WHEN it restarts on the same data directory, StartExecution refused for that run
    with StartExecutionRefused(port=0, bootstrap_key=OWNER, data_dir=data) as stack:
        api = Api(stack.url)
        # THEN every object, run, evaluation, export and key is there, the keys accepted
        assert stack.restored is not None and stack.restored.rows > 0
        assert stack.restored.failed == 0, stack.restored.errors
        assert judge_secret(stack.moto_endpoint) == "sk-kept-judge-key"  # no key given: kept
        after = api.everything()
        assert {k: v for k, v in after.items() if k != "runs"} == {
            k: v for k, v in before.items() if k != "runs"
        }
        assert set(before["runs"]) <= set(after["runs"])
        assert {r[0] for r in after["runs"]} == {done, cut_short}
        assert (
            api.call("GET", f"/v1/eval-runs/{done}/evaluations", params={"limit": 100})["items"]
            == evaluations
        )
        assert api.export(done) == export and len(export) == 12 * len(METRICS)
        Api(stack.url, member).call("GET", "/v1/datasets")  # the member key still matches
        assert tenants(stack) == 1  # the bootstrap found its tenant: same id, same keys
        assert {r[2] for r in after["runs"]} == {r[2] for r in before["runs"]}
        # AND the run cut short, which could not be started again, ended failed, saying why
        assert stack.failed_runs == [cut_short] and stack.resumed_runs == [], after["runs"]
        ended = api.wait(cut_short, {"failed", "completed", "cancelled"}, seconds=60)
        assert ended["status"] == "failed", ended
        assert "local stack stopped while the run was in flight" in ended["error_message"]
    print(
        f"\nstop with a run in flight: {stop_seconds:.2f}s; restart: "
        f"{stack.startup_seconds:.2f}s, {stack.restored.rows} rows replayed in "
        f"{stack.restored.seconds:.2f}s"
    )


def judge_secret(moto_endpoint: str) -> str:
    client = boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return client.get_secret_value(SecretId="assay-local-JudgeOpenAISecret")["SecretString"]


# --------------------------------------------------------------------------- kill -9
class Served:
    """``python -m assay_local serve --port 0 --data-dir D`` in its own session; its output
    drained by a thread (workers log there too)."""

    url: str | None = None

    def __init__(self, cwd: Path, data: Path, **env_vars: str) -> None:
        env = {**os.environ, "ASSAY_BOOTSTRAP_KEY": OWNER, **env_vars}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assay_local", "serve", "--port", "0", "--data-dir", str(data)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(180) or self.url is None:
            self.kill_group()
            raise AssertionError("the stack did not start:\n" + "".join(self.lines[-40:]))

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"Assay local API on (http://\S+)", line)
            if found:
                self.url = found.group(1)
            if "Ctrl-C to stop." in line or "failed to start" in line:
                self._ready.set()
        self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def judge_secret(self) -> str:
        """The value of the stack's JudgeOpenAISecret, read from its moto."""
        found = re.search(r"moto at (http://[^\s)]+)", self.output)
        assert found, self.output
        return judge_secret(found.group(1))

    def kill_group(self) -> None:
        """SIGKILL to what is left of the session (orphaned workers of a killed stack)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def test_kill_9_mid_run_loses_nothing_and_the_run_resumes_to_exact_counts(tmp_path):
    data, records = tmp_path / "data", 3000
    # GIVEN a served durable stack with data, a member key, and a long run in flight; its
    # judge configured by the environment
    judge = {"ASSAY_JUDGE_BASE_URL": "http://127.0.0.1:9/v1", "ASSAY_JUDGE_API_KEY": "sk-first-judge-key"}
    first = Served(tmp_path, data, **judge)
    try:
        assert "State kept in" in first.output and str(data) in first.output
        assert (
            "LLM judges and generation: provider 'openai' at http://127.0.0.1:9/v1 (API key given)"
            in first.output
        )
        assert first.judge_secret() == "sk-first-judge-key"
        api = Api(first.url)
        datasets = [api.dataset("small", 6), api.dataset("large", records)]
        version = api.eval_version("durable")
        member = api.call("POST", "/v1/api-keys", 201, json={"name": "m", "role": "member"})["key"]
        before = api.everything()
        run = api.schedule(datasets[1], version, batch_size=25)
        deadline = time.monotonic() + 120
        while (seen := api.call("GET", f"/v1/eval-runs/{run}"))["completed_count"] == 0:
            assert time.monotonic() < deadline and seen["status"] in {"pending", "running"}, seen
            time.sleep(0.1)
        # WHEN the serving process is killed (SIGKILL: no clean stop, no compaction)
        first.process.kill()
        first.process.wait(30)
    finally:
        first.kill_group()
    assert seen["status"] == "running" and 0 < seen["completed_count"] < records, seen

    # THEN a restart on the same data directory finds everything, the keys still valid
    second = Served(tmp_path, data, ASSAY_JUDGE_API_KEY="sk-second-judge-key")
    try:
        api = Api(second.url)
        # AND the judge key given at the restart replaced the kept one; no key is ever printed
        assert second.judge_secret() == "sk-second-judge-key"
        assert "LLM judges and generation: none (Bedrock cannot be called locally" in second.output
        assert "judge-key" not in first.output + second.output
        assert f"Resumed 1 run(s) in flight when the stack stopped: {run}" in second.output
        after = api.everything()
        assert {k: v for k, v in after.items() if k != "runs"} == {
            k: v for k, v in before.items() if k != "runs"
        }
        assert [r[0] for r in after["runs"]] == [run]
        Api(second.url, member).call("GET", "/v1/datasets")
        # AND the run cut short completes, each record counted once, every evaluation exported
        final = api.wait(run, {"completed", "failed", "cancelled"}, seconds=150)
        assert final["status"] == "completed", final
        assert final["item_count"] == records
        assert final["completed_count"] + final["failed_count"] == records
        export = api.export(run)
        assert len(export) == records * len(METRICS)
        assert len({(e["record_id"], e["metric_name"]) for e in export}) == records * len(METRICS)
        # AND SIGTERM still stops it cleanly
        second.process.terminate()
        assert second.process.wait(90) == 0
        assert "assay-local stopped." in second.output
    finally:
        second.kill_group()
