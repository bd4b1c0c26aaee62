"""Large versions: a JSONL file PUT to a presigned URL, validated streaming, rejected whole."""

from __future__ import annotations

from tests.functional.factories import create_dataset, jsonl, upload
from tests.functional.harness import api_event


def test_version_from_an_uploaded_file_and_paged_records(stack):
    dataset_id = create_dataset(stack, records=False)
    records = [
        {"id": f"u{i}", "input": f"question {i}", "output": "é" * (i % 7), "golden_answer": "x"}
        for i in range(2500)
    ]
    upload_id = upload(stack, dataset_id, jsonl(records))
    status, version, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version_from_upload", path_id=dataset_id, body={"upload_id": upload_id}),
    )
    assert status == 201, version
    assert version["record_count"] == 2500

    seen, cursor = [], None
    while True:
        query = {"limit": "700", **({"cursor": cursor} if cursor else {})}
        status, page, _ = stack.call(
            "DatasetsFunction", api_event("read_records", path_id=dataset_id, query=query)
        )
        assert status == 200, page
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [r["id"] for r in seen] == [r["id"] for r in records]
    assert seen[6]["output"] == "é" * 6 and seen[0]["trace_id"]


def test_an_upload_with_bad_lines_is_rejected_whole_naming_them(stack):
    dataset_id = create_dataset(stack, records=False)
    lines = jsonl([{"id": f"r{i}", "output": "ok"} for i in range(50)]).splitlines(keepends=True)
    lines[4] = b'{"id": "r4", "output": 7}\n'
    lines[9] = b"not json\n"
    lines[19] = b'{"id": "r1", "output": "duplicate id"}\n'
    lines.insert(30, b"\n")
    upload_id = upload(stack, dataset_id, b"".join(lines))
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version_from_upload", path_id=dataset_id, body={"upload_id": upload_id}),
    )
    assert status == 400 and body["code"] == "validation.invalid_request"
    problems = body["details"]["records"]
    assert [p.split(":")[0] for p in problems] == ["record 5", "record 10", "record 20", "record 31"]
    assert "repeats record 2" in problems[2]
    _, dataset, _ = stack.call("DatasetsFunction", api_event("get_dataset", path_id=dataset_id))
    assert dataset["version_count"] == 0


def test_at_most_20_problems_are_listed(stack):
    dataset_id = create_dataset(stack, records=False)
    upload_id = upload(stack, dataset_id, b"{}\n" + b"[]\n" * 45)
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("create_dataset_version_from_upload", path_id=dataset_id, body={"upload_id": upload_id}),
    )
    assert status == 400 and len(body["details"]["records"]) == 20
    assert body["details"]["invalid_count"] == 45


def test_unknown_upload_and_both_sources_are_rejected(stack):
    dataset_id = create_dataset(stack, records=False)
    status, body, _ = stack.call(
        "DatasetsFunction", api_event("create_dataset_version_from_upload", path_id=dataset_id)
    )
    assert status == 404 and body["error"] == "upload not found"
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event(
            "create_dataset_version",
            path_id=dataset_id,
            body={"records": [{"output": "x"}], "upload_id": "6a0c8e2f-3b1d-4c5e-9f7a-8b9c0d1e2f3a"},
        ),
    )
    assert status == 400 and "either 'records' or 'upload_id'" in body["error"]


def test_a_forged_records_cursor_is_a_400(stack):
    dataset_id = create_dataset(stack)
    status, body, _ = stack.call(
        "DatasetsFunction",
        api_event("read_records", path_id=dataset_id, query={"cursor": "eyJvZmZzZXQiOjV9"}),
    )
    assert status == 400 and body["details"] == {"field": "cursor"}
