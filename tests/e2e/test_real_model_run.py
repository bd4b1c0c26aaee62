"""A run that generates with a real model, end to end: SmolLM2-135M-Instruct (a 94 MB GGUF
inside a PyPI wheel) behind llama.cpp's OpenAI-compatible server on loopback
(tests/support/real_model.py), given to the embedded local stack as `--judge-base-url`.
The real template, state machine and handlers ask it for each record's answer, store it and
score it: what a user does with Ollama or vLLM locally, with a model small enough for CI."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from assay_local.stack import LocalStack

from tests.support import real_model

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(real_model.available() is not None, reason=str(real_model.available())),
]
KEY = "ask_e2e-real-model-owner-key-0123456789"
RECORDS = [
    {"id": "france", "input": "What is the capital of France?", "golden_answer": "Paris"},
    {"id": "italy", "input": "What is the capital of Italy?", "golden_answer": "Rome"},
    {"id": "japan", "input": "What is the capital of Japan?", "golden_answer": "Tokyo"},
]


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalStack, requests.Session]]:
    with (
        real_model.real_model_server() as base_url,
        LocalStack(port=0, bootstrap_key=KEY, judge_base_url=base_url, judge_api_key="none") as local,
    ):
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {KEY}"
        yield local, api


def run(stack: tuple[LocalStack, requests.Session], version: dict[str, Any]) -> tuple[dict, list[dict]]:
    local, api = stack
    base = local.url
    dataset = api.post(
        f"{base}/v1/datasets", json={"name": "capitals", "records": RECORDS}, timeout=60
    ).json()
    ev = api.post(f"{base}/v1/evals", json={"name": "real-model", **version}, timeout=60)
    assert ev.status_code == 201, ev.text
    scheduled = api.post(
        f"{base}/v1/datasets/{dataset['id']}/runs",
        json={"eval_version_id": ev.json()["version"]["id"]},
        timeout=60,
    )
    assert scheduled.status_code == 202, scheduled.text
    current = scheduled.json()
    deadline = time.monotonic() + 240
    while current["status"] in {"pending", "running"} and time.monotonic() < deadline:
        time.sleep(0.5)
        current = api.get(f"{base}/v1/eval-runs/{current['id']}", timeout=60).json()
    items = api.get(f"{base}/v1/eval-runs/{current['id']}/evaluations", timeout=60).json()["items"]
    return current, items


def test_a_real_model_answers_every_record_and_its_answers_are_scored(stack):
    # GIVEN records with no output and an eval whose model under test is the real model
    version = {
        "metrics": [
            {"name": "names_it", "scorer": "contains", "args": {"case_sensitive": False}, "threshold": 1},
            {"name": "short", "scorer": "length", "args": {"max": 400}, "threshold": 1},
        ],
        "threshold": 0.5,
        "generation": {
            "provider": "openai",
            "model": real_model.MODEL_NAME,
            "system": "You are a helpful assistant. Answer in one short sentence.",
            "messages": [{"content": "{{record.input}}"}],
            "max_tokens": 24,
            "temperature": 0,
        },
    }
    # WHEN a run is scheduled
    done, items = run(stack, version)
    # THEN every record was answered by the model (real text, real usage), stored and scored
    assert done["status"] == "completed", done.get("error_message")
    assert (done["completed_count"], done["failed_count"]) == (3, 0)
    assert len(items) == 6 and all(i["status"] == "complete" for i in items)
    for item in items:
        generation = item["record"]["generation"]
        assert generation["output"].strip() and item["record"]["output"] == generation["output"][:100]
        assert generation["finish_reason"] in {"stop", "length"}
        assert generation["prompt_tokens"] > 5 and generation["completion_tokens"] > 0
        assert generation["model"] == real_model.MODEL_NAME
    [usage] = done["per_model_usage"]
    assert (usage["role"], usage["invocations"]) == ("generator", 3)
    assert usage["prompt_tokens"] == sum(i["record"]["generation"]["prompt_tokens"] for i in items) // 2
    # each answer is scored as generated (whatever the small model said)
    for item in (i for i in items if i["metric_name"] == "names_it"):
        answer, golden = (
            item["record"]["generation"]["output"].lower(),
            item["record"]["golden_answer"].lower(),
        )
        assert item["is_passed"] == (golden in answer)
