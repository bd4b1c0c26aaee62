"""GET /v1/eval-runs/{id}/compare: real runs (every workflow handler real, in-process)."""

from __future__ import annotations

import uuid

import pytest

from tests.functional.factories import completed_run, create_dataset, eval_version
from tests.functional.harness import OTHER_TENANT_KEY, api_event

N = 60
GOOD = [{"id": f"q{i}", "output": f"answer {i}", "golden_answer": f"answer {i}"} for i in range(N)]
# The same records, a third of them now wrong: exact match and contains drop on 20 records.
WORSE = [dict(r, output="I don't know") if i % 3 == 0 else r for i, r in enumerate(GOOD)]


@pytest.fixture(scope="module")
def runs(stack):
    return {
        "good": completed_run(stack, records=GOOD, batch_size=25),
        "good_again": completed_run(stack, records=GOOD, batch_size=7),
        "worse": completed_run(stack, records=WORSE, batch_size=25),
    }


def compare(stack, run_id, baseline, key=None, **query):
    event = api_event(
        "compare_runs", path_id=run_id, query={"baseline": baseline, **query}, **({"key": key} if key else {})
    )
    return stack.call("GetRunFunction", event)


def test_a_known_regression_is_reported_with_its_records(stack, runs):
    status, body, _ = compare(stack, runs["worse"]["id"], runs["good"]["id"], limit="5")
    assert status == 200, body
    assert body["verdict"] == "regressed" and body["confidence_level"] == 0.95
    assert body["run_id"] == runs["worse"]["id"] and body["baseline_run_id"] == runs["good"]["id"]
    by = {m["metric_name"]: m for m in body["metrics"]}
    exact = by["exact"]
    assert (exact["paired_count"], exact["regressed"], exact["improved"]) == (N, 20, 0)
    assert exact["mean_delta"] == pytest.approx(-1 / 3) and exact["significant"]
    assert exact["ci_high"] < 0 and exact["p_value"] < 1e-5
    assert exact["run"]["count"] == exact["baseline"]["count"] == N
    assert exact["pass_rate_delta"] == pytest.approx(-1 / 3)
    assert len(body["regressions"]) == 5 and body["improvements"] == []
    first = body["regressions"][0]
    assert first["delta"] < 0 and first["baseline_is_passed"] and not first["is_passed"]
    assert body["unmatched"] == {"run_only": 0, "baseline_only": 0}
    # The other direction is an improvement.
    _, back, _ = compare(stack, runs["good"]["id"], runs["worse"]["id"])
    assert back["verdict"] == "improved" and back["regressions"] == []


def test_identical_runs_show_no_significant_change(stack, runs):
    status, body, _ = compare(stack, runs["good_again"]["id"], runs["good"]["id"], confidence="0.99")
    assert status == 200 and body["verdict"] == "no_significant_change"
    assert body["confidence_level"] == 0.99 and "p < 0.01" in body["method"]
    for m in body["metrics"]:
        assert m["mean_delta"] == 0 and not m["significant"] and m["paired_count"] == N
    assert body["regressions"] == body["improvements"] == []


def test_another_tenants_or_a_missing_run_is_the_same_404(stack, runs):
    # A run of the other tenant, to use as the baseline of this tenant's run.
    _, ds, _ = stack.call("DatasetsFunction", api_event("create_dataset", key=OTHER_TENANT_KEY))
    stack.call(
        "DatasetsFunction",
        api_event(
            "create_dataset_version", path_id=ds["id"], key=OTHER_TENANT_KEY, body={"records": GOOD[:3]}
        ),
    )
    _, ev, _ = stack.call("EvalsFunction", api_event("create_eval", key=OTHER_TENANT_KEY))
    _, version, _ = stack.call(
        "EvalsFunction", api_event("create_eval_version", path_id=ev["id"], key=OTHER_TENANT_KEY)
    )
    status, theirs, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run", path_id=ds["id"], key=OTHER_TENANT_KEY, body={"eval_version_id": version["id"]}
        ),
    )
    assert status == 202, theirs
    mine = runs["good"]["id"]
    missing = compare(stack, mine, str(uuid.uuid4()))
    for status, body, _ in (
        missing,
        compare(stack, mine, theirs["id"]),  # foreign baseline
        compare(stack, mine, runs["worse"]["id"], key=OTHER_TENANT_KEY),  # foreign run
        compare(stack, theirs["id"], mine),  # foreign run
        compare(stack, str(uuid.uuid4()), mine),
    ):
        assert status == 404 and body["code"] == "resource.not_found"
        assert body == missing[1]  # byte-identical bodies (same request id in the sample)


def test_an_unfinished_run_is_409(stack, runs):
    dataset_id = create_dataset(stack, records=GOOD)
    _, pending, _ = stack.call(
        "ScheduleRunFunction",
        api_event("schedule_run", path_id=dataset_id, body={"eval_version_id": eval_version(stack)["id"]}),
    )
    for run_id, baseline in ((pending["id"], runs["good"]["id"]), (runs["good"]["id"], pending["id"])):
        status, body, _ = compare(stack, run_id, baseline)
        assert status == 409 and body["code"] == "resource.conflict", body
        assert body["details"] == {"run_id": pending["id"], "status": "pending"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"baseline": "not-a-uuid"}, "query.baseline"),
        ({}, "query.baseline"),
        ({"confidence": "0.5"}, "query.confidence"),
        ({"confidence": "1"}, "query.confidence"),
        ({"limit": "0"}, "query.limit"),
        ({"limit": "101"}, "query.limit"),
    ],
)
def test_bad_baseline_or_options_are_400(stack, runs, query, field):
    params = {"baseline": runs["good"]["id"], **query}
    if not query:
        del params["baseline"]
    status, body, _ = stack.call(
        "GetRunFunction", api_event("compare_runs", path_id=runs["worse"]["id"], query=params)
    )
    assert status == 400 and body["code"] == "validation.invalid_request", body
    assert field in body["error"]


def test_run_details_carry_the_aws_cost_estimate_beside_the_judge_cost(stack, runs):
    from assay_service.domain.cost import estimated_aws_cost

    status, run, _ = stack.call("GetRunFunction", api_event("get_run", path_id=runs["good"]["id"]))
    assert status == 200 and run["total_cost"] == 0
    # 60 records × 4 metrics of the sample eval version, batches of 25.
    assert run["estimated_aws_cost"] == estimated_aws_cost(N, 4, 25) > 0
