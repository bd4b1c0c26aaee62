"""Creates that leave nothing behind and the delete commands, against the scripted loopback API
(client/tests/fake_api.py): what the CLI and the client send, and what they do when it fails."""

from __future__ import annotations

import json

from assay import Client, cli
from assay.exit_codes import ExitCode

from fake_api import envelope, fake_api, reply

KEY = "ask_cli_unit_key_0123456789abcdef"
DS_ID = "11111111-1111-4111-8111-111111111111"
EVAL_ID = "44444444-4444-4444-8444-444444444444"
RUN_ID = "22222222-2222-4222-8222-222222222222"
NOW = "2026-12-07T12:00:00Z"
DATASET = {
    "id": DS_ID,
    "tenant_id": DS_ID,
    "project_id": DS_ID,
    "name": "qa",
    "description": None,
    "version_count": 0,
    "created_at": NOW,
}
VERSION = {
    "id": EVAL_ID,
    "dataset_id": DS_ID,
    "version": 1,
    "record_count": 2,
    "size_bytes": 99,
    "created_at": NOW,
}
EVAL_VERSION = {
    "id": RUN_ID,
    "eval_id": EVAL_ID,
    "version": 1,
    "threshold": 0.7,
    "judge": None,
    "created_at": NOW,
    "metrics": [{"name": "exact", "scorer": "exact_match", "args": {}, "threshold": 0.5}],
}
EVAL = {
    "id": EVAL_ID,
    "tenant_id": DS_ID,
    "project_id": DS_ID,
    "name": "qa-eval",
    "description": None,
    "version_count": 1,
    "created_at": NOW,
}


def run_cli(url: str, *args: str) -> int:
    return cli.main(["--url", url, "--api-key", KEY, "--quiet", *args])


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


# ------------------------------------------------------------------ datasets create
def test_a_missing_file_is_one_line_and_creates_nothing(tmp_path, capsys):
    with fake_api() as api:
        code = run_cli(api.url, "datasets", "create", "qa", "--file", str(tmp_path / "nope.csv"))
        assert code == ExitCode.ERROR
        err = capsys.readouterr().err.strip()
        assert "nope.csv: no such file" in err and len(err.splitlines()) == 1
        assert api.seen == []  # not even the dataset


def test_an_unreadable_file_creates_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"output": "a"}\n{not json\n')
    with fake_api() as api:
        assert run_cli(api.url, "datasets", "create", "qa", "--file", str(bad)) == ExitCode.ERROR
        assert "bad.jsonl" in capsys.readouterr().err
        assert api.seen == []


def test_a_small_file_is_one_request_with_the_records_inline(tmp_path, capsys):
    data = tmp_path / "qa.jsonl"
    records = [{"id": "a", "output": "x"}, {"id": "b", "output": "y"}]
    write_jsonl(data, records)
    with fake_api() as api:
        api.on("POST", "/v1/datasets", reply(201, {**DATASET, "version_count": 1, "version": VERSION}))
        assert run_cli(api.url, "datasets", "create", "qa", "--file", str(data)) == ExitCode.OK
        [create] = api.seen
        assert create.method == "POST" and create.path == "/v1/datasets"
        assert create.json()["name"] == "qa" and create.json()["records"] == records
        out = capsys.readouterr().out
        assert f"dataset {DS_ID}  qa" in out and "version 1  2 records" in out


def test_the_server_refusing_a_record_leaves_no_request_but_the_one(tmp_path, capsys):
    data = tmp_path / "qa.jsonl"
    write_jsonl(data, [{"id": "a", "output": "x"}, {"id": "a", "output": "y"}])
    with fake_api() as api:
        api.on(
            "POST",
            "/v1/datasets",
            envelope(
                400, "validation.invalid_request", "1 invalid record(s); record 2: id 'a' repeats record 1"
            ),
        )
        assert run_cli(api.url, "datasets", "create", "qa", "--file", str(data)) == ExitCode.ERROR
        assert "record 2" in capsys.readouterr().err
        assert [(s.method, s.path) for s in api.seen] == [("POST", "/v1/datasets")]


def test_a_failed_upload_deletes_the_dataset_it_created(tmp_path, capsys):
    data = tmp_path / "qa.jsonl"
    write_jsonl(data, [{"id": "a", "output": "x"}])
    with fake_api() as api:
        api.on("POST", "/v1/datasets", reply(201, DATASET))
        api.on(
            "POST",
            f"/v1/datasets/{DS_ID}/uploads",
            reply(
                201,
                {
                    "upload_id": RUN_ID,
                    "url": f"{api.url}/put-here",
                    "method": "PUT",
                    "headers": {"Content-Type": "application/x-ndjson"},
                    "expires_at": NOW,
                },
            ),
        )
        api.on("PUT", "/put-here", reply(200))
        api.on(
            "POST",
            f"/v1/datasets/{DS_ID}/versions",
            envelope(400, "validation.invalid_request", "record 1: bad"),
        )
        api.on("DELETE", f"/v1/datasets/{DS_ID}", reply(204))
        code = run_cli(api.url, "datasets", "create", "qa", "--file", str(data), "--via", "upload")
        assert code == ExitCode.ERROR
        assert "record 1: bad" in capsys.readouterr().err
        assert "records" not in api.calls("POST", "/v1/datasets")[0].json()  # records went by upload
        assert len(api.calls("DELETE", f"/v1/datasets/{DS_ID}")) == 1
        assert [s.method for s in api.seen][-1] == "DELETE"


# ------------------------------------------------------------------ evals create
def test_a_new_eval_and_its_version_are_one_request(tmp_path, capsys):
    spec = tmp_path / "eval.json"
    spec.write_text(
        json.dumps(
            {"name": "qa-eval", "threshold": 0.7, "metrics": [{"name": "exact", "scorer": "exact_match"}]}
        )
    )
    with fake_api() as api:
        api.on("GET", "/v1/evals", reply(200, {"items": [], "count": 0, "next_cursor": None}))
        api.on("POST", "/v1/evals", reply(201, {**EVAL, "version": EVAL_VERSION}))
        assert run_cli(api.url, "evals", "create", "--file", str(spec)) == ExitCode.OK
        [create] = api.calls("POST", "/v1/evals")
        assert create.json() == {
            "name": "qa-eval",
            "threshold": 0.7,
            "metrics": [{"name": "exact", "scorer": "exact_match"}],
        }
        assert not [s for s in api.seen if s.path.endswith("/versions")]
        out = capsys.readouterr().out
        assert f"eval version {RUN_ID}  v1" in out and "(new)" in out


def test_a_bad_spec_creates_no_eval(tmp_path, capsys):
    spec = tmp_path / "eval.json"
    spec.write_text(json.dumps({"name": "qa-eval", "metrics": [{"name": "x", "scorer": "nope"}]}))
    with fake_api() as api:
        api.on("GET", "/v1/evals", reply(200, {"items": [], "count": 0, "next_cursor": None}))
        api.on(
            "POST",
            "/v1/evals",
            envelope(400, "validation.invalid_request", "metrics[0] (x): unknown scorer 'nope'"),
        )
        assert run_cli(api.url, "evals", "create", "--file", str(spec)) == ExitCode.ERROR
        assert "unknown scorer 'nope'" in capsys.readouterr().err
        assert len(api.calls("POST", "/v1/evals")) == 1 and not api.calls(
            "POST", f"/v1/evals/{EVAL_ID}/versions"
        )


def test_a_missing_spec_is_one_line_and_calls_nothing(tmp_path, capsys):
    with fake_api() as api:
        code = run_cli(api.url, "evals", "create", "--file", str(tmp_path / "eval.yaml"))
        assert code == ExitCode.ERROR and "eval.yaml" in capsys.readouterr().err
        assert api.seen == []


# ------------------------------------------------------------------ deletes
def test_delete_commands_send_delete_and_say_what_went(capsys):
    with fake_api() as api:
        for path in (f"/v1/datasets/{DS_ID}", f"/v1/evals/{EVAL_ID}", f"/v1/eval-runs/{RUN_ID}"):
            api.on("DELETE", path, reply(204))
        assert run_cli(api.url, "datasets", "delete", DS_ID) == ExitCode.OK
        assert run_cli(api.url, "evals", "delete", EVAL_ID) == ExitCode.OK
        assert run_cli(api.url, "runs", "delete", RUN_ID, "--json") == ExitCode.OK
        out = capsys.readouterr().out
        assert f"deleted dataset {DS_ID}" in out and f"deleted eval {EVAL_ID}" in out
        assert json.loads(out[out.index("{") :]) == {"deleted": {"kind": "run", "id": RUN_ID}}
        assert [(s.method, s.path) for s in api.seen] == [
            ("DELETE", f"/v1/datasets/{DS_ID}"),
            ("DELETE", f"/v1/evals/{EVAL_ID}"),
            ("DELETE", f"/v1/eval-runs/{RUN_ID}"),
        ]


def test_a_refused_delete_exits_2_with_the_servers_reason(capsys):
    with fake_api() as api:
        api.on(
            "DELETE",
            f"/v1/eval-runs/{RUN_ID}",
            envelope(
                409,
                "resource.conflict",
                f"the run is running; cancel it first (POST /v1/eval-runs/{RUN_ID}/cancel)",
            ),
        )
        assert run_cli(api.url, "runs", "delete", RUN_ID) == ExitCode.ERROR
        assert "cancel it first" in capsys.readouterr().err


def test_a_dataset_is_deleted_by_its_exact_name(capsys):
    with fake_api() as api:
        api.on("GET", "/v1/datasets", reply(200, {"items": [DATASET], "count": 1, "next_cursor": None}))
        api.on("DELETE", f"/v1/datasets/{DS_ID}", reply(204))
        assert run_cli(api.url, "datasets", "delete", "qa") == ExitCode.OK
        assert len(api.calls("DELETE", f"/v1/datasets/{DS_ID}")) == 1


def test_client_create_and_delete_methods():
    with fake_api() as api:
        api.on("POST", "/v1/evals", reply(201, {**EVAL, "version": EVAL_VERSION}))
        api.on("DELETE", f"/v1/eval-runs/{RUN_ID}", reply(204))
        client = Client(api.url, KEY)
        ev = client.create_eval(
            "qa-eval", metrics=[{"name": "exact", "scorer": "exact_match"}], threshold=0.7
        )
        assert ev.id == EVAL_ID and ev.raw["version"]["version"] == 1
        assert api.calls("POST", "/v1/evals")[0].json()["metrics"][0]["scorer"] == "exact_match"
        assert client.delete_run(RUN_ID) is None
