"""`assay import openai-evals DIR`: reading and classifying saved OpenAI Evals history (objects,
list pages, arrays, JSONL; duplicates; what is skipped and why; files that cannot be read, by
file and line), cutting a run's output items into upload files of at most 4.5 MB, and the
command against the scripted loopback API (client/tests/fake_api.py)."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest

from assay.cli import imports as cli_imports
from assay.errors import InvalidRequestError, error_from_response
from assay.openai_import import (
    FILE_LIMIT,
    LineTooLargeError,
    SavedHistoryError,
    read_history,
    split_jsonl,
    split_sizes,
)

from cli_support import run_cli
from fake_api import Seen, fake_api, reply

EVAL_ID = "eval_" + "a" * 32
RUN_ID = "evalrun_" + "b" * 32
NEW_EVAL = "eval_" + "c" * 32
NEW_RUN = "evalrun_" + "d" * 32
COUNTS = {"total": 3, "errored": 0, "failed": 1, "passed": 2}


def an_eval(id_: str = EVAL_ID, **extra: Any) -> dict[str, Any]:
    return {"object": "eval", "id": id_, "name": "capitals", "created_at": 1700000000, **extra}


def a_run(id_: str = RUN_ID, eval_id: str = EVAL_ID, **extra: Any) -> dict[str, Any]:
    return {
        "object": "eval.run",
        "id": id_,
        "eval_id": eval_id,
        "name": "logged",
        "result_counts": COUNTS,
        **extra,
    }


def an_item(n: int, run_id: str = RUN_ID, **extra: Any) -> dict[str, Any]:
    return {
        "object": "eval.run.output_item",
        "id": f"outputitem_{run_id[-4:]}{n:04d}",
        "run_id": run_id,
        "eval_id": EVAL_ID,
        "datasource_item_id": n,
        "datasource_item": {"q": f"question {n}"},
        "results": [{"name": "Exact", "score": 1.0, "passed": True}],
        "status": "pass",
        **extra,
    }


def page(*objects: dict[str, Any]) -> dict[str, Any]:
    return {"object": "list", "data": list(objects), "has_more": False}


def jsonl(*values: Any) -> str:
    return "".join(json.dumps(v) + "\n" for v in values)


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def saved_dir(root: Path, items: int = 3) -> Path:
    """An eval (one object), its run (in a list page) and its items (JSONL, a page and lines)."""
    write(root, "evals/capitals.json", json.dumps(an_eval()))
    write(root, "runs/page-1.json", json.dumps(page(a_run())))
    rest = [an_item(n) for n in range(1, items)]
    write(root, "runs/items.jsonl", jsonl(page(an_item(0)), *rest))
    return root


# ---------------------------------------------------------------------------- reading
def test_objects_list_pages_arrays_and_jsonl_are_all_read(tmp_path):
    write(tmp_path, "a/eval.json", json.dumps(an_eval()))
    write(tmp_path, "a/b/runs.json", json.dumps([a_run(), a_run("evalrun_2")]))  # a JSON array
    write(tmp_path, "items.jsonl", jsonl(page(an_item(0), an_item(1)), an_item(2)))
    write(tmp_path, "more.JSONL", "\n" + jsonl(an_item(0, "evalrun_2")) + "\n\n")  # blank lines
    write(tmp_path, "notes.txt", "not read")
    with read_history(tmp_path) as history:
        assert list(history.evals) == [EVAL_ID] and sorted(history.runs) == sorted([RUN_ID, "evalrun_2"])
        assert history.item_count(RUN_ID) == 3 and history.item_count("evalrun_2") == 1
        assert len(history.files) == 4 and not any(f.endswith(".txt") for f in history.files)
        assert history.evals[EVAL_ID].where.endswith("a/eval.json")
        assert history.runs[RUN_ID].where.endswith("runs.json")
        assert [json.loads(line) for line in history.item_lines(RUN_ID)] == [an_item(n) for n in range(3)]
        assert history.skipped == []


def test_a_json_file_of_one_document_a_line_is_read_as_jsonl_and_a_bom_is_ignored(tmp_path):
    write(tmp_path, "eval.json", b"\xef\xbb\xbf" + json.dumps(an_eval()).encode())
    write(tmp_path, "items.json", jsonl(an_item(0), an_item(1)))
    write(tmp_path, "runs.jsonl", b"\xef\xbb\xbf" + jsonl(a_run()).encode())
    with read_history(tmp_path) as history:
        assert list(history.evals) == [EVAL_ID] and list(history.runs) == [RUN_ID]
        assert history.item_count(RUN_ID) == 2


def test_one_file_is_read_as_well_as_a_directory(tmp_path):
    path = write(tmp_path, "all.jsonl", jsonl(an_eval(), a_run(), an_item(0)))
    with read_history(path) as history:
        assert history.files == [str(path)] and history.item_count(RUN_ID) == 1


def test_duplicates_are_dropped_by_id(tmp_path):
    write(tmp_path, "1.json", json.dumps(page(an_eval(), a_run())))
    write(tmp_path, "2.json", json.dumps(page(an_eval(name="again"), a_run(name="again"))))
    write(tmp_path, "items.jsonl", jsonl(an_item(0), an_item(1), an_item(0), page(an_item(1))))
    with read_history(tmp_path) as history:
        assert history.evals[EVAL_ID].obj["name"] == "capitals"  # the first one read is kept
        assert history.runs[RUN_ID].obj["name"] == "logged"
        assert history.item_count(RUN_ID) == 2 and history.duplicates == 4
        assert history.skipped == []


def test_what_is_not_history_is_skipped_with_its_file_and_line(tmp_path):
    write(
        tmp_path,
        "mixed.jsonl",
        jsonl(
            {"object": "file", "id": "file-1"},  # 1: another kind of object
            {"id": "no-object"},  # 2
            [1, "two", None],  # 3: three values that are not objects
            {"object": "eval", "name": "no id"},  # 4
            {"object": "eval.run", "id": "evalrun_x"},  # 5: no eval_id
            {"object": "eval.run.output_item", "id": "oi_1", "datasource_item_id": 0},  # 6: no run_id
            an_item(0, datasource_item_id=True),  # 7: a boolean is no index
            an_item(1),  # 8
            an_item(2, id="outputitem_other", datasource_item_id=1),  # 9: index 1 again
            {"object": "list", "data": "nope"},  # 10
            [[[[an_item(5)]]]],  # 11: nested too deeply
        ),
    )
    with read_history(tmp_path) as history:
        where = [(s.where.rsplit(":", 1)[1], s.category) for s in history.skipped]
        assert where == [
            ("1", "objects of other kinds"),
            ("2", "objects of other kinds"),
            ("3", "values that are not objects"),
            ("3", "values that are not objects"),
            ("3", "values that are not objects"),
            ("4", "objects without an id"),
            ("5", "runs without an eval_id"),
            ("6", "output items without a run_id"),
            ("7", "output items without a datasource_item_id"),
            ("9", "output items repeating a datasource_item_id"),
            ("10", "bad list pages"),
            ("11", "arrays nested too deeply"),
        ]
        assert history.skipped[0].reason == "object 'file' is not an eval, eval.run or eval.run.output_item"
        assert history.skipped[2].reason == "a JSON number, not an object"
        assert "output item outputitem_" in history.skipped[9].reason
        assert history.item_count(RUN_ID) == 1


@pytest.mark.parametrize(
    ("name", "content", "line", "message"),
    [
        ("bad.json", '{"object": "eval",\n  "id": x}', 2, "not valid JSON: Expecting value (column 9)"),
        (
            "bad.jsonl",
            jsonl(an_eval()) + '{"object": "eval.run"\n',
            2,
            "not valid JSON: Expecting ',' delimiter",
        ),
        (
            "latin1.jsonl",
            jsonl(an_eval()).encode() + b'{"name": "caf\xe9"}\n',
            2,
            "not UTF-8 text (byte 0xe9 at column 14)",
        ),
        ("latin1.json", b'{\n"name": "caf\xe9"}', 2, "not UTF-8 text (byte 0xe9 at column 13)"),
        ("utf16.json", json.dumps(an_eval()).encode("utf-16"), 1, "not UTF-8 text (byte 0xff at column 1)"),
        ("nan.jsonl", '{"score": NaN}\n', 1, "not valid JSON: NaN is not JSON"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, None, "JSON nested too deeply"),
        (
            "pretty.json",
            json.dumps(an_eval(), indent=2) + "\n" + json.dumps(a_run(), indent=2),
            7,
            "not valid JSON: a second document starts at column 1 (several documents in one file must be",
        ),
    ],
)
def test_a_file_that_cannot_be_read_names_the_file_and_line(tmp_path, name, content, line, message):
    write(tmp_path, "ok.json", json.dumps(an_eval()))
    write(tmp_path, f"z/{name}", content)
    with pytest.raises(SavedHistoryError) as caught:
        read_history(tmp_path)
    error = caught.value
    assert error.path == str(tmp_path / "z" / name) and error.line == line and message in error.reason
    assert str(error).startswith(f"{tmp_path / 'z' / name}{f':{line}' if line else ''}: ")


def test_a_line_too_long_for_jsonl_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setattr("assay.openai_import.MAX_LINE_BYTES", 1000)
    write(tmp_path, "big.jsonl", jsonl(an_eval()) + json.dumps({"x": "y" * 5000}) + "\n")
    with pytest.raises(SavedHistoryError) as caught:
        read_history(tmp_path)
    assert caught.value.line == 2 and "a line longer than" in caught.value.reason


def test_only_regular_files_are_read(tmp_path):
    import os

    write(tmp_path, "eval.json", json.dumps(an_eval()))
    os.mkfifo(tmp_path / "pipe.jsonl")  # opening it would block
    (tmp_path / "dir.json").mkdir()
    with read_history(tmp_path) as history:
        assert history.files == [str(tmp_path / "eval.json")]


def test_a_missing_root_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_history(tmp_path / "nope")


def test_items_are_spooled_to_disk_as_compact_jsonl_lines(tmp_path):
    text = {"object": "eval.run.output_item"}  # non-ASCII kept as UTF-8, a lone surrogate escaped
    write(tmp_path, "i.jsonl", jsonl(an_item(0, note="日本"), an_item(1, note="\ud800")))
    with read_history(tmp_path) as history:
        lines = list(history.item_lines(RUN_ID))
        assert "日本".encode() in lines[0] and b"\\ud800" in lines[1]
        assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
        assert [json.loads(line)["datasource_item_id"] for line in lines] == [0, 1]
        assert text["object"] in lines[0].decode()


# ---------------------------------------------------------------------------- upload files
def test_split_sizes_cuts_at_line_boundaries_within_the_limit():
    assert split_sizes([], 10) == []
    assert split_sizes([4, 4, 2], 10) == [range(0, 3)]  # exactly the limit: one file
    assert split_sizes([4, 4, 3], 10) == [range(0, 2), range(2, 3)]
    assert split_sizes([10, 1, 9, 5], 10) == [range(0, 1), range(1, 3), range(3, 4)]
    with pytest.raises(LineTooLargeError) as caught:
        split_sizes([3, 11, 2], 10)
    assert caught.value.index == 1 and caught.value.size == 11 and "line 2 is 11 bytes" in str(caught.value)


def test_a_large_run_is_split_into_files_of_at_most_4_5_mb_that_join_back():
    assert FILE_LIMIT == 4_500_000
    lines = [
        json.dumps(an_item(n, datasource_item={"text": "x" * (1000 + 37 * (n % 50))})).encode() + b"\n"
        for n in range(6000)
    ]
    total = sum(len(line) for line in lines)
    files = split_jsonl(lines)
    assert total > 2 * FILE_LIMIT and len(files) == -(-total // FILE_LIMIT)  # as few as fit
    assert all(len(f) <= FILE_LIMIT and f.endswith(b"\n") for f in files)
    assert b"".join(files) == b"".join(lines)
    assert [json.loads(x)["datasource_item_id"] for f in files for x in f.splitlines()] == list(range(6000))


def test_history_item_files_are_the_runs_items_cut_to_the_limit(tmp_path):
    write(tmp_path, "i.jsonl", jsonl(*[an_item(n) for n in range(10)]))
    with read_history(tmp_path) as history:
        size = len(next(history.item_lines(RUN_ID)))
        files = list(history.item_files(RUN_ID, limit=3 * size + 5))
        assert [len(f.splitlines()) for f in files] == [3, 3, 3, 1]
        assert b"".join(files) == b"".join(history.item_lines(RUN_ID))


# ---------------------------------------------------------------------------- OpenAI's error envelope
def test_openais_error_envelope_is_read_with_its_param():
    body = {
        "error": {
            "message": "run.object: 'eval.run'",
            "type": "invalid_request_error",
            "param": "run",
            "code": "validation.invalid_request",
        }
    }
    error = error_from_response(400, json.dumps(body).encode(), {"x-request-id": "req-9"})
    assert isinstance(error, InvalidRequestError) and error.message == "run.object: 'eval.run'"
    assert error.details == {"param": "run", "type": "invalid_request_error"} and error.request_id == "req-9"


# ---------------------------------------------------------------------------- the command
def form(seen: Seen) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body's fields: name → (filename, content)."""
    head = f"Content-Type: {seen.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + seen.body, policy=email.policy.HTTP)
    return {
        part.get_param("name", header="content-disposition"): (
            part.get_filename(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


class Server:
    """/openai/v1 as the import uses it: the lists, the two imports, files, a run's status."""

    def __init__(self, api, *, existing: list[dict] | None = None, polls: int = 1) -> None:
        self.files: dict[str, bytes] = {}
        self.deleted: list[str] = []
        self.polls = polls
        api.on("GET", "/openai/v1/evals", reply(200, page(*(existing or []))))
        api.on("POST", "/openai/v1/imports/evals", self.import_eval)
        api.on("POST", "/openai/v1/files", self.upload)
        api.on("POST", f"/openai/v1/imports/evals/{NEW_EVAL}/runs", self.import_run)
        api.on("GET", f"/openai/v1/evals/{NEW_EVAL}/runs/{NEW_RUN}", self.get_run)
        self.api = api

    def import_eval(self, seen: Seen):
        saved = seen.json()
        return reply(200, {**saved, "id": NEW_EVAL, "imported_from": saved["id"]})

    def upload(self, seen: Seen):
        fields = form(seen)
        assert fields["purpose"] == (None, b"evals")
        file_id = f"file-{len(self.files):032x}"
        self.files[file_id] = fields["file"][1]
        self.api.on("DELETE", f"/openai/v1/files/{file_id}", self.delete)
        return reply(200, {"object": "file", "id": file_id, "filename": fields["file"][0]})

    def delete(self, seen: Seen):
        self.deleted.append(seen.path.rsplit("/", 1)[1])
        return reply(200, {"deleted": True})

    def import_run(self, seen: Seen):
        body = seen.json()
        run = body["run"]
        return reply(
            200,
            {
                **run,
                "id": NEW_RUN,
                "eval_id": NEW_EVAL,
                "imported_from": run["id"],
                "status": "queued",
                "result_counts": {},
            },
        )

    def get_run(self, seen: Seen):
        self.polls -= 1
        status = "in_progress" if self.polls > 0 else "completed"
        return reply(
            200, {"id": NEW_RUN, "status": status, "result_counts": COUNTS if status == "completed" else {}}
        )


def test_the_command_imports_each_eval_then_its_runs_with_their_items(tmp_path, capsys):
    saved_dir(tmp_path)
    with fake_api() as api:
        server = Server(api, polls=2)
        code = run_cli(api.url, "import", "openai-evals", str(tmp_path), "--wait", "--poll-interval", "0.01")
        out, err = capsys.readouterr()
        assert code == 0, err
        [eval_call] = api.calls("POST", "/openai/v1/imports/evals")
        assert eval_call.json() == an_eval()  # sent as saved
        [run_call] = api.calls("POST", f"/openai/v1/imports/evals/{NEW_EVAL}/runs")
        assert run_call.json()["run"] == a_run() and run_call.json()["output_item_files"] == list(
            server.files
        )
        [content] = server.files.values()
        assert [json.loads(line) for line in content.splitlines()] == [an_item(n) for n in range(3)]
        assert server.deleted == list(server.files)  # the upload files are not left behind
        assert all(s.headers["authorization"].startswith("Bearer ask_") for s in api.seen)
    assert f"eval {EVAL_ID} → {NEW_EVAL}  capitals" in out
    assert f"  run {RUN_ID} → {NEW_RUN}  logged  (3 output items)" in out
    assert f"run {NEW_RUN} completed: 2 passed, 1 failed, 0 errored, 3 total  (as saved)" in out
    assert out.rstrip().endswith("imported 1 eval, 1 run, 3 output items")
    assert "next: assay runs get dddddddd-dddd-dddd-dddd-dddddddddddd" in err


def test_json_prints_one_document_mapping_old_ids_to_new(tmp_path, capsys):
    saved_dir(tmp_path)
    write(tmp_path, "other.json", json.dumps({"object": "file", "id": "file-1"}))
    with fake_api() as api:
        Server(api)
        assert run_cli(api.url, "--json", "import", "openai-evals", str(tmp_path)) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["ids"] == {EVAL_ID: NEW_EVAL, RUN_ID: NEW_RUN} and doc["dry_run"] is False
    assert doc["counts"] == {
        "evals": 1,
        "runs": 1,
        "items": 3,
        "already_imported": 0,
        "refused": 0,
        "skipped": 1,
        "duplicates": 0,
    }
    assert doc["runs"][0]["status"] == "queued" and doc["runs"][0]["saved_result_counts"] == COUNTS
    assert doc["skipped"] == [
        {
            "where": str(tmp_path / "other.json"),
            "kind": "file",
            "id": None,
            "reason": "object 'file' is not an eval, eval.run or eval.run.output_item",
        }
    ]
    assert f"warning: {tmp_path / 'other.json'}: skipped: object 'file'" in captured.err


def test_a_dry_run_reads_and_reports_without_a_request_or_a_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ASSAY_API_KEY", raising=False)
    saved_dir(tmp_path)
    write(
        tmp_path, "lonely.json", json.dumps([a_run("evalrun_lonely"), a_run("evalrun_orphan", "eval_gone")])
    )
    with fake_api() as api:
        from assay import cli

        assert cli.main(["--url", api.url, "import", "openai-evals", str(tmp_path), "--dry-run"]) == 0
        assert api.seen == []
    out, err = capsys.readouterr()
    assert f"eval {EVAL_ID}  capitals\n  run {RUN_ID}  logged  (3 output items, 1 upload file)" in out
    assert (
        "dry run: would import 1 eval, 1 run, 3 output items; skipped 2 — runs without output items: 1, "
        in out
    )
    assert "runs whose eval is not in the directory: 1" in out
    assert "skipped evalrun_lonely: a run without output items: nothing to replay" in err
    assert "skipped evalrun_orphan: a run of eval eval_gone, which is not in the directory" in err


def test_a_run_too_large_for_one_file_is_uploaded_in_several(tmp_path, capsys, monkeypatch):
    saved_dir(tmp_path, items=7)
    with read_history(tmp_path) as history:
        size = len(next(history.item_lines(RUN_ID)))
    monkeypatch.setattr(cli_imports, "FILE_LIMIT", 2 * size + 10)
    monkeypatch.setattr("assay.openai_import.FILE_LIMIT", 2 * size + 10)
    with fake_api() as api:
        server = Server(api)
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path)) == 0
        [run_call] = api.calls("POST", f"/openai/v1/imports/evals/{NEW_EVAL}/runs")
        assert len(run_call.json()["output_item_files"]) == 4
        assert [len(c.splitlines()) for c in server.files.values()] == [2, 2, 2, 1]
    assert "file 4 of 4" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    ['{"object": "eval", "id": "eval_1",}', b'{"object": "eval", "name": "\xff"}'],
)
def test_a_bad_file_is_exit_2_naming_it_before_any_request(tmp_path, capsys, content):
    saved_dir(tmp_path)
    write(tmp_path, "zz.json", content)
    with fake_api() as api:
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path)) == 2
        assert api.seen == []
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'zz.json'}:1: not ") and "nothing was imported" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_a_missing_or_empty_dir_or_one_without_evals_is_exit_2(tmp_path, capsys):
    with fake_api() as api:
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path / "nope")) == 2
        assert capsys.readouterr().err == f"error: {tmp_path / 'nope'}: no such directory\n"
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path)) == 2
        assert "no .json or .jsonl files" in capsys.readouterr().err
        write(tmp_path, "runs.jsonl", jsonl(a_run(), an_item(0)))
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path)) == 2
        assert "no saved eval in 1 file(s) (1 run(s), 0 output item(s) found)" in capsys.readouterr().err
        assert api.seen == []


def test_a_refused_run_prints_the_message_and_param_the_rest_is_imported_exit_2(tmp_path, capsys):
    saved_dir(tmp_path)
    second = "evalrun_" + "e" * 32
    write(tmp_path, "second.jsonl", jsonl(a_run(second), an_item(0, second)))
    refusal = {
        "error": {
            "message": "output_item_files: line 1 of file-0 is not a saved output item",
            "type": "invalid_request_error",
            "param": "output_item_files",
            "code": "validation.invalid_request",
        }
    }
    with fake_api() as api:
        server = Server(api)
        good = server.import_run

        def import_run(seen: Seen):
            if seen.json()["run"]["id"] == second:
                return reply(400, refusal)
            return good(seen)

        api.on("POST", f"/openai/v1/imports/evals/{NEW_EVAL}/runs", import_run)
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path)) == 2
        assert sorted(server.deleted) == sorted(server.files)  # the refused run's file too
    out, err = capsys.readouterr()
    assert (
        f"error: run {second} ({tmp_path / 'second.jsonl'}:1) refused: output_item_files: line 1 of file-0 "
        "is not a saved output item (param output_item_files) — validation.invalid_request, HTTP 400"
    ) in err
    assert f"run {RUN_ID} → {NEW_RUN}" in out and "imported 1 eval, 1 run, 3 output items; 1 refused" in out


def test_a_rejected_key_stops_the_import_at_once(tmp_path, capsys):
    saved_dir(tmp_path)
    with fake_api() as api:
        body = {
            "error": {
                "message": "invalid API key",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        api.on("GET", "/openai/v1/evals", reply(401, body))
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path)) == 2
        assert not [s for s in api.seen if s.method == "POST"]
    err = capsys.readouterr().err
    assert err.startswith("error: invalid API key\n  code invalid_api_key · HTTP 401")


def test_what_was_imported_before_is_not_imported_twice(tmp_path, capsys):
    saved_dir(tmp_path)
    with fake_api() as api:
        Server(api, existing=[{"object": "eval", "id": NEW_EVAL, "imported_from": EVAL_ID}])
        api.on(
            "GET",
            f"/openai/v1/evals/{NEW_EVAL}/runs",
            reply(
                200,
                page({"object": "eval.run", "id": NEW_RUN, "imported_from": RUN_ID, "status": "completed"}),
            ),
        )
        assert run_cli(api.url, "import", "openai-evals", str(tmp_path)) == 0
        assert not [s for s in api.seen if s.method == "POST"]
    out = capsys.readouterr().out
    assert f"eval {EVAL_ID} → {NEW_EVAL}  capitals  (already imported)" in out
    assert f"run {RUN_ID} → {NEW_RUN}  logged  (3 output items, already imported)" in out
    assert "imported 0 evals, 0 runs, 0 output items; 2 already imported before" in out


def test_wait_exits_3_when_a_run_is_still_going_at_the_timeout(tmp_path, capsys):
    saved_dir(tmp_path)
    with fake_api() as api:
        Server(api, polls=10**6)
        argv = [
            "import",
            "openai-evals",
            str(tmp_path),
            "--wait",
            "--timeout",
            "0.2",
            "--poll-interval",
            "0.05",
        ]
        assert run_cli(api.url, *argv) == 3
    err = capsys.readouterr().err
    assert "1 imported run(s) still going after 0.2 s" in err


def test_wait_exits_2_when_an_imported_run_failed(tmp_path, capsys):
    saved_dir(tmp_path)
    with fake_api() as api:
        Server(api)
        api.on(
            "GET",
            f"/openai/v1/evals/{NEW_EVAL}/runs/{NEW_RUN}",
            reply(200, {"id": NEW_RUN, "status": "failed"}),
        )
        assert (
            run_cli(api.url, "import", "openai-evals", str(tmp_path), "--wait", "--poll-interval", "0.01")
            == 2
        )
    assert f"error: 1 imported run(s) did not complete: {NEW_RUN} failed" in capsys.readouterr().err
