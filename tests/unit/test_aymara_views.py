"""The Aymara views' own logic (services/compat.py): a record's evaluations as one response,
offset paging over a run's batches that reads only what the page spans, tenant and workspace
scoping, and the eval list's count, window and filter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from assay_service.errors import NotFoundError
from assay_service.models.api import CreateEvalRequest, CreateProjectRequest
from assay_service.models.domain import Principal, Run
from assay_service.services import catalog, compat

from tests.support import fakes
from tests.support.factories import a_run

ports_fixture = fakes.ports_fixture
METRICS = ("exact", "mentions")


def principal(tenant_id: uuid.UUID | None = None) -> Principal:
    return Principal(tenant_id=tenant_id or uuid.uuid4(), key_id=uuid.uuid4(), role="viewer")


def batch(index: int, size: int, records: int, *, failing: frozenset[int] = frozenset()) -> dict[str, Any]:
    """Batch ``index`` as the store holds it: its records, and per record one evaluation per
    metric; a record in ``failing`` fails ``mentions``."""
    indexes = range(index * size, min((index + 1) * size, records))
    rows = [{"id": f"r{i}", "trace_id": str(uuid.uuid4()), "output": f"answer {i}"} for i in indexes]
    evaluations = [
        {
            "record_index": i,
            "record_id": f"r{i}",
            "trace_id": rows[i - index * size]["trace_id"],
            "metric_name": metric,
            "is_passed": not (metric == "mentions" and i in failing),
            "reasoning": f"{metric} of r{i}",
            "error_message": None,
            "confidence": None,
            "eval_metadata": None,
        }
        for i in indexes
        for metric in METRICS
    ]
    return {"batch": index, "parts": 1, "records": rows, "evaluations": evaluations}


class Runs:
    """The runs port as far as the views use it, recording which batches were read."""

    def __init__(self, run: Run, batches: dict[int, dict[str, Any]]) -> None:
        self.run, self.batches, self.read = run, batches, []

    def get(self, tenant_id: uuid.UUID, run_id: uuid.UUID) -> Run | None:
        return self.run if (tenant_id, run_id) == (self.run.tenant_id, self.run.id) else None

    def iter_batches(self, run: Run, *, first: int = 0) -> Iterator[dict[str, Any]]:
        for index in sorted(self.batches):
            if index >= first:
                self.read.append(index)
                yield self.batches[index]


class Ports:
    def __init__(self, runs: Runs) -> None:
        self.runs = runs


def finished(records: int = 23, size: int = 4, missing: tuple[int, ...] = (), **fields: Any) -> Ports:
    """A run of ``records`` records in batches of ``size``, every batch recorded but
    ``missing``; its counters say so."""
    count = -(-records // size)
    batches = {
        i: batch(i, size, records, failing=frozenset({0, 5})) for i in range(count) if i not in missing
    }
    recorded = sum(len(b["records"]) for b in batches.values())
    run = a_run(
        item_count=records,
        batch_size=size,
        completed_count=recorded,
        status="completed" if not missing else "failed",
        **fields,
    )
    return Ports(Runs(run, batches))


def ids(responses: list[dict[str, Any]]) -> list[str]:
    return [r["response_uuid"] for r in responses]


def test_a_record_is_one_response_passing_only_if_every_metric_passed():
    responses = list(compat.batch_responses(batch(1, 4, 23, failing=frozenset({5}))))
    assert ids(responses) == ["r4", "r5", "r6", "r7"]
    r4, r5 = responses[0], responses[1]
    assert r4["is_passed"] is True and r4["explanation"] == "exact: exact of r4"
    assert r5["is_passed"] is False and r5["explanation"] == "mentions: mentions of r5"
    assert r5["content"] == "answer 5" and uuid.UUID(r5["prompt_uuid"])  # the record's trace id


def test_evaluations_in_any_order_still_give_responses_in_record_order():
    shuffled = batch(0, 4, 4)
    shuffled["evaluations"].reverse()
    assert ids(list(compat.batch_responses(shuffled))) == ["r0", "r1", "r2", "r3"]


def test_confidence_is_the_mean_of_the_judges_and_a_refusal_is_said():
    one = batch(0, 1, 1)
    one["evaluations"][0].update(confidence=0.5, eval_metadata={"ai_refused": True})
    one["evaluations"][1].update(confidence=1.0)
    (response,) = compat.batch_responses(one)
    assert response["confidence"] == 0.75 and response["ai_refused"] is True


def test_a_page_of_a_completed_run_reads_only_the_batches_it_spans():
    ports = finished()
    page = compat.response_page(ports.runs.run, offset=7, limit=5, ports=ports)  # type: ignore[arg-type]
    assert ids(page) == ["r7", "r8", "r9", "r10", "r11"]
    assert ports.runs.read == [1, 2]  # records 4–7 and 8–11: never batch 0, nor past 2


def test_the_last_page_is_short_and_past_the_end_is_empty():
    ports = finished()
    run = ports.runs.run
    assert ids(compat.response_page(run, offset=20, limit=10, ports=ports)) == ["r20", "r21", "r22"]  # type: ignore[arg-type]
    assert compat.response_page(run, offset=23, limit=10, ports=ports) == []  # type: ignore[arg-type]
    assert compat.response_page(run, offset=10_000, limit=10, ports=ports) == []  # type: ignore[arg-type]


def test_a_run_with_batches_missing_counts_its_recorded_records_from_the_first():
    """Batch 1 (r4–r7) was never recorded: the 5th recorded response is r9, found by
    counting batches 0 and 2, not by jumping to batch 1."""
    ports = finished(missing=(1,))
    run = ports.runs.run
    assert compat.recorded_records(run) == 19 < run.item_count
    page = compat.response_page(run, offset=5, limit=2, ports=ports)  # type: ignore[arg-type]
    assert ids(page) == ["r9", "r10"] and ports.runs.read == [0, 2]


def test_every_page_together_is_every_response_once():
    for missing in ((), (0,), (2, 5)):
        ports = finished(missing=missing)
        run = ports.runs.run
        pages = [
            compat.response_page(run, offset=o, limit=6, ports=ports)  # type: ignore[arg-type]
            for o in range(0, compat.recorded_records(run), 6)
        ]
        seen = [r for page in pages for r in ids(page)]
        expected = [r["id"] for i in sorted(ports.runs.batches) for r in ports.runs.batches[i]["records"]]
        assert seen == expected, missing


def test_responses_are_scoped_to_the_tenant_and_the_workspace():
    ports = finished()
    run = ports.runs.run
    owner = principal(run.tenant_id)
    body = compat.aymara_run_responses(owner, run.id, workspace_uuid=None, limit=3, offset=0, ports=ports)  # type: ignore[arg-type]
    assert body["count"] == 23 and ids(body["items"]) == ["r0", "r1", "r2"]
    same = compat.aymara_run_responses(
        owner, run.id, workspace_uuid=run.project_id, limit=1, offset=0, ports=ports
    )  # type: ignore[arg-type]
    assert same["count"] == 23
    with pytest.raises(NotFoundError):
        compat.aymara_run_responses(principal(), run.id, workspace_uuid=None, limit=3, offset=0, ports=ports)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        compat.aymara_run_responses(
            owner, run.id, workspace_uuid=uuid.uuid4(), limit=3, offset=0, ports=ports
        )  # type: ignore[arg-type]


# ------------------------------------------------------------------ evals
def make_evals(ports: fakes.Ports, who: Principal) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Five evals, newest last: 0, 2 and 4 in a second project; odd ones without a version.
    Returns (the second project, the eval ids newest first)."""
    project = catalog.create_project(who, CreateProjectRequest(name="elsewhere"), ports=ports).id
    made = []
    for i in range(5):
        body: dict[str, Any] = {"name": f"e{i}", **({"project_id": str(project)} if i % 2 == 0 else {})}
        if i % 2 == 0:
            body |= {
                "metrics": [{"name": "exact", "scorer": "exact_match", "threshold": 1}],
                "threshold": 0.7,
            }
        made.append(catalog.create_eval(who, CreateEvalRequest.model_validate(body), ports=ports)[0].id)
    listed = [e.id for e in catalog.list_evals(who, limit=100, cursor=None, ports=ports)[0]]
    assert sorted(listed) == sorted(made)
    return project, listed


def test_the_eval_list_counts_every_match_and_reads_versions_for_its_page_only(
    ports: fakes.Ports, monkeypatch: pytest.MonkeyPatch
):
    who = principal()
    project, newest_first = make_evals(ports, who)
    monkeypatch.setattr(compat, "AYMARA_EVALS_SCAN_PAGE", 2)  # three index pages
    asked: list[uuid.UUID] = []
    list_versions = ports.evals.list_versions
    monkeypatch.setattr(ports.evals, "list_versions", lambda t, e: asked.append(e) or list_versions(t, e))
    body = compat.aymara_evals(who, workspace_uuid=None, limit=2, offset=1, ports=ports)
    assert body["count"] == 5
    assert [e["eval_uuid"] for e in body["items"]] == [str(i) for i in newest_first[1:3]]
    with_versions = [e for e in newest_first[1:3] if ports.evals.get(who.tenant_id, e).version_count]
    assert asked == with_versions  # never an eval off the page, nor one without versions
    mine = compat.aymara_evals(who, workspace_uuid=project, limit=100, offset=0, ports=ports)
    assert mine["count"] == 3 and {e["name"] for e in mine["items"]} == {"e0", "e2", "e4"}
    assert compat.aymara_evals(who, workspace_uuid=project, limit=10, offset=3, ports=ports)["items"] == []
    assert (
        compat.aymara_evals(principal(), workspace_uuid=None, limit=10, offset=0, ports=ports)["count"] == 0
    )


def test_an_eval_is_described_by_its_latest_version(ports: fakes.Ports):
    who = principal()
    ev, _ = catalog.create_eval(
        who,
        CreateEvalRequest.model_validate(
            {"name": "e", "description": "bot", "metrics": [{"name": "exact", "scorer": "exact_match"}]}
        ),
        ports=ports,
    )
    from assay_service.models.api import CreateEvalVersionRequest

    catalog.create_eval_version(
        who,
        ev.id,
        CreateEvalVersionRequest.model_validate(
            {
                "threshold": 0.25,
                "metrics": [
                    {"name": "exact", "scorer": "exact_match", "threshold": 0.5},
                    {"name": "close", "scorer": "levenshtein", "threshold": 0.8},
                ],
            }
        ),
        ports=ports,
    )
    got = compat.aymara_get_eval(who, ev.id, workspace_uuid=None, ports=ports)
    assert got["status"] == "finished" and got["ai_description"] == "bot"
    assert got["eval_instructions"].startswith("Assay eval version 2:")
    assert "at least 0.25" in got["eval_instructions"]
    assert (
        "exact (exact_match, threshold 0.5); close (levenshtein, threshold 0.8)" in got["eval_instructions"]
    )
    assert got["updated_at"] >= got["created_at"]
    with pytest.raises(NotFoundError):
        compat.aymara_get_eval(principal(), ev.id, workspace_uuid=None, ports=ports)
    with pytest.raises(NotFoundError):
        compat.aymara_get_eval(who, ev.id, workspace_uuid=uuid.uuid4(), ports=ports)


def test_an_eval_without_a_version_is_created_with_no_instructions(ports: fakes.Ports):
    who = principal()
    ev, _ = catalog.create_eval(who, CreateEvalRequest.model_validate({"name": "draft"}), ports=ports)
    got = compat.aymara_get_eval(who, ev.id, workspace_uuid=ev.project_id, ports=ports)
    assert got["status"] == "created" and got["eval_instructions"] is None and got["ai_description"] == ""
    assert got["updated_at"] == got["created_at"] and got["num_prompts"] is None
