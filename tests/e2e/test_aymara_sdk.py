"""Aymara's official Python SDK (``aymara-ai-sdk``, pinned in pyproject.toml) against the
embedded local stack, strict response validation on: every read the compatibility view
serves — ``client.evals.runs.list``/``get``/``list_responses`` and
``client.evals.list``/``get`` — parses, pages by offset, and is scoped to the caller's
tenant (and to ``workspace_uuid``, a project). The SDK authenticates with ``x-api-key``
alone: every call here proves Assay accepts it.

The SDK's own offset paginator (``SyncOffsetPage`` in 1.2.1) never asks for a second page
— it compares ``count + len(items) < count`` — so its auto-pagination is exercised twice:
as shipped (one page: pinned, so an SDK upgrade that fixes it shows up here), and through
the SDK's paging machinery (``get_api_list``, ``iter_pages``, ``get_next_page``) with the
next-offset rule an offset page needs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import aymara_ai
import pytest
from assay_local.stack import LocalStack
from aymara_ai import AymaraAI
from aymara_ai._base_client import PageInfo
from aymara_ai.pagination import SyncOffsetPage
from aymara_ai.types.evals.scored_response import ScoredResponse

from tests.contracts import aymara, trulayer
from tests.e2e.runs import Api

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
KEY = "ask_aymara-sdk-owner-key-0123456789ab"
OTHER_KEY = "ask_aymara-sdk-other-tenant-key-01234"
RECORDS = 23  # batches of 4: the last one short; pages of 10 cross batch boundaries
PAGE = 10
METRICS = [
    {"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 1},
    {"name": "mentions", "scorer": "contains", "args": {}, "threshold": 1},
]
T = TypeVar("T")


def records() -> list[dict[str, Any]]:
    """Every third record fails ``exact`` (and ``mentions``): r0, r3, r6, …"""
    return [
        {"id": f"r{i}", "input": f"q{i}", "output": "Paris" if i % 3 else "Lyon", "golden_answer": "Paris"}
        for i in range(RECORDS)
    ]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(port=0, bootstrap_key=KEY) as local:
        yield local


def client(stack: LocalStack, key: str = KEY) -> AymaraAI:
    return AymaraAI(base_url=stack.url, api_key=key, _strict_response_validation=True, max_retries=0)


def second_tenant(stack: LocalStack, state: Path) -> None:
    """Another tenant, through the bootstrap command (as tests/e2e/test_hostile_tenant.py)."""
    state.write_text(
        json.dumps(
            {"url": stack.url, "aws_env": stack.aws_env(), "function_env": stack.shared_function_env()}
        )
    )
    command = [sys.executable, "-m", "assay_local", "bootstrap", "--local", "--tenant", "aymara-other"]
    out = subprocess.run(
        [*command, "--key", OTHER_KEY, "--state-file", str(state)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


@pytest.fixture(scope="module")
def world(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A completed run of RECORDS records (two metrics, batches of 4) of an eval with a
    description; an eval without a version in a second project; a second tenant."""
    api = Api(stack, KEY)
    dataset = api.call("POST", "/v1/datasets", json={"name": "aymara-sdk"}).json()["id"]
    version = api.call("POST", f"/v1/datasets/{dataset}/versions", json={"records": records()})
    assert version.status_code == 201, version.text
    ev = api.call(
        "POST",
        "/v1/evals",
        json={"name": "capitals", "description": "A geography bot", "metrics": METRICS, "threshold": 0.5},
    )
    assert ev.status_code == 201, ev.text
    ev_body = ev.json()
    run = api.schedule(dataset, ev_body["version"]["id"], batch_size=4, name="sdk run")
    project = api.call("POST", "/v1/projects", json={"name": "elsewhere"}).json()["id"]
    draft = api.call("POST", "/v1/evals", json={"name": "draft", "project_id": project}).json()
    second_tenant(stack, tmp_path_factory.mktemp("aymara") / "state.json")
    done = api.wait(run["id"], {"completed", "failed", "cancelled"})
    assert done["status"] == "completed", done
    evaluations = api.call("GET", f"/v1/eval-runs/{run['id']}/evaluations", params={"limit": "1000"}).json()
    return {
        "api": api,
        "run": done,
        "eval": ev_body,
        "draft": draft,
        "project": project,
        "evaluations": evaluations["items"],
    }


# ------------------------------------------------------------------ eval runs
def test_runs_list_parses_strictly_and_filters(stack, world):
    sdk = client(stack)
    page = sdk.evals.runs.list(eval_uuid=world["eval"]["id"])
    assert page.count == 1 and [r.eval_run_uuid for r in page.items] == [world["run"]["id"]]
    assert page.items[0].status == "finished" and page.items[0].responses is None
    assert sdk.evals.runs.list(workspace_uuid=world["project"]).count == 0


def test_run_get_maps_the_run(stack, world):
    sdk, run = client(stack), world["run"]
    got = sdk.evals.runs.get(run["id"])
    assert got.eval_run_uuid == run["id"] and got.eval_uuid == world["eval"]["id"]
    assert got.name == "sdk run" and got.status == "finished"
    assert got.num_prompts == got.num_responses_scored == RECORDS
    assert got.pass_rate == pytest.approx(run["pass_rate"])
    assert got.workspace_uuid == run["project_id"] and got.ai_description == "A geography bot"
    assert got.evaluation is not None and got.evaluation.name == "capitals"
    assert got.responses is None  # list_responses pages them; include_responses fills 100
    raw = sdk.evals.runs.with_raw_response.get(run["id"]).http_response.json()
    trulayer.validate(raw, aymara.EVAL_RUN)  # the seed's transcribed schema too
    assert sdk.evals.runs.get(run["id"], workspace_uuid=run["project_id"]).eval_run_uuid == run["id"]
    full = sdk.evals.runs.get(run["id"], extra_query={"include_responses": "true"})
    assert full.responses is not None and len(full.responses) == RECORDS


def expected_responses(world: dict[str, Any]) -> list[tuple[str, bool]]:
    """(record id, passed every metric) per record, from the native evaluations."""
    passed: dict[int, tuple[str, bool]] = {}
    for e in world["evaluations"]:
        index = e["record_index"]
        previous = passed.get(index, (e["record_id"], True))[1]
        passed[index] = (e["record_id"], previous and e["is_passed"])
    return [passed[i] for i in sorted(passed)]


def test_list_responses_pages_by_offset(stack, world):
    sdk, run_id = client(stack), world["run"]["id"]
    seen: list[ScoredResponse] = []
    for offset in range(0, RECORDS, PAGE):
        page = sdk.evals.runs.list_responses(run_id, limit=PAGE, offset=offset)
        assert page.count == RECORDS and len(page.items) == min(PAGE, RECORDS - offset)
        seen += page.items
    assert [(r.response_uuid, r.is_passed) for r in seen] == expected_responses(world)
    assert seen[0].explanation is not None and seen[0].explanation.startswith("exact:")
    assert seen[1].content == "Paris" and seen[1].content_type == "text" and seen[1].ai_refused is False
    assert all(r.prompt_uuid and r.turn_number == 1 for r in seen)
    assert len({r.prompt_uuid for r in seen}) == RECORDS
    past = sdk.evals.runs.list_responses(run_id, limit=PAGE, offset=RECORDS)
    assert past.items == [] and past.count == RECORDS
    # The run's embedded responses are the same responses.
    full = sdk.evals.runs.get(run_id, extra_query={"include_responses": "true"})
    assert full.responses == seen


def test_the_sdks_own_auto_pagination_as_shipped_stops_after_one_page(stack, world):
    """aymara-ai-sdk 1.2.1's SyncOffsetPage asks for a next page when ``count + len(items) <
    count``, which never holds: iterating a list yields its first page only, whatever the
    server answers. When this fails, the SDK was fixed: iterate it directly instead of
    ``OffsetPage`` below."""
    assert aymara_ai.__version__ == "1.2.1"
    first = client(stack).evals.runs.list_responses(world["run"]["id"], limit=PAGE)
    assert first.count == RECORDS > PAGE and not first.has_next_page()
    assert [r.response_uuid for r in first] == [r for r, _ in expected_responses(world)][:PAGE]


class OffsetPage(SyncOffsetPage[T]):
    """The SDK's offset page with the next-offset rule it should have: the request's offset
    plus the items read, while that is below ``count``."""

    def next_page_info(self) -> PageInfo | None:
        params = self._options.params if isinstance(self._options.params, dict) else {}
        read = int(params.get("offset", 0)) + len(self._get_page_items())
        return PageInfo(params={"offset": read}) if self.count is not None and read < self.count else None


def test_auto_pagination_through_the_sdks_paging_helpers(stack, world):
    sdk, run_id = client(stack), world["run"]["id"]
    first = sdk.get_api_list(
        f"/v2/eval-runs/{run_id}/responses",
        model=ScoredResponse,
        page=OffsetPage[ScoredResponse],
        options={"params": {"limit": PAGE}},
    )
    pages = list(first.iter_pages())
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert [r.response_uuid for r in first] == [r for r, _ in expected_responses(world)]


# ------------------------------------------------------------------ evals
def test_eval_get_describes_the_latest_version(stack, world):
    sdk, ev = client(stack), world["eval"]
    got = sdk.evals.get(ev["id"])
    assert got.eval_uuid == ev["id"] and got.name == "capitals" and got.ai_description == "A geography bot"
    assert got.status == "finished" and got.eval_type == "accuracy" and got.modality == "text"
    assert got.workspace_uuid == ev["project_id"] and got.num_prompts is None and got.created_by is None
    assert got.eval_instructions is not None
    assert "version 1" in got.eval_instructions and "at least 0.5" in got.eval_instructions
    assert "exact (exact_match, threshold 1)" in got.eval_instructions
    assert "mentions (contains, threshold 1)" in got.eval_instructions
    draft = sdk.evals.get(world["draft"]["id"])
    assert draft.status == "created" and draft.eval_instructions is None and draft.ai_description == ""


def test_evals_list_pages_by_offset_and_filters_by_workspace(stack, world):
    sdk = client(stack)
    every = sdk.evals.list()
    assert every.count == len(every.items) == 2
    assert [e.name for e in every.items] == ["draft", "capitals"]  # newest first
    paged = [sdk.evals.list(limit=1, offset=offset) for offset in range(3)]
    assert [p.count for p in paged] == [2, 2, 2]
    assert [[e.eval_uuid for e in p.items] for p in paged] == [
        [every.items[0].eval_uuid],
        [every.items[1].eval_uuid],
        [],
    ]
    only = sdk.evals.list(workspace_uuid=world["project"])
    assert only.count == 1 and [e.eval_uuid for e in only.items] == [world["draft"]["id"]]


# ------------------------------------------------------------------ scoping and errors
def test_another_tenant_sees_nothing(stack, world):
    other = client(stack, OTHER_KEY)
    run_id, eval_id = world["run"]["id"], world["eval"]["id"]
    for read in (
        lambda: other.evals.runs.get(run_id),
        lambda: other.evals.runs.list_responses(run_id),
        lambda: other.evals.get(eval_id),
    ):
        with pytest.raises(aymara_ai.NotFoundError) as caught:
            read()
        assert caught.value.body["code"] == "resource.not_found"  # type: ignore[index]
    assert other.evals.list().count == 0 and other.evals.runs.list().count == 0


def test_another_workspace_is_a_404(stack, world):
    sdk, elsewhere = client(stack), world["project"]
    with pytest.raises(aymara_ai.NotFoundError):
        sdk.evals.runs.get(world["run"]["id"], workspace_uuid=elsewhere)
    with pytest.raises(aymara_ai.NotFoundError):
        sdk.evals.runs.list_responses(world["run"]["id"], workspace_uuid=elsewhere)
    with pytest.raises(aymara_ai.NotFoundError):
        sdk.evals.get(world["eval"]["id"], workspace_uuid=elsewhere)


@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda sdk, run: sdk.evals.runs.get("not-a-uuid"), "path.eval_run_uuid"),
        (lambda sdk, run: sdk.evals.runs.list_responses("not-a-uuid"), "path.eval_run_uuid"),
        (lambda sdk, run: sdk.evals.get("not-a-uuid"), "path.eval_uuid"),
        (lambda sdk, run: sdk.evals.runs.list_responses(run, limit=0), "query.limit"),
        (lambda sdk, run: sdk.evals.runs.list_responses(run, limit=101), "query.limit"),
        (lambda sdk, run: sdk.evals.runs.list_responses(run, offset=-1), "query.offset"),
        (lambda sdk, run: sdk.evals.list(limit=0), "query.limit"),
        (lambda sdk, run: sdk.evals.list(offset=100_001), "query.offset"),
        (lambda sdk, run: sdk.evals.list(workspace_uuid="nope"), "query.workspace_uuid"),
    ],
)
def test_bad_ids_and_paging_values_are_400s_in_the_envelope(stack, world, call, where):
    with pytest.raises(aymara_ai.BadRequestError) as caught:
        call(client(stack), world["run"]["id"])
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "validation.invalid_request"
    assert body["error"].startswith(where), body


def test_a_bad_key_is_a_401(stack, world):
    with pytest.raises(aymara_ai.AuthenticationError):
        client(stack, "ask_not-a-real-key-0123456789abcdef").evals.list()
