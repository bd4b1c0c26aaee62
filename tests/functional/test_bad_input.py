"""Bad input to every route: a 4xx in the envelope naming what is wrong — never a 5xx."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from assay_service.domain.jsondoc import MAX_DEPTH, MAX_METADATA_CHARS, MAX_VALUE_DEPTH

from tests.functional.factories import completed_run, create_dataset, upload
from tests.functional.harness import EVENTS, OWNER_KEY, ROOT, ROUTES, api_event

WITH_ID = [n for n in ROUTES if "pathParameters" in json.loads((EVENTS / "api" / f"{n}.json").read_text())]
WITH_BODY = [n for n in ROUTES if "body" in json.loads((EVENTS / "api" / f"{n}.json").read_text())]


def test_every_sample_event_is_covered():
    # health and no_route (the catch-all) need no key: tests/functional/test_no_route.py
    samples = {p.stem for p in Path(EVENTS / "api").glob("*.json")} - {"health", "no_route"}
    assert samples == set(ROUTES)


def assert_envelope(status, body, expected_status, code=None):
    assert status == expected_status, body
    assert set(body) == {"error", "code", "details", "request_id"}
    assert body["error"] and (code is None or body["code"] == code)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_missing_or_wrong_key_is_401(stack, name):
    for key in (None, "ask_not-a-real-key-000000000000000000"):
        status, body, _ = stack.call(ROUTES[name], api_event(name, key=key))
        assert_envelope(status, body, 401, "auth.invalid_key")


@pytest.mark.parametrize("name", sorted(WITH_BODY))
def test_without_a_key_it_is_401_whatever_the_body_and_path(stack, name):
    """Who calls comes first: a caller without a key learns nothing of the request's
    validation (schema, field names) and costs no body parsing."""
    for extra in ({"raw_body": "{not json"}, {"raw_body": "[]" * 10, "path_id": "not-a-uuid"}):
        if "path_id" in extra and name not in WITH_ID:
            continue
        status, body, _ = stack.call(ROUTES[name], api_event(name, key=None, **extra))
        assert_envelope(status, body, 401, "auth.invalid_key")
    event = api_event(name, key=None)
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    status, body, _ = stack.call(ROUTES[name], event)
    assert_envelope(status, body, 401, "auth.invalid_key")


@pytest.mark.parametrize("name", sorted(WITH_ID))
def test_invalid_uuid_in_path_is_400_naming_the_field(stack, name):
    status, body, _ = stack.call(ROUTES[name], api_event(name, path_id="not-a-uuid"))
    assert_envelope(status, body, 400, "validation.invalid_request")
    assert "path." in body["error"]


@pytest.mark.parametrize("name", sorted(WITH_BODY))
@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("{not json", "malformed JSON"),
        ("[]", "body"),
        ('"text"', "body"),
        ("{}", "body"),
        ('{"unexpected_field": 1}', "body"),
    ],
)
def test_malformed_or_incomplete_bodies_are_400(stack, name, raw, needle):
    if raw == "{}" and name == "create_api_key":
        pytest.skip("every field of this body is optional: {} creates a member key")
    status, body, _ = stack.call(ROUTES[name], api_event(name, raw_body=raw))
    assert status == 400, body
    assert_envelope(status, body, 400)
    assert needle in body["error"]


@pytest.mark.parametrize(
    ("name", "query", "field"),
    [
        ("list_runs", {"limit": "0"}, "query.limit"),
        ("list_runs", {"limit": "101"}, "query.limit"),
        ("list_runs", {"limit": "ten"}, "query.limit"),
        ("list_datasets", {"cursor": "garbage"}, "cursor"),
        ("list_evals", {"limit": "-1"}, "query.limit"),
        ("export_run", {"format": "xml"}, "query.format"),
        ("export_run", {"delivery": "email"}, "query.delivery"),
        ("list_runs", {"status": "done"}, "query.status"),
        ("list_runs", {"eval_id": "x"}, "query.eval_id"),
        ("list_runs", {"offset": "-1"}, "query.offset"),
        ("list_run_evaluations", {"passed": "maybe"}, "query.passed"),
        ("list_run_evaluations", {"limit": "1001"}, "query.limit"),
        ("aymara_list_runs", {"limit": "0"}, "query.limit"),
        ("read_records", {"limit": "0"}, "query.limit"),
        ("aymara_list_runs", {"offset": "-5"}, "query.offset"),
        ("aymara_list_runs", {"eval_uuid": "nope"}, "query.eval_uuid"),
    ],
)
def test_bad_query_parameters_are_400(stack, name, query, field):
    status, body, _ = stack.call(ROUTES[name], api_event(name, query=query))
    assert_envelope(status, body, 400)
    assert field in body["error"]


def test_health_needs_no_key_and_answers_from_the_handler(stack):
    status, body, _ = stack.call("ApiMetaFunction", api_event("health", key=None))
    assert status == 200 and body["status"] == "ok"


def test_the_served_openapi_document_is_the_committed_one(stack):
    out = stack.invoke(
        "ApiMetaFunction",
        api_event("health", key=None)
        | {
            "rawPath": "/v1/openapi.json",
            "routeKey": "GET /v1/openapi.json",
            "requestContext": {
                **api_event("health")["requestContext"],
                "http": {"method": "GET", "path": "/v1/openapi.json", "sourceIp": "203.0.113.10"},
            },
        },
    )
    assert out["statusCode"] == 200
    assert json.loads(out["body"]) == json.loads((ROOT / "docs" / "openapi.json").read_text())


# ---------------------------------------------------------------- input limits (docs/api-limits.md)
def nested(levels: int, leaf=1, key: str = "a"):
    value = leaf
    for _ in range(levels):
        value = {key: value}
    return value


def post_records(stack, dataset_id: str, raw: str):
    status, body, _ = stack.call(
        "DatasetsFunction", api_event("create_dataset_version", path_id=dataset_id, raw_body=raw)
    )
    return status, body


def version_count(stack, dataset_id: str) -> int:
    _, dataset, _ = stack.call("DatasetsFunction", api_event("get_dataset", path_id=dataset_id))
    return dataset["version_count"]


@pytest.mark.parametrize("name", sorted(WITH_BODY))
@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("[" * 1_500 + "]" * 1_500, f"body: nested deeper than {MAX_DEPTH} levels"),  # 3 KB
        ('{"n": ' + "7" * 5_000 + "}", "body: integer out of range: at most 38 digits"),
    ],
)
def test_hostile_bodies_are_400_on_every_route_never_500(stack, name, raw, needle):
    status, body, _ = stack.call(ROUTES[name], api_event(name, raw_body=raw))
    assert_envelope(status, body, 400, "validation.invalid_format")
    assert body["error"].startswith(needle)
    assert body["details"]["errors"][0]["loc"] == "body"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("NaN", "body: NaN and Infinity are not JSON numbers"),
        ("Infinity", "body: NaN and Infinity are not JSON numbers"),
        ("-Infinity", "body: NaN and Infinity are not JSON numbers"),
        ("1e999", "body.records[0].metadata.x: number out of range"),
        ("-1e999", "body.records[0].metadata.x: number out of range"),
        ('"\\ud800"', "body: a lone surrogate (\\ud800-\\udfff) is not valid Unicode"),
        ('"ok \\udc00"', "body: a lone surrogate"),
        ("1" + "0" * 38, "body.records[0].metadata.x: integer out of range: at most 38 digits"),
    ],
)
def test_numbers_and_strings_json_cannot_carry_are_400(stack, value, needle):
    dataset_id = create_dataset(stack, records=False)
    status, body = post_records(
        stack, dataset_id, '{"records": [{"output": "o", "metadata": {"x": ' + value + "}}]}"
    )
    assert_envelope(status, body, 400, "validation.invalid_format")
    assert body["error"].startswith(needle), body["error"]
    assert version_count(stack, dataset_id) == 0


def test_metadata_one_level_too_deep_is_400_naming_the_path(stack):
    dataset_id = create_dataset(stack, records=False)
    records = [
        {"output": "o"},
        {"output": "o"},
        {"output": "o"},
        {"output": "o", "metadata": nested(MAX_VALUE_DEPTH + 1, key="b")},
    ]
    status, body = post_records(stack, dataset_id, json.dumps({"records": records}))
    assert_envelope(status, body, 400, "validation.invalid_request")
    where = "body.records[3].metadata" + ".b" * MAX_VALUE_DEPTH
    assert body["error"] == f"{where}: nested deeper than {MAX_VALUE_DEPTH} levels"
    assert body["details"]["errors"][0]["loc"] == where
    assert version_count(stack, dataset_id) == 0


def test_metadata_at_the_limits_is_stored_readable_and_scored(stack):
    # GIVEN records whose metadata is as deep, and as long, as accepted
    deepest = nested(MAX_VALUE_DEPTH - 1, leaf=[1.5, -(10**38 - 1), "é"])  # the list: a level
    longest = {"k": "é" * (MAX_METADATA_CHARS - len('{"k":""}'))}
    records = [
        {"id": "deep", "output": "x", "golden_answer": "x", "metadata": deepest},
        {"id": "long", "output": "y", "golden_answer": "y", "metadata": longest},
    ]
    dataset_id = create_dataset(stack, records=False)
    status, version = post_records(stack, dataset_id, json.dumps({"records": records}))
    assert status == 201, version
    # THEN reading the version gives them back as sent
    status, page, _ = stack.call("DatasetsFunction", api_event("read_records", path_id=dataset_id))
    assert status == 200, page
    assert [r["metadata"] for r in page["items"]] == [deepest, longest]
    # AND a run over them (the workflow reads each stored line with Record.model_validate_json)
    run = completed_run(
        stack, records=records, batch_size=2, metrics=[{"name": "exact", "scorer": "exact_match"}]
    )
    status, done, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert status == 200 and done["status"] == "completed", done
    assert done["completed_count"] == 2 and done["failed_count"] == 0


def test_metadata_longer_than_100000_characters_is_400(stack):
    dataset_id = create_dataset(stack, records=False)
    metadata = {"k": "é" * (MAX_METADATA_CHARS - len('{"k":""}') + 1)}
    status, body = post_records(
        stack, dataset_id, json.dumps({"records": [{"output": "o", "metadata": metadata}]})
    )
    assert_envelope(status, body, 400, "validation.invalid_request")
    assert body["error"] == (
        "body.records[0].metadata: at most 100,000 characters as compact JSON, not 100,001"
    )


# The same hostile record, inline in a body and as a line of an uploaded JSONL file: the same
# verdict, and the same problem once each way's location prefix is set aside.
SAME_VERDICT = [
    (json.dumps({"output": "o", "metadata": nested(MAX_VALUE_DEPTH)}), 201),
    (json.dumps({"output": "o", "metadata": nested(MAX_VALUE_DEPTH + 1)}), 400),
    ('{"output": "o", "metadata": {"x": NaN}}', 400),
    ('{"output": "o", "metadata": {"x": [1e999]}}', 400),
    ('{"output": "\\ud800"}', 400),
    ('{"output": "o", "metadata": {"n": 123456789012345678901234567890123456789}}', 400),
    (json.dumps({"output": "o", "metadata": {"k": "x" * MAX_METADATA_CHARS}}), 400),
    ('{"output": "line\\nnext\\ttab", "input": "bell\\u0007 kept"}', 201),
    ('{"output": 5}', 400),
    ('{"output": "o", "metadata": []}', 400),
]


def problem_text(message: str) -> str:
    for prefix in ("body.records[0].", "body.records[0]: ", "body: ", "record 1: "):
        message = message.removeprefix(prefix)
    return message.split(" (line ")[0]


@pytest.mark.parametrize(("record", "expected"), SAME_VERDICT)
def test_inline_and_uploaded_records_get_the_same_verdict(stack, record, expected):
    dataset_id = create_dataset(stack, records=False)
    inline_status, inline = post_records(stack, dataset_id, '{"records": [' + record + "]}")
    upload_id = upload(stack, dataset_id, record.encode() + b"\n")
    status, uploaded, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version_from_upload", path_id=dataset_id, body={"upload_id": upload_id}),
    )
    assert inline_status == status == expected, (inline, uploaded)
    if expected == 400:
        (line_problem,) = uploaded["details"]["records"]
        assert problem_text(inline["error"]) == problem_text(line_problem)


def json_schema_metric(levels: int) -> dict:
    """A json_schema metric whose ``args`` are ``levels`` deep (args 1, schema 2, …)."""
    schema = {"type": "string"}
    depth = 2  # args and the innermost schema
    while depth + 2 <= levels:
        schema = {"type": "object", "properties": {"a": schema}}
        depth += 2
    if depth < levels:
        schema = {"not": schema}
    return {"name": "shape", "scorer": "json_schema", "args": {"schema": schema}}


def test_json_schema_metric_at_the_depth_limit_is_stored_readable_and_scored(stack):
    metric = json_schema_metric(MAX_VALUE_DEPTH)
    status, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    assert status == 201
    status, version, _ = stack.call(
        "EvalsFunction", api_event("create_eval_version", path_id=ev["id"], body={"metrics": [metric]})
    )
    assert status == 201, version
    assert version["metrics"][0]["args"] == metric["args"]
    status, got, _ = stack.call("EvalsFunction", api_event("get_eval_version", path_id=version["id"]))
    assert status == 200 and got == version
    status, listed, _ = stack.call("EvalsFunction", api_event("list_eval_versions", path_id=ev["id"]))
    assert status == 200 and listed["items"] == [version]
    # AND a run scores with it
    instance = nested(MAX_VALUE_DEPTH // 2 - 1, leaf="s")
    run = completed_run(stack, records=[{"id": "j", "output": json.dumps(instance)}], metrics=[metric])
    status, done, _ = stack.call("GetRunFunction", api_event("get_run", path_id=run["id"]))
    assert done["status"] == "completed" and done["aggregate_results"]["shape"]["mean"] == 1.0


def test_json_schema_metric_one_level_too_deep_is_400_and_nothing_is_stored(stack):
    status, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    body = {"metrics": [{"name": "ok", "scorer": "json_valid"}, json_schema_metric(MAX_VALUE_DEPTH + 1)]}
    status, out, _ = stack.call(
        "EvalsFunction", api_event("create_eval_version", path_id=ev["id"], body=body)
    )
    assert_envelope(status, out, 400, "validation.invalid_request")
    assert out["error"].startswith("body.metrics[1].args.schema.not.properties.a.properties.a")
    assert out["error"].endswith(f": nested deeper than {MAX_VALUE_DEPTH} levels")
    _, got, _ = stack.call("EvalsFunction", api_event("get_eval", path_id=ev["id"]))
    assert got["version_count"] == 0


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("create_dataset", {"name": "esc\u001b[31mred"}, "body.name"),
        ("create_dataset", {"name": "ok", "description": "bell\u0007"}, "body.description"),
        ("create_eval", {"name": "nul\u0000"}, "body.name"),
        ("create_eval", {"name": "tab\tinside"}, "body.name"),
        ("create_project", {"name": "c1\u0085control"}, "body.name"),
        ("create_project", {"name": "del\u007f"}, "body.name"),
        ("create_api_key", {"name": "key\u001b"}, "body.name"),
        (
            "schedule_run",
            {"eval_version_id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "name": "run\u0008"},
            "body.name",
        ),
    ],
)
def test_control_characters_in_names_are_400_naming_the_field(stack, name, body, field):
    status, out, _ = stack.call(ROUTES[name], api_event(name, body=body))
    assert_envelope(status, out, 400, "validation.invalid_request")
    assert out["error"].startswith(f"{field}: must not contain control characters (U+")


def test_run_metric_args_overrides_are_bounded_like_metric_args(stack):
    body = {
        "eval_version_id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "metric_args": {"exact": nested(MAX_VALUE_DEPTH + 1, key="k")},
    }
    status, out, _ = stack.call("ScheduleRunFunction", api_event("schedule_run", body=body))
    assert_envelope(status, out, 400, "validation.invalid_request")
    assert out["error"] == (
        "body.metric_args.exact" + ".k" * MAX_VALUE_DEPTH + f": nested deeper than {MAX_VALUE_DEPTH} levels"
    )


def test_descriptions_keep_line_breaks_and_tabs(stack):
    status, out, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset", body={"name": "multi-line", "description": "first\nsecond\r\n\tthird"}),
    )
    assert status == 201 and out["description"] == "first\nsecond\r\n\tthird"


EVAL_VERSION_ID = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("schedule_run", {"eval_version_id": EVAL_VERSION_ID, "batch_size": "10"}, "body.batch_size"),
        ("schedule_run", {"eval_version_id": EVAL_VERSION_ID, "batch_size": True}, "body.batch_size"),
        ("schedule_run", {"eval_version_id": EVAL_VERSION_ID, "batch_size": 10.5}, "body.batch_size"),
        ("schedule_run", {"eval_version_id": EVAL_VERSION_ID, "threshold": "0.5"}, "body.threshold"),
        ("schedule_run", {"eval_version_id": EVAL_VERSION_ID, "threshold": False}, "body.threshold"),
        (
            "schedule_run",
            {"eval_version_id": EVAL_VERSION_ID, "max_concurrency": "4"},
            "body.max_concurrency",
        ),
        (
            "schedule_run",
            {"eval_version_id": EVAL_VERSION_ID, "dataset_version": "1"},
            "body.dataset_version",
        ),
        (
            "create_eval_version",
            {"metrics": [{"name": "m", "scorer": "exact_match"}], "threshold": "0.5"},
            "body.threshold",
        ),
        (
            "create_eval_version",
            {"metrics": [{"name": "m", "scorer": "exact_match", "threshold": "1"}]},
            "body.metrics[0].threshold",
        ),
        (
            "create_eval_version",
            {"metrics": [{"name": "m", "scorer": "exact_match"}], "judge": {"max_tokens": "512"}},
            "body.judge.max_tokens",
        ),
        (
            "create_eval_version",
            {"metrics": [{"name": "m", "scorer": "exact_match"}], "judge": {"temperature": True}},
            "body.judge.temperature",
        ),
        (
            "create_eval_version",
            {"metrics": [{"name": "m", "scorer": "exact_match"}], "judge": {"concurrency": "2"}},
            "body.judge.concurrency",
        ),
    ],
)
def test_numbers_are_json_numbers_not_strings_or_booleans(stack, name, body, field):
    status, out, _ = stack.call(ROUTES[name], api_event(name, body=body))
    assert_envelope(status, out, 400, "validation.invalid_request")
    assert out["error"].startswith(f"{field}: "), out["error"]


def test_integer_fields_take_whole_json_numbers(stack):
    dataset_id = create_dataset(stack)
    status, ev, _ = stack.call("EvalsFunction", api_event("create_eval"))
    status, version, _ = stack.call(
        "EvalsFunction",
        api_event(
            "create_eval_version",
            path_id=ev["id"],
            body={
                "metrics": [{"name": "m", "scorer": "exact_match", "threshold": 1}],
                "threshold": 1,
                "judge": {"max_tokens": 256.0, "temperature": 0},
            },
        ),
    )
    assert status == 201, version
    assert version["threshold"] == 1.0 and version["judge"]["max_tokens"] == 256
    status, run, _ = stack.call(
        "ScheduleRunFunction",
        api_event(
            "schedule_run",
            path_id=dataset_id,
            body={"eval_version_id": version["id"], "batch_size": 10.0, "threshold": 0},
        ),
    )
    assert status == 202 and run["batch_size"] == 10, run


@pytest.mark.parametrize("header", [f"{OWNER_KEY} ", f" {OWNER_KEY}", f"\t{OWNER_KEY} \t"])
def test_x_api_key_is_trimmed_like_a_bearer_value(stack, header):
    for name, function in (
        ("aymara_list_runs", "CompatViewsFunction"),
        ("list_datasets", "DatasetsFunction"),
    ):
        event = api_event(name, key=None)
        event["headers"]["x-api-key"] = header
        status, body, _ = stack.call(function, event)
        assert status == 200, body
    event = api_event("list_datasets", key=None)
    event["headers"]["x-api-key"] = OWNER_KEY[:10] + " " + OWNER_KEY[10:]
    assert stack.call("DatasetsFunction", event)[0] == 401


@pytest.mark.parametrize("raw", ["garbage", '{"name": "x"}', "[]", "null", "{", '"{}"'])
def test_a_body_sent_to_the_upload_route_is_400(stack, raw):
    dataset_id = create_dataset(stack, records=False)
    status, body, _ = stack.call(
        "DatasetsFunction", api_event("create_upload", path_id=dataset_id, raw_body=raw)
    )
    assert_envelope(status, body, 400, "validation.invalid_request")
    assert body["error"] == "body: this route takes no body (send none, or {})"


@pytest.mark.parametrize("raw", [None, "", "  \n", "{}", " { } "])
def test_the_upload_route_takes_no_body_or_an_empty_object(stack, raw):
    dataset_id = create_dataset(stack, records=False)
    event = api_event("create_upload", path_id=dataset_id, **({} if raw is None else {"raw_body": raw}))
    status, body, _ = stack.call("DatasetsFunction", event)
    assert status == 201 and body["method"] == "PUT", body


@pytest.mark.parametrize("name", ["list_datasets", "read_records", "list_runs"])
def test_a_forged_cursor_nested_1500_levels_is_400_not_500(stack, name):
    import base64

    cursor = base64.urlsafe_b64encode(b"[" * 1_530).decode().rstrip("=")  # ≤ 2,048 characters
    path = {"path_id": create_dataset(stack)} if name == "read_records" else {}
    status, body, _ = stack.call(ROUTES[name], api_event(name, query={"cursor": cursor}, **path))
    assert_envelope(status, body, 400, "validation.invalid_request")
    assert "cursor" in body["error"]
