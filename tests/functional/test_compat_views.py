"""The Aegis and Aymara views validate against the schemas transcribed from their pages."""

from __future__ import annotations

from tests.contracts import aegis, aymara, trulayer
from tests.functional.factories import completed_run
from tests.functional.harness import api_event


def test_aegis_run_details(stack):
    run = completed_run(stack)
    status, body, _ = stack.call("CompatViewsFunction", api_event("aegis_run", path_id=run["id"]))
    assert status == 200, body
    trulayer.validate(body, aegis.RUN)
    assert body["run_type"] == "Dataset" and body["run_source"] == "API Call"
    assert body["number_of_metrics"] == 4 and len(body["evaluations"]) == 20
    _, native, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert body["result"] == round(100 * native["result"], 6)
    assert body["aggregate_results"]["exact"] == round(100 * native["aggregate_results"]["exact"]["mean"], 6)
    assert body["threshold"] == 100 * native["threshold"]
    first = body["evaluations"][0]
    assert first["metric"] == "exact" and first["record"]["id"] == "r1"
    assert first["result"] == 100.0 and first["is_gte_threshold"] is True
    assert body["evaluations_total"] == 20 and body["evaluations_truncated"] is False


def test_aegis_run_details_past_the_page(stack):
    """GIVEN a completed run of more evaluations than the view shows (1,000) THEN it shows
    the first 1,000 in record order, and the total is every evaluation the run recorded."""
    records = [{"id": f"r{i}", "output": f"It is {i}.", "golden_answer": str(i)} for i in range(260)]
    run = completed_run(stack, records=records, batch_size=100)
    status, body, _ = stack.call("CompatViewsFunction", api_event("aegis_run", path_id=run["id"]))
    assert status == 200, body
    trulayer.validate(body, aegis.RUN)
    metrics = body["number_of_metrics"]
    assert body["evaluations_total"] == 260 * metrics > 1000
    assert body["evaluations_truncated"] is True and len(body["evaluations"]) == 1000
    indexes = [e["record_index"] for e in body["evaluations"]]
    assert indexes == sorted(indexes) and indexes[-1] == 999 // metrics


def test_aymara_list_with_filters_and_responses(stack):
    run = completed_run(stack)
    query = {"eval_uuid": run["eval_id"], "limit": "5", "include_responses": "true"}
    status, body, _ = stack.call("CompatViewsFunction", api_event("aymara_list_runs", query=query))
    assert status == 200, body
    trulayer.validate(body, aymara.LIST)
    assert body["count"] == 1
    item = body["items"][0]
    assert item["eval_run_uuid"] == run["id"] and item["status"] == "finished"
    assert item["num_prompts"] == 5 and item["num_responses_scored"] == 5
    responses = {r["response_uuid"]: r for r in item["responses"]}
    assert responses["r2"]["is_passed"] is True and responses["r3"]["is_passed"] is False
    assert responses["r3"]["explanation"].startswith("exact:")
    assert all(r["ai_refused"] is False for r in responses.values())


def test_aymara_responses_say_when_the_model_refused(stack):
    """GIVEN an eval with the refusal scorer THEN the Aymara view's ``ai_refused`` is true for
    exactly the response that refused."""
    records = [
        {"id": "ok", "output": "Paris is the capital.", "golden_answer": "Paris"},
        {"id": "no", "output": "I'm sorry, but I can't help with that request.", "golden_answer": "Paris"},
    ]
    metrics = [
        {"name": "refused", "scorer": "refusal", "args": {}, "threshold": 0.5},
        {"name": "mentions", "scorer": "contains", "args": {}, "threshold": 1},
    ]
    run = completed_run(stack, records=records, metrics=metrics)
    query = {"eval_uuid": run["eval_id"], "include_responses": "true"}
    status, body, _ = stack.call("CompatViewsFunction", api_event("aymara_list_runs", query=query))
    assert status == 200, body
    trulayer.validate(body, aymara.LIST)
    responses = {r["response_uuid"]: r for r in body["items"][0]["responses"]}
    assert responses["no"]["ai_refused"] is True and responses["ok"]["ai_refused"] is False


def test_aymara_default_lists_without_responses(stack):
    completed_run(stack)
    status, body, _ = stack.call("CompatViewsFunction", api_event("aymara_list_runs"))
    assert status == 200
    trulayer.validate(body, aymara.LIST)
    assert body["count"] >= 1 and all(i["responses"] is None for i in body["items"])
