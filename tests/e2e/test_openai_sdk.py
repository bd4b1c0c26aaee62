"""OpenAI's official ``openai`` SDK, unchanged, against the embedded local stack's
``/openai/v1`` with strict response validation on: every Evals API operation (evals, runs,
output items) and the Files API part a ``file_id`` needs, the SDK's own paging, and its
errors — all through the real template, state machine and handlers. Model graders and
``completions`` runs call a real OpenAI-compatible HTTP endpoint on loopback (scripted)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests
from assay_local.stack import LocalStack

from tests.support.judge_server import completion, judge_server

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:The Evals API is deprecated")]
KEY = "ask_e2e-openai-owner-key-0123456789abcdef"
OTHER = "ask_e2e-openai-other-key-0123456789abcdef"
ITEMS = 57  # more than two pages of 20 output items, and a short last page
CRITERIA = [
    {
        "type": "string_check",
        "name": "Exact answer",
        "input": "{{sample.output_text}}",
        "reference": "{{item.expected}}",
        "operation": "eq",
    },
    {
        "type": "label_model",
        "name": "Tone",
        "model": "gpt-4o-mini",
        "input": [
            {"role": "developer", "content": "Judge the tone."},
            {"role": "user", "content": "Question: {{item.question}}\nAnswer: {{sample.output_text}}"},
        ],
        "labels": ["polite", "rude"],
        "passing_labels": ["polite"],
    },
    {
        "type": "score_model",
        "name": "Quality",
        "model": "gpt-4o-mini",
        "input": [{"role": "user", "content": "Rate this answer: {{sample.output_text}}"}],
        "range": [0, 10],
        "pass_threshold": 6,
    },
]


class Model:
    """The model under test answers with the item's number; the graders grade by it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0

    def __call__(self, body: dict) -> tuple[int, Any]:
        with self.lock:
            self.calls += 1
        last = body["messages"][-1]["content"]
        if "exactly one of these labels" in last:
            label = "rude" if "13" in last else "polite"
            return 200, completion(json.dumps({"reasoning": "Reads fine.", "result": label}))
        if "one number from" in last:
            return 200, completion(json.dumps({"reasoning": "Clear.", "result": 3 if "7" in last else 8}))
        question = last.split("#")[-1].rstrip("?")
        return 200, completion(f"{question}", prompt_tokens=12, completion_tokens=2)


def rows(n: int) -> list[dict[str, Any]]:
    """Items 0..n-1 with their samples; every fifth answer is wrong."""
    return [
        {
            "item": {"question": f"Which number is #{i}?", "expected": str(i), "meta": {"i": i}},
            "sample": {"output_text": str(i) if i % 5 else f"{i}!", "model": "logged"},
        }
        for i in range(n)
    ]


class Deployment:
    def __init__(self, stack: LocalStack, model: Model) -> None:
        self.stack, self.model = stack, model
        self.client = openai.OpenAI(
            base_url=f"{stack.url}/openai/v1",
            api_key=KEY,
            max_retries=0,
            _strict_response_validation=True,
        )

    def wait(self, eval_id: str, run_id: str) -> Any:
        deadline = time.monotonic() + 120
        run = self.client.evals.runs.retrieve(run_id, eval_id=eval_id)
        while run.status in ("queued", "in_progress") and time.monotonic() < deadline:
            time.sleep(0.3)
            run = self.client.evals.runs.retrieve(run_id, eval_id=eval_id)
        return run


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    model = Model()
    with (
        judge_server(model) as (base_url, _),
        LocalStack(port=0, bootstrap_key=KEY, judge_base_url=base_url, judge_api_key="sk-e2e") as stack,
    ):
        yield Deployment(stack, model)


@pytest.fixture(scope="module")
def an_eval(deployment: Deployment) -> Any:
    return deployment.client.evals.create(
        name="capitals",
        metadata={"team": "search"},
        data_source_config={
            "type": "custom",
            "item_schema": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "expected": {"type": "string"}},
                "required": ["question", "expected"],
            },
            "include_sample_schema": True,
        },
        testing_criteria=CRITERIA,
    )


@pytest.fixture(scope="module")
def jsonl_run(deployment: Deployment, an_eval: Any) -> Any:
    run = deployment.client.evals.runs.create(
        an_eval.id,
        name="logged answers",
        metadata={"build": "42"},
        data_source={"type": "jsonl", "source": {"type": "file_content", "content": rows(ITEMS)}},
    )
    assert run.status == "queued" and run.eval_id == an_eval.id
    return deployment.wait(an_eval.id, run.id)


def expected_pass(i: int) -> bool:
    """Exact unless i % 5 == 0; polite unless "13" is in the prompt; quality ≥ 6 unless "7" is."""
    return i % 5 != 0 and "13" not in str(i) and "7" not in str(i)


def test_an_eval_comes_back_as_created(deployment: Deployment, an_eval: Any) -> None:
    assert an_eval.object == "eval" and an_eval.id.startswith("eval_")
    assert an_eval.name == "capitals" and an_eval.metadata == {"team": "search"}
    assert [c.type for c in an_eval.testing_criteria] == ["string_check", "label_model", "score_model"]
    assert an_eval.data_source_config.type == "custom"
    schema = an_eval.data_source_config.schema_
    assert schema["properties"]["item"]["required"] == ["question", "expected"]
    assert "sample" in schema["properties"] and isinstance(an_eval.created_at, int)
    again = deployment.client.evals.retrieve(an_eval.id)
    assert again.model_dump() == an_eval.model_dump()


def test_a_jsonl_run_completes_with_openai_counts(
    deployment: Deployment, an_eval: Any, jsonl_run: Any
) -> None:
    run = jsonl_run
    assert run.status == "completed", run.error
    passed = sum(expected_pass(i) for i in range(ITEMS))
    assert run.result_counts.model_dump() == {
        "total": ITEMS,
        "errored": 0,
        "passed": passed,
        "failed": ITEMS - passed,
    }
    by_name = {r.testing_criteria: (r.passed, r.failed) for r in run.per_testing_criteria_results}
    exact = sum(i % 5 != 0 for i in range(ITEMS))
    polite = sum("13" not in str(i) for i in range(ITEMS))
    quality = sum("7" not in str(i) for i in range(ITEMS))
    assert by_name == {
        "Exact answer": (exact, ITEMS - exact),
        "Tone": (polite, ITEMS - polite),
        "Quality": (quality, ITEMS - quality),
    }
    (usage,) = run.per_model_usage
    assert usage.run_model_name == "gpt-4o-mini" and usage.invocation_count == 2 * ITEMS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert run.metadata == {"build": "42"} and run.name == "logged answers"
    assert run.error.code == "" and run.report_url.startswith(deployment.stack.url)
    # The inline rows were kept as a file, and the run names it as its source.
    assert run.data_source.type == "jsonl" and run.data_source.source.type == "file_id"
    content = deployment.client.files.content(run.data_source.source.id).text.splitlines()
    assert [json.loads(line) for line in content] == rows(ITEMS)


def test_output_items_page_to_the_end_with_the_sdks_paginator(
    deployment: Deployment, an_eval: Any, jsonl_run: Any
) -> None:
    client = deployment.client
    items = list(client.evals.runs.output_items.list(jsonl_run.id, eval_id=an_eval.id, limit=20))
    assert [i.datasource_item_id for i in items] == list(range(ITEMS))
    assert len({i.id for i in items}) == ITEMS
    for item in items:
        i = item.datasource_item_id
        assert item.datasource_item == rows(ITEMS)[i]["item"]
        assert item.status == ("pass" if expected_pass(i) else "fail")
        assert [r.name for r in item.results] == ["Exact answer", "Tone", "Quality"]
        assert item.sample.output[0].content == rows(ITEMS)[i]["sample"]["output_text"]
    newest_first = list(client.evals.runs.output_items.list(jsonl_run.id, eval_id=an_eval.id, order="desc"))
    assert [i.datasource_item_id for i in newest_first] == list(reversed(range(ITEMS)))
    failing = list(
        client.evals.runs.output_items.list(jsonl_run.id, eval_id=an_eval.id, status="fail", limit=7)
    )
    assert [i.datasource_item_id for i in failing] == [i for i in range(ITEMS) if not expected_pass(i)]
    one = client.evals.runs.output_items.retrieve(items[33].id, eval_id=an_eval.id, run_id=jsonl_run.id)
    assert one.model_dump() == items[33].model_dump()


def test_a_completions_run_generates_each_answer(
    deployment: Deployment, an_eval: Any, jsonl_run: Any
) -> None:
    client = deployment.client
    run = client.evals.runs.create(
        an_eval.id,
        name="generated",
        data_source={
            "type": "completions",
            "model": "gpt-4o-mini",
            "input_messages": {
                "type": "template",
                "template": [
                    {"role": "system", "content": "Answer with the number only."},
                    {"role": "user", "content": "{{item.question}}"},
                ],
            },
            "sampling_params": {"temperature": 0, "max_completion_tokens": 16, "seed": 7},
            "source": {"type": "file_content", "content": [{"item": r["item"]} for r in rows(12)]},
        },
    )
    run = deployment.wait(an_eval.id, run.id)
    assert run.status == "completed" and run.model == "gpt-4o-mini"
    assert run.result_counts.total == 12 and run.result_counts.errored == 0
    items = list(client.evals.runs.output_items.list(run.id, eval_id=an_eval.id))
    first = items[1]
    assert first.sample.output[0].content == "1"  # generated: the model answers the number
    assert first.sample.model == "gpt-4o-mini" and first.sample.seed == 7
    assert first.sample.max_completion_tokens == 16
    assert [m.content for m in first.sample.input] == ["Answer with the number only.", "Which number is #1?"]
    assert first.sample.usage.total_tokens == 14
    (usage,) = run.per_model_usage
    # 12 answers generated; the two model graders then ask about the same answers the jsonl
    # run's samples gave (temperature 0: cached) except items 0, 5 and 10 (samples "0!"…).
    assert usage.invocation_count == 12 + 2 * 3


def test_runs_list_filter_cancel_and_delete(deployment: Deployment, an_eval: Any, jsonl_run: Any) -> None:
    client = deployment.client
    upload = client.files.create(
        file=("items.jsonl", b"".join(json.dumps(r).encode() + b"\n" for r in rows(400))), purpose="evals"
    )
    assert upload.purpose == "user_data" and upload.bytes > 0 and upload.filename == "items.jsonl"
    assert client.files.retrieve(upload.id).model_dump() == upload.model_dump()
    slow = client.evals.runs.create(
        an_eval.id, data_source={"type": "jsonl", "source": {"type": "file_id", "id": upload.id}}
    )
    canceled = client.evals.runs.cancel(slow.id, eval_id=an_eval.id)
    assert canceled.status in ("canceled", "completed")
    completed = list(client.evals.runs.list(an_eval.id, status="completed", limit=1))
    assert jsonl_run.id in [r.id for r in completed]
    assert all(r.status == "completed" for r in completed)
    every = [r.id for r in client.evals.runs.list(an_eval.id, order="desc")]
    assert every.index(slow.id) < every.index(jsonl_run.id)
    deleted = client.evals.runs.delete(slow.id, eval_id=an_eval.id)
    assert deleted.deleted is True and deleted.run_id == slow.id
    with pytest.raises(openai.NotFoundError):
        client.evals.runs.retrieve(slow.id, eval_id=an_eval.id)
    assert client.files.delete(upload.id).deleted is True
    assert upload.id not in [f.id for f in client.files.list()]


def test_evals_update_list_and_delete(deployment: Deployment) -> None:
    client = deployment.client
    made = [
        client.evals.create(
            name=f"paged {n}",
            data_source_config={"type": "custom", "item_schema": {"type": "object"}},
            testing_criteria=[CRITERIA[0]],
        )
        for n in range(3)
    ]
    updated = client.evals.update(made[0].id, name="renamed", metadata={"k": "v"})
    assert updated.name == "renamed" and updated.metadata == {"k": "v"}
    assert client.evals.retrieve(made[0].id).name == "renamed"
    pages = list(client.evals.list(limit=2).iter_pages())  # the SDK follows `after` itself
    assert all(len(p.data) <= 2 for p in pages) and len(pages) >= 2
    listed = [e.id for p in pages for e in p.data]
    assert [m.id for m in made] == [i for i in listed if i in {m.id for m in made}]
    newest = client.evals.list(order="desc", limit=1).data[0]
    assert newest.id == made[-1].id
    for ev in made:
        assert client.evals.delete(ev.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.evals.retrieve(made[0].id)


def test_errors_come_in_openais_envelope(deployment: Deployment, an_eval: Any) -> None:
    client = deployment.client
    with pytest.raises(openai.NotFoundError) as missing:
        client.evals.retrieve("eval_0123456789abcdef0123456789abcdef")
    assert missing.value.body["type"] == "invalid_request_error" and "not found" in missing.value.message
    with pytest.raises(openai.BadRequestError) as logs:
        client.evals.create(data_source_config={"type": "logs"}, testing_criteria=[CRITERIA[0]])
    assert logs.value.body["param"] == "data_source_config.type"
    with pytest.raises(openai.BadRequestError) as python:
        client.evals.create(
            data_source_config={"type": "custom", "item_schema": {}},
            testing_criteria=[{"type": "python", "name": "code", "source": "def grade(s, i): return 1"}],
        )
    assert (
        python.value.body["param"] == "testing_criteria[0].type" and "decision 0018" in python.value.message
    )
    with pytest.raises(openai.BadRequestError) as template:
        client.evals.create(
            data_source_config={"type": "custom", "item_schema": {}},
            testing_criteria=[{**CRITERIA[0], "input": "{{ sample.output_text | upper }}"}],
        )
    assert template.value.body["param"] == "testing_criteria[0].input"
    with pytest.raises(openai.BadRequestError) as empty:
        client.evals.runs.create(
            an_eval.id, data_source={"type": "jsonl", "source": {"type": "file_content", "content": []}}
        )
    assert empty.value.body["param"] == "data_source.source.content"
    with pytest.raises(openai.AuthenticationError) as bad_key:
        openai.OpenAI(base_url=client.base_url, api_key="ask_wrong", max_retries=0).evals.list()
    assert bad_key.value.body["code"] == "invalid_api_key"
    unknown = requests.get(
        f"{deployment.stack.url}/openai/v1/assistants", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"


def test_another_tenants_ids_are_not_found(deployment: Deployment, an_eval: Any, jsonl_run: Any) -> None:
    stack = deployment.stack
    # A second tenant, the way the stack bootstraps its own (the one bootstrap path).
    stack._require(stack._runtime, "runtime").call(
        "assay_service.bootstrap.bootstrap_tenant",
        {"slug": "openai-other", "owner_key": OTHER},
        stack.shared_function_env(),
        timeout_s=60,
    )
    other = openai.OpenAI(base_url=deployment.client.base_url, api_key=OTHER, max_retries=0)
    for call in (
        lambda: other.evals.retrieve(an_eval.id),
        lambda: other.evals.runs.retrieve(jsonl_run.id, eval_id=an_eval.id),
        lambda: other.evals.runs.output_items.list(jsonl_run.id, eval_id=an_eval.id),
        lambda: other.files.content(jsonl_run.data_source.source.id),
        lambda: other.evals.delete(an_eval.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert [e.id for e in other.evals.list()] == []
    assert deployment.client.evals.retrieve(an_eval.id).id == an_eval.id  # untouched


def test_the_readmes_snippet_works_as_written(deployment: Deployment) -> None:
    """README "Coming from OpenAI Evals": its code, pointed at this stack, makes a passing run."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Coming from OpenAI Evals", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace("http://127.0.0.1:3000", deployment.stack.url).replace(
        "ask_local_dev_key_change_me", KEY
    )
    scope: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 — the repository's own README
    run = deployment.wait(scope["ev"].id, scope["run"].id)
    assert run.status == "completed" and run.result_counts.passed == 1


def test_another_method_on_a_known_path_is_a_405_naming_the_paths_methods(deployment: Deployment) -> None:
    answer = requests.put(
        f"{deployment.stack.url}/openai/v1/evals", headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, POST"
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_saved_history_imports_with_its_results(deployment: Deployment, an_eval: Any, jsonl_run: Any) -> None:
    """An eval, a run and its output items as the API returned them (saved JSON) come back
    as an imported eval and run whose results are the saved ones — through the engine, with
    no grader or model called again — and python graders are kept as history."""
    client = deployment.client
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {KEY}"
    base = f"{deployment.stack.url}/openai/v1"
    saved_eval = client.evals.retrieve(an_eval.id).model_dump(mode="json", by_alias=True)
    saved_eval["testing_criteria"].append(
        {"type": "python", "name": "Custom", "source": "def grade(s, i): ..."}
    )
    saved_run = client.evals.runs.retrieve(jsonl_run.id, eval_id=an_eval.id).model_dump(
        mode="json", by_alias=True
    )
    saved_items = [
        i.model_dump(mode="json", by_alias=True)
        for i in client.evals.runs.output_items.list(jsonl_run.id, eval_id=an_eval.id, limit=100)
    ]
    for item in saved_items:  # the python grader's results, as OpenAI would have saved them
        item["results"].append(
            {"name": "Custom", "type": "python", "score": 0.5, "passed": True, "sample": None}
        )
    calls_before = deployment.model.calls
    imported = http.post(f"{base}/imports/evals", json=saved_eval, timeout=60)
    assert imported.status_code == 200, imported.text
    new_eval = imported.json()
    assert new_eval["imported_from"] == an_eval.id and new_eval["created_at"] == saved_eval["created_at"]
    assert [c["name"] for c in new_eval["testing_criteria"]] == ["Exact answer", "Tone", "Quality", "Custom"]
    lines = b"".join(json.dumps(i).encode() + b"\n" for i in saved_items)
    files = [client.files.create(file=("items.jsonl", lines), purpose="evals").id]
    made = http.post(
        f"{base}/imports/evals/{new_eval['id']}/runs",
        json={"run": saved_run, "output_item_files": files},
        timeout=60,
    )
    assert made.status_code == 200, made.text
    run = deployment.wait(new_eval["id"], made.json()["id"])
    assert run.status == "completed" and run.created_at == saved_run["created_at"]
    assert run.result_counts.model_dump() == jsonl_run.result_counts.model_dump()
    by_name = {r.testing_criteria: (r.passed, r.failed) for r in run.per_testing_criteria_results}
    assert by_name["Custom"] == (ITEMS, 0)
    assert {k: v for k, v in by_name.items() if k != "Custom"} == {
        r.testing_criteria: (r.passed, r.failed) for r in jsonl_run.per_testing_criteria_results
    }
    replayed = list(client.evals.runs.output_items.list(run.id, eval_id=new_eval["id"], limit=100))
    assert [(i.datasource_item, i.status) for i in replayed] == [
        (i["datasource_item"], i["status"]) for i in saved_items
    ]
    assert [[(r.name, r.score, r.passed) for r in i.results] for i in replayed] == [
        [(r["name"], r["score"], r["passed"]) for r in i["results"]] for i in saved_items
    ]
    assert deployment.model.calls == calls_before  # nothing graded or generated again
    with pytest.raises(openai.BadRequestError) as history_only:
        client.evals.runs.create(
            new_eval["id"],
            data_source={"type": "jsonl", "source": {"type": "file_content", "content": rows(2)}},
        )
    assert "python" in history_only.value.message


def test_a_cosine_text_similarity_grader_scores_through_the_embeddings_endpoint(
    deployment: Deployment,
) -> None:
    """text_similarity with evaluation_metric "cosine": the deployment's OpenAI-compatible
    endpoint embeds both texts (/v1/embeddings, the default text-embedding-3-small); a sample
    repeating its reference scores 1, unrelated text scores the vectors' cosine."""
    from tests.support.judge_server import hashed_embedding

    client = deployment.client
    references = [
        "The sky is blue today",
        "Paris is the capital of France",
        "Water boils at one hundred degrees",
    ]
    unrelated = ["Bananas ripen quickly in summer", "My keyboard lost two keys", "Trains leave at noon sharp"]
    items = [
        {
            "item": {"reference": ref},
            "sample": {"output_text": ref if i % 2 == 0 else unrelated[i // 2], "model": "logged"},
        }
        for i, ref in enumerate(r for r in references for _ in range(2))
    ]
    ev = client.evals.create(
        name="cosine",
        data_source_config={
            "type": "custom",
            "item_schema": {"type": "object", "properties": {"reference": {"type": "string"}}},
            "include_sample_schema": True,
        },
        testing_criteria=[
            {
                "type": "text_similarity",
                "name": "Similar",
                "input": "{{sample.output_text}}",
                "reference": "{{item.reference}}",
                "evaluation_metric": "cosine",
                "pass_threshold": 0.9,
            }
        ],
    )
    assert ev.testing_criteria[0].evaluation_metric == "cosine"
    run = client.evals.runs.create(
        ev.id, data_source={"type": "jsonl", "source": {"type": "file_content", "content": items}}
    )
    run = deployment.wait(ev.id, run.id)
    assert run.status == "completed", run.error
    assert run.result_counts.model_dump() == {"total": 6, "errored": 0, "passed": 3, "failed": 3}
    by_name = {r.testing_criteria: (r.passed, r.failed) for r in run.per_testing_criteria_results}
    assert by_name == {"Similar": (3, 3)}
    out = list(client.evals.runs.output_items.list(run.id, eval_id=ev.id))
    assert [o.datasource_item_id for o in out] == list(range(6))
    for o in out:
        i = o.datasource_item_id
        [result] = o.results
        sample, reference = items[i]["sample"]["output_text"], items[i]["item"]["reference"]
        a, b = hashed_embedding(sample), hashed_embedding(reference)
        expected = sum(x * y for x, y in zip(a, b, strict=True))  # both normalized
        assert result.score == pytest.approx(max(0.0, min(1.0, expected)), abs=1e-9)
        if i % 2 == 0:
            assert result.score == pytest.approx(1.0) and result.passed is True and o.status == "pass"
        else:
            assert result.score < 0.9 and result.passed is False and o.status == "fail"
    (usage,) = run.per_model_usage
    assert usage.run_model_name == "text-embedding-3-small" and usage.invocation_count == 6
    assert usage.completion_tokens == 0 and usage.prompt_tokens == usage.total_tokens > 0


def test_report_url_opens_a_page_and_a_tampered_or_expired_link_does_not(
    deployment: Deployment, an_eval: Any
) -> None:
    """``report_url`` is a real page, opened without the API key (a browser sends none): a
    signed link valid for 15 minutes, static HTML under a strict CSP, the run's text escaped."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    client = deployment.client
    hostile = '<script>alert("x")</script>'
    content = [{"item": {"expected": "1", "question": hostile}, "sample": {"output_text": f"2 {hostile}"}}]
    run = client.evals.runs.create(
        an_eval.id,
        name=f"run {hostile}",
        data_source={"type": "jsonl", "source": {"type": "file_content", "content": content}},
    )
    run = deployment.wait(an_eval.id, run.id)
    page = requests.get(run.report_url, timeout=30)  # no Authorization header
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert "Failing items (first 1)" in page.text and "Exact answer" in page.text
    url = urlsplit(run.report_url)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    base = f"{url.scheme}://{url.netloc}{url.path}"
    tampered = {**query, "signature": ("0" if query["signature"][0] != "0" else "1") + query["signature"][1:]}
    longer = {**query, "expires": str(int(query["expires"]) + 86_400)}
    expired = {**query, "expires": "1"}
    other_run = base.replace(url.path.rsplit("/", 1)[1], "0" * 32)
    for target in (
        f"{base}?{urlencode(tampered)}",
        f"{base}?{urlencode(longer)}",
        f"{base}?{urlencode(expired)}",
        f"{other_run}?{url.query}",
    ):
        refused = requests.get(target, timeout=30)
        assert refused.status_code == 403, (target, refused.text)
        assert "expired" in refused.json()["error"]["message"]


def test_a_responses_run_generates_like_a_completions_run(deployment: Deployment, an_eval: Any) -> None:
    """``responses`` runs sample through the same generation (chat; no tools): the run
    object keeps the data source as given, strict validation on."""
    client = deployment.client
    run = client.evals.runs.create(
        an_eval.id,
        name="responses",
        data_source={
            "type": "responses",
            "model": "gpt-4o-mini",
            "input_messages": {
                "type": "template",
                "template": [{"role": "user", "content": "{{item.question}}"}],
            },
            "sampling_params": {"temperature": 0, "seed": 1},
            "source": {"type": "file_content", "content": [{"item": r["item"]} for r in rows(3)]},
        },
    )
    run = deployment.wait(an_eval.id, run.id)
    assert run.status == "completed" and run.data_source.type == "responses"
    assert run.result_counts.total == 3 and run.result_counts.errored == 0
    outputs = [
        i.sample.output[0].content for i in client.evals.runs.output_items.list(run.id, eval_id=an_eval.id)
    ]
    assert outputs == ["0", "1", "2"]
