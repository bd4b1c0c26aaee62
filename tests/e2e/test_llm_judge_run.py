"""An eval run with LLM-judge metrics, end to end on the embedded local stack: the real
template and state machine, the real scoring Lambda calling a real OpenAI-compatible HTTP
endpoint on loopback (scripted), given to the stack as `--judge-base-url` and
ASSAY_JUDGE_API_KEY give it (the template's JudgeOpenAIBaseUrl and JudgeProviders
parameters, the key in its JudgeOpenAISecret), as a deployment would be configured. The
endpoint throttles the first calls (429): the state machine's Retry on
TransientScoringError must absorb them without losing or double-counting an evaluation."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from assay_local.stack import LocalStack

from tests.support.judge_server import completion, judge_server

pytestmark = pytest.mark.e2e
KEY = "ask_e2e-judge-owner-key-0123456789abcdef"
THROTTLED_CALLS = 3
RECORDS = [
    {"id": f"q{i}", "prompt": f"Question {i}?", "output": answer, "golden_answer": "Paris"}
    for i, answer in enumerate(
        ["Paris", "It is Paris.", "Lyon", "paris", "Marseille", "Paris!", "I don't know", "Paris, France"]
    )
]
METRICS = [
    {"name": "ans_corr", "scorer": "answer_correctness", "threshold": 0.5},
    {
        "name": "concise",
        "scorer": "rubric",
        "threshold": 0.5,
        "args": {"criteria": "The answer is one short sentence.", "scale": {"min": 1, "max": 5, "pass": 4}},
    },
    {"name": "exact", "scorer": "exact_match", "args": {"case_sensitive": False}, "threshold": 1.0},
]


class Judge:
    """Grades by whether the answer block contains the reference; throttles at first."""

    def __init__(self) -> None:
        self.calls = 0
        self.generations = 0
        self.lock = threading.Lock()

    def __call__(self, body: dict) -> tuple[int, Any]:
        with self.lock:
            self.calls += 1
            if self.calls <= THROTTLED_CALLS:
                return 429, {"error": {"message": "rate limited", "type": "rate_limit"}}
            if "response_format" not in body:  # the model under test: generation
                self.generations += 1
        if "response_format" not in body:
            prompt = body["messages"][-1]["content"]
            if "lost" in prompt:
                return 400, {"error": {"message": "content policy", "type": "invalid_request_error"}}
            text = "Paris" if "France" in prompt else "Lyon"
            return 200, completion(text, prompt_tokens=20, completion_tokens=2)
        last = body["messages"][-1]["content"]
        if "exactly one of these labels:" in last:  # OpenAI's label_model: the first label
            label = json.loads(last.rsplit("exactly one of these labels:", 1)[1].split(">", 1)[0].strip())[0]
            return 200, completion(json.dumps({"reasoning": "Fine.", "result": label}))
        if "one number from" in last:  # OpenAI's score_model: the top of its range
            top = re.search(r"one number from [\d.]+ to ([\d.]+)", last)
            return 200, completion(json.dumps({"reasoning": "Good.", "result": float(top.group(1))}))
        user = body["messages"][1]["content"]
        scale = re.search(r"a number from ([\d.]+) to ([\d.]+)", user)
        labels = re.search(r"exactly one of (\[.*?\])", user)
        answer = re.search(r"<answer>\n(.*?)\n</answer>", user, re.S)
        if scale:  # a rubric on a scale: the top mark
            verdict = {"score": float(scale.group(2)), "label": "pass", "reasoning": "Short."}
        elif labels:  # a rubric with labels: the first one
            verdict = {"score": 1, "label": json.loads(labels.group(1))[0], "reasoning": "Fine."}
        elif "<reference>" in user and answer:  # correctness: does it name the reference city?
            right = "paris" in answer.group(1).lower()
            verdict = {
                "score": 1.0 if right else 0.0,
                "label": "correct" if right else "incorrect",
                "reasoning": "Names the reference city." if right else "Another city.",
            }
        else:  # faithfulness, relevance, harmlessness
            verdict = {"score": 1.0, "label": "ok", "reasoning": "Fine."}
        verdict["confidence"] = 0.95
        return 200, completion(json.dumps(verdict), prompt_tokens=200, completion_tokens=40)


class Deployment:
    """The local stack started with the scripted endpoint as its judge (base URL and key)."""

    def __init__(self, stack: LocalStack, judge: Judge, script: Any) -> None:
        self.stack, self.judge, self.script = stack, judge, script
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {KEY}"

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.stack.url + path, timeout=60, **kw)

    def run(self, records: list[dict], version: dict, **schedule: Any) -> dict[str, Any]:
        """Create the dataset and eval version, schedule, wait, export: (run, items)."""
        dataset = self.call("POST", "/v1/datasets", json={"name": "judged"}).json()
        created = self.call("POST", f"/v1/datasets/{dataset['id']}/versions", json={"records": records})
        assert created.status_code == 201, created.text
        ev = self.call("POST", "/v1/evals", json={"name": "judged-eval"}).json()
        made = self.call("POST", f"/v1/evals/{ev['id']}/versions", json=version)
        assert made.status_code == 201, made.text
        scheduled = self.call(
            "POST",
            f"/v1/datasets/{dataset['id']}/runs",
            json={"eval_version_id": made.json()["id"], **schedule},
        )
        assert scheduled.status_code == 202, scheduled.text
        run = scheduled.json()
        deadline = time.monotonic() + 120
        while run["status"] in {"pending", "running"} and time.monotonic() < deadline:
            time.sleep(0.3)
            run = self.call("GET", f"/v1/eval-runs/{run['id']}").json()
        export = self.call("GET", f"/v1/eval-runs/{run['id']}/export", params={"format": "json"})
        assert export.status_code == 200, export.text
        return {"run": run, "items": export.json()["items"], "judge": self.judge, "script": self.script}


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    judge = Judge()
    # Configured as `assay local up --judge-base-url URL` with ASSAY_JUDGE_API_KEY does it.
    with (
        judge_server(judge) as (base_url, script),
        LocalStack(port=0, bootstrap_key=KEY, judge_base_url=base_url, judge_api_key="sk-e2e") as stack,
    ):
        yield Deployment(stack, judge, script)


@pytest.fixture(scope="module")
def judged_run(deployment: Deployment) -> dict[str, Any]:
    return deployment.run(
        RECORDS,
        {
            "metrics": METRICS,
            "threshold": 0.5,
            "judge": {"provider": "openai", "model": "gpt-4o-mini", "concurrency": 3},
        },
        batch_size=4,
        max_concurrency=2,
    )


def test_llm_judge_run_completes_with_every_evaluation_once(judged_run):
    run, items = judged_run["run"], judged_run["items"]
    assert run["status"] == "completed", run.get("error_message")
    assert run["completed_count"] + run["failed_count"] == run["item_count"] == len(RECORDS)
    failed = [
        (i["record"]["id"], i["metric_name"], i["error_message"]) for i in items if i["status"] == "failed"
    ]
    assert run["failed_count"] == 0, failed
    keys = [(i["record"]["id"], i["metric_name"]) for i in items]
    assert len(keys) == len(set(keys)) == len(RECORDS) * len(METRICS)


def test_judge_scores_labels_and_reasoning_come_from_the_endpoint(judged_run):
    by_metric: dict[str, dict[str, dict]] = {}
    for item in judged_run["items"]:
        by_metric.setdefault(item["metric_name"], {})[item["record"]["id"]] = item
    corr = by_metric["ans_corr"]
    assert {rid for rid, i in corr.items() if i["is_passed"]} == {"q0", "q1", "q3", "q5", "q7"}
    assert corr["q2"]["label"] == "incorrect" and corr["q2"]["reasoning"] == "Another city."
    assert corr["q0"]["evaluator_type"] == "llm" and corr["q0"]["confidence"] == 0.95
    assert all(i["score"] == 1.0 and i["is_passed"] for i in by_metric["concise"].values())
    # Every judge request was authenticated with the secret's key and asked the version's model.
    requests_seen = judged_run["script"].requests
    assert {r["auth"] for r in requests_seen} == {"Bearer sk-e2e"}
    assert {r["body"]["model"] for r in requests_seen} == {"gpt-4o-mini"}


def test_throttled_batches_were_retried_and_counted_once(judged_run):
    judge = judged_run["judge"]
    judged_cells = len(RECORDS) * 2
    # The throttled calls cost retries (more requests than cells) but no extra evaluations.
    assert judge.calls >= judged_cells + THROTTLED_CALLS
    assert len(judged_run["items"]) == len(RECORDS) * len(METRICS)


def test_token_usage_and_cost_are_recorded_and_summed(judged_run):
    run, items = judged_run["run"], judged_run["items"]
    corr = [i for i in items if i["metric_name"] == "ans_corr"]
    assert all(i["eval_metadata"]["input_tokens"] == 200 for i in corr)
    assert all(i["eval_metadata"]["model"] == "gpt-4o-mini" for i in corr)
    expected = sum(i["evaluation_cost"] or 0 for i in items)
    assert expected > 0 and run["total_cost"] == pytest.approx(expected, rel=1e-6)
    assert all(i["evaluation_cost"] is None for i in items if i["metric_name"] == "exact")


# ------------------------------------------------------------------ every documented scorer
DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_metrics() -> list[dict]:
    """Every inline example of docs/scorers.md and the eval version of docs/judges.md."""
    examples = [
        json.loads(m) for m in re.findall(r"`(\{\"scorer\": .*?\})`", (DOCS / "scorers.md").read_text())
    ]
    metrics = [{"name": f"{e['scorer']}_{i}", **e} for i, e in enumerate(examples)]
    block = re.search(r"```json\n(\{\n  \"threshold\".*?)\n```", (DOCS / "judges.md").read_text(), re.S)
    assert block, "docs/judges.md lost its eval-version example"
    version = json.loads(block.group(1))
    return metrics + version["metrics"]


def test_every_scorer_is_usable_from_an_eval_version_as_documented(deployment):
    # GIVEN every scorer example the docs show (the docs must cover every scorer)
    from assay_service.domain.scorers import scorer_names

    metrics = documented_metrics()
    assert {m["scorer"] for m in metrics} == set(scorer_names())
    # What the OpenAI graders' templates read (the item) and `recorded` replays.
    openai = {
        "item": {"label": "Paris", "answer": "Paris, France 42", "question": "Capital?"},
        "recorded": {"tone": {"score": 1.0, "passed": True}},
    }
    records = [
        {
            "id": "ok",
            "prompt": "Capital of France, and 6 x 7?",
            "input": "Capital?",
            "context": "Paris is the capital of France.",
            "output": "Answer: Paris, France 42",
            "golden_answer": "Paris, France 42",
            "metadata": openai,
        },
        {
            "id": "json",
            "prompt": "As JSON",
            "input": "JSON?",
            "context": "-",
            "output": '{"answer": "Paris 42"}',
            "golden_answer": '{"answer": "Paris 42"}',
            "metadata": openai,
        },
    ]
    # WHEN one eval version holds them all and runs on the local stack
    judged = deployment.run(
        records,
        {"metrics": metrics, "threshold": 0.5, "judge": {"provider": "openai", "model": "gpt-4o-mini"}},
    )
    # THEN every (record, metric) was scored, none failed, every scorer produced a label
    run, items = judged["run"], judged["items"]
    assert run["status"] == "completed", run.get("error_message")
    failed = [(i["metric_name"], i["error_message"]) for i in items if i["status"] == "failed"]
    assert failed == []
    assert len(items) == len(records) * len(metrics)
    assert {i["metric_name"] for i in items} == {m["name"] for m in metrics}
    assert all(i["label"] and 0 <= i["score"] <= 1 for i in items)


def test_a_bedrock_judged_eval_is_refused_at_schedule_where_only_openai_is_offered(deployment):
    # GIVEN the stack started with an OpenAI-compatible judge, and an eval version that keeps
    # the default judge provider, Bedrock, which the local stack cannot call
    schedule_env = deployment.stack.function_env("ScheduleRunFunction")
    assert schedule_env["JUDGE_PROVIDERS"] == "openai"
    assert deployment.stack.function_env("ScoreBatchFunction")["JUDGE_OPENAI_BASE_URL"].startswith("http://")
    dataset = deployment.call("POST", "/v1/datasets", json={"name": "bedrock", "records": RECORDS}).json()
    ev = deployment.call("POST", "/v1/evals", json={"name": "bedrock-judged"}).json()
    version = deployment.call("POST", f"/v1/evals/{ev['id']}/versions", json={"metrics": METRICS[:1]})
    assert version.status_code == 201, version.text
    calls_before = deployment.judge.calls
    # WHEN a run of it is scheduled
    refused = deployment.call(
        "POST", f"/v1/datasets/{dataset['id']}/runs", json={"eval_version_id": version.json()["id"]}
    )
    # THEN a 400 says to judge with provider 'openai' instead, and nothing was asked of a judge
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]
    assert "judge provider 'bedrock' is not available in this deployment (available: openai)" in message
    assert "use provider 'openai' in the eval's judge settings" in message
    assert deployment.judge.calls == calls_before


# ------------------------------------------------------------------ generation
GENERATED = [
    {"id": "g0", "prompt": "Capital of France?", "golden_answer": "Paris"},
    {"id": "g1", "prompt": "Capital of Italy?", "golden_answer": "Rome"},
    {"id": "g2", "prompt": "A lost question", "golden_answer": "Paris"},
]


def test_a_run_generates_each_answer_scores_it_and_a_rerun_comes_from_the_cache(deployment):
    # GIVEN records without an output and an eval version whose model under test is the
    # endpoint's (generation), scored by a rule and an LLM judge
    version = {
        "metrics": METRICS[:1] + METRICS[2:],
        "threshold": 0.5,
        "judge": {"provider": "openai", "model": "gpt-4o-mini"},
        "generation": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "system": "Answer with one word.",
            "messages": [{"content": "{{record.prompt}}"}],
        },
    }
    generations_before = deployment.judge.generations
    first = deployment.run(GENERATED, version, batch_size=2)
    run, items = first["run"], first["items"]
    # THEN each answer was generated once, stored and scored; the refused one is an errored
    # record with the provider's words, not a lost one
    assert run["status"] == "completed", run.get("error_message")
    assert (run["completed_count"], run["failed_count"]) == (2, 1)
    by_record = {(i["record"]["id"], i["metric_name"]): i for i in items}
    assert by_record["g0", "exact"]["is_passed"] and not by_record["g1", "exact"]["is_passed"]
    assert by_record["g0", "exact"]["record"]["output"] == "Paris"
    generation = by_record["g1", "exact"]["record"]["generation"]
    assert (generation["output"], generation["finish_reason"], generation["prompt_tokens"]) == (
        "Lyon",
        "stop",
        20,
    )
    assert "content policy" in by_record["g2", "exact"]["error_message"]
    assert deployment.judge.generations - generations_before == 3
    usage = {(u["role"], u["model"]): u for u in run["per_model_usage"]}
    assert usage["generator", "gpt-4o-mini"]["invocations"] == 2  # the refusal is not billed
    assert usage["judge", "gpt-4o-mini"]["invocations"] == 2
    assert run["cost_breakdown"]["generation"] > 0 and run["cost_breakdown"]["judging"] > 0
    # WHEN the same run is made again: every answer and verdict comes from the cache
    calls_before = deployment.judge.calls
    again = deployment.run(GENERATED, version, batch_size=2)["run"]
    assert again["status"] == "completed"
    assert deployment.judge.calls - calls_before == 1  # only the refused generation is asked again
    assert again["cache_hits"] == 4 and again["total_cost"] == 0
