"""Offset and cursor walks over 260 runs return every run exactly once, newest first."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from assay_service import dependencies

from tests.functional.factories import RECORDS, create_dataset, eval_version
from tests.functional.harness import api_event, environment

N_RUNS = 260


@pytest.fixture(scope="module")
def many_runs(stack) -> list[str]:
    """One run scheduled through the handler, 259 more stored like it by the repository
    (scheduling each through moto's Step Functions would only slow the test down)."""
    dataset_id = create_dataset(stack, records=RECORDS)
    version = eval_version(stack)
    status, first, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": version["id"]}),
    )
    assert status == 202
    ids = [first["id"]]
    with environment(stack.env("ListRunsFunction")):
        template = dependencies.runs().get(uuid.UUID(first["tenant_id"]), uuid.UUID(first["id"]))
        for i in range(1, N_RUNS):
            now = template.created_at + timedelta(milliseconds=i)  # strictly newer each time
            run = template.model_copy(update={"id": uuid.uuid4(), "created_at": now, "updated_at": now})
            dependencies.runs().create(run, max_in_flight=10_000)
            ids.append(str(run.id))
    return ids


@pytest.mark.parametrize("limit", [25, 37, 100])
def test_cursor_walk_returns_every_run_once(stack, many_runs, limit):
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        status, page, _ = stack.call("ListRunsFunction", api_event("list_runs", query=query))
        assert status == 200, page
        seen += [r["id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    mine = [r for r in seen if r in set(many_runs)]
    assert mine == many_runs[::-1]  # exactly once each, newest first
    assert len(seen) == len(set(seen)) == page["count"]
    assert pages <= len(seen) // limit + 1


@pytest.mark.parametrize("limit", [50, 100])
def test_offset_walk_returns_every_run_once(stack, many_runs, limit):
    seen, offset, total = [], 0, None
    while total is None or offset < total:
        status, page, _ = stack.call(
            "ListRunsFunction", api_event("list_runs", query={"limit": str(limit), "offset": str(offset)})
        )
        assert status == 200
        total = page["count"]
        seen += [r["id"] for r in page["items"]]
        offset += limit
    assert len(seen) == len(set(seen)) == total
    assert [r for r in seen if r in set(many_runs)] == many_runs[::-1]
