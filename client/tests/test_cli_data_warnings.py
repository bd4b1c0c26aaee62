"""`assay datasets upload|create --strict` and the server's warnings about the records, against
the scripted loopback API: the flag reaches the request body, each warning is one stderr line,
a strict refusal prints every warning before the error, and stdout stays the result."""

from __future__ import annotations

import json

from assay import cli
from assay.exit_codes import ExitCode

from fake_api import fake_api, reply

KEY = "ask_cli_unit_key_0123456789abcdef"
DS_ID = "11111111-1111-4111-8111-111111111111"
VERSIONS = f"/v1/datasets/{DS_ID}/versions"
WARNINGS = [
    {
        "code": "unknown_field",
        "field": "Output",
        "count": 2,
        "suggestion": "output",
        "message": "'Output' is not a record field; it was stored in metadata (2 of 2 records) "
        "— did you mean 'output'?",
    },
    {
        "code": "missing_field",
        "field": "output",
        "count": 2,
        "suggestion": None,
        "message": "no record has 'output' (0 of 2)",
    },
]
VERSION = {
    "id": "v1",
    "dataset_id": DS_ID,
    "version": 1,
    "record_count": 2,
    "size_bytes": 10,
    "created_at": "2026-01-01T00:00:00Z",
    "warnings": WARNINGS,
    "fields": {"output": 0},
    "unknown_fields": {"Output": 2},
}
REFUSED = reply(
    400,
    {
        "error": "strict: the records do not fit the record fields (Output, output); "
        "the version was not created",
        "code": "validation.invalid_request",
        "details": {"warnings": WARNINGS},
        "request_id": "req-1",
    },
)


def run_cli(url: str, *args: str) -> int:
    return cli.main(["--url", url, "--api-key", KEY, *args])


def csv_file(tmp_path):
    path = tmp_path / "records.csv"
    path.write_text("id,input,Output\n1,q1,a1\n2,q2,a2\n")
    return path


def test_upload_prints_each_warning_on_one_stderr_line(tmp_path, capsys):
    with fake_api() as api:
        api.on("POST", VERSIONS, reply(201, VERSION))
        assert run_cli(api.url, "datasets", "upload", DS_ID, str(csv_file(tmp_path))) == 0
        (call,) = api.calls("POST", VERSIONS)
    body = call.json()
    assert "strict" not in body  # without --strict the body is what it always was
    # The CSV reader does not rename: the column goes to metadata and the server says so.
    assert body["records"][0] == {"id": "1", "input": "q1", "metadata": {"Output": "a1"}}
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert lines == [f"warning: {w['message']}" for w in WARNINGS]
    assert "version 1  2 records" in captured.out and "warning" not in captured.out


def test_upload_strict_sends_strict_and_prints_every_refused_warning(tmp_path, capsys):
    with fake_api() as api:
        api.on("POST", VERSIONS, REFUSED)
        code = run_cli(api.url, "datasets", "upload", DS_ID, str(csv_file(tmp_path)), "--strict")
        (call,) = api.calls("POST", VERSIONS)
    assert code == ExitCode.ERROR
    assert call.json()["strict"] is True
    err = capsys.readouterr().err
    assert all(f"warning: {w['message']}" in err for w in WARNINGS)
    assert "error: strict: the records do not fit the record fields" in err


def test_upload_strict_through_a_presigned_upload(tmp_path, capsys):
    with fake_api() as api:
        target = {
            "upload_id": "u1",
            "url": f"{api.url}/put/u1",
            "method": "PUT",
            "headers": {"Content-Type": "application/x-ndjson"},
            "expires_at": "2026-01-01T00:15:00Z",
        }
        api.on("POST", f"/v1/datasets/{DS_ID}/uploads", reply(201, target))
        api.on("PUT", "/put/u1", reply(200))
        api.on("POST", VERSIONS, reply(201, {**VERSION, "warnings": []}))
        assert (
            run_cli(
                api.url, "datasets", "upload", DS_ID, str(csv_file(tmp_path)), "--via", "upload", "--strict"
            )
            == 0
        )
        (call,) = api.calls("POST", VERSIONS)
    assert call.json() == {"upload_id": "u1", "strict": True}
    assert "warning:" not in capsys.readouterr().err


def test_create_with_a_file_sends_strict_and_prints_warnings(tmp_path, capsys):
    created = {
        "id": DS_ID,
        "name": "qa",
        "version_count": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "version": VERSION,
    }
    with fake_api() as api:
        api.on("POST", "/v1/datasets", reply(201, created))
        assert (
            run_cli(
                api.url, "--json", "datasets", "create", "qa", "--file", str(csv_file(tmp_path)), "--strict"
            )
            == 0
        )
        (call,) = api.calls("POST", "/v1/datasets")
    assert call.json()["strict"] is True
    captured = capsys.readouterr()
    assert json.loads(captured.out)["version"]["warnings"] == WARNINGS  # stdout stays JSON
    assert f"warning: {WARNINGS[0]['message']}" in captured.err


def test_create_strict_without_a_file_is_a_usage_error(capsys):
    with fake_api() as api:
        assert run_cli(api.url, "datasets", "create", "qa", "--strict") == ExitCode.ERROR
        assert api.calls("POST", "/v1/datasets") == []
    assert "--strict checks the records of --file" in capsys.readouterr().err
