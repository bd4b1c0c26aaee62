"""The client over a real loopback HTTP server: retries, typed errors, paging, redirects, uploads, waits."""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
import urllib.error
from contextlib import ExitStack
from pathlib import Path

import pytest

from assay import (
    Client,
    ConfigurationError,
    ConflictError,
    ConnectionFailedError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RunTimeoutError,
    ServerError,
)
from assay._http import RetryPolicy, connection_refused, parse_retry_after

from cli_support import RUN_ID, run_json
from fake_api import Seen, envelope, fake_api, reply


def client_for(url: str, sleeps: list[float] | None = None, max_retries: int = 3) -> Client:
    policy = RetryPolicy(
        max_retries=max_retries, sleep=(sleeps.append if sleeps is not None else lambda s: None)
    )
    return Client(url, "ask_test_key_0123456789abcdef", retry=policy)


def test_client_reads_url_and_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASSAY_URL", "http://assay.example:8080/")
    monkeypatch.setenv("ASSAY_API_KEY", "ask_from_env")
    client = Client()
    assert client.base_url == "http://assay.example:8080" and client.api_key == "ask_from_env"
    monkeypatch.delenv("ASSAY_API_KEY")
    with pytest.raises(ConfigurationError, match="ASSAY_API_KEY"):
        Client().get_run(RUN_ID)
    monkeypatch.setenv("ASSAY_URL", "file:///etc/passwd")
    with pytest.raises(ConfigurationError):
        Client()


def test_client_retries_429_honouring_retry_after_then_succeeds():
    with fake_api() as api:
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}",
            [
                (
                    429,
                    {"Retry-After": "2", "Content-Type": "application/json"},
                    b'{"code":"quota.limit_exceeded"}',
                ),
                (429, {"Retry-After": "0.5"}, b""),
                reply(200, run_json("running")),
            ],
        )
        sleeps: list[float] = []
        run = client_for(api.url, sleeps).get_run(RUN_ID)
    assert run.status == "running" and len(api.seen) == 3
    assert sleeps == [2.0, 0.5]
    assert all(s.headers["authorization"] == "Bearer ask_test_key_0123456789abcdef" for s in api.seen)


def test_client_backoff_is_exponential_with_full_jitter_when_no_retry_after():
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = [policy.backoff(attempt) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling and min(delays) < 0.2 * ceiling  # spread over [0, ceiling]


def test_client_gives_up_after_max_retries_with_a_typed_error_carrying_code_and_request_id():
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", envelope(500, "server.internal_error", "boom", "req-500"))
        sleeps: list[float] = []
        with pytest.raises(ServerError) as caught:
            client_for(api.url, sleeps, max_retries=2).get_run(RUN_ID)
    assert len(api.seen) == 3 and len(sleeps) == 2
    assert caught.value.code == "server.internal_error" and caught.value.request_id == "req-500"
    assert caught.value.status == 500 and "boom" in str(caught.value)


def test_client_does_not_repeat_a_plain_post_after_a_500_but_does_after_429():
    with fake_api() as api:
        api.on("POST", "/v1/datasets", [envelope(500, "server.internal_error"), reply(201, {"id": "d1"})])
        with pytest.raises(ServerError):
            client_for(api.url).create_dataset("x")
        assert len(api.calls("POST", "/v1/datasets")) == 1
        api.on("POST", "/v1/evals", [envelope(429, "quota.limit_exceeded"), reply(201, {"id": "e1"})])
        assert client_for(api.url).create_eval("x").id == "e1"
        assert len(api.calls("POST", "/v1/evals")) == 2


def test_schedule_run_sends_one_idempotency_key_and_retries_a_500_with_it():
    with fake_api() as api:
        api.on(
            "POST",
            "/v1/datasets/d1/runs",
            [envelope(502, "server.internal_error"), reply(202, run_json("pending"))],
        )
        run = client_for(api.url).schedule_run("d1", "ev1", batch_size=10)
    calls = api.calls("POST", "/v1/datasets/d1/runs")
    assert run.status == "pending" and len(calls) == 2
    keys = {c.headers["idempotency-key"] for c in calls}
    assert len(keys) == 1 and len(keys.pop()) == 36
    assert calls[0].json() == {"eval_version_id": "ev1", "batch_size": 10}


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "validation.invalid_request", InvalidRequestError),
        (403, "auth.insufficient_permissions", PermissionDeniedError),
        (404, "resource.not_found", NotFoundError),
        (409, "resource.conflict", ConflictError),
        (429, "quota.limit_exceeded", QuotaExceededError),
    ],
)
def test_client_maps_envelope_codes_to_typed_errors(status, code, error):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", envelope(status, code, "what was wrong", "req-9"))
        with pytest.raises(error) as caught:
            client_for(api.url, max_retries=0).get_run(RUN_ID)
    assert caught.value.code == code and caught.value.request_id == "req-9" and caught.value.status == status


def test_client_wraps_a_refused_connection_after_retrying_idempotent_requests():
    sleeps: list[float] = []
    with fake_api() as api:
        url = api.url
    with pytest.raises(ConnectionFailedError):
        client_for(url, sleeps, max_retries=2).get_run(RUN_ID)
    assert len(sleeps) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_client_retries_a_refused_post_because_nothing_was_sent_and_succeeds_once_the_server_is_up():
    # GIVEN nothing listening yet (a stack still starting) and a server that comes up during the backoff
    port = _free_port()
    servers = ExitStack()
    sleeps: list[float] = []

    def sleep_then_start(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:  # two refused attempts, then the server starts
            api = servers.enter_context(fake_api(port))
            api.on("POST", "/v1/datasets", reply(201, {"id": "d1", "name": "x"}))
            started.append(api)

    started: list = []
    policy = RetryPolicy(max_retries=4, sleep=sleep_then_start)
    with servers:
        # WHEN a plain POST (not idempotent) is sent
        dataset = Client(f"http://127.0.0.1:{port}", "ask_k", retry=policy).create_dataset("x")
    # THEN it was retried after each refusal and reached the server exactly once
    assert dataset.id == "d1" and len(sleeps) == 2
    assert len(started[0].calls("POST", "/v1/datasets")) == 1


def test_client_gives_up_on_a_refused_post_after_max_retries():
    sleeps: list[float] = []
    with pytest.raises(ConnectionFailedError, match="POST .*/v1/datasets"):
        client_for(f"http://127.0.0.1:{_free_port()}", sleeps, max_retries=2).create_dataset("x")
    assert len(sleeps) == 2


def test_client_does_not_repeat_a_post_whose_connection_broke_after_sending():
    # A server that reads the whole request, then hangs up without answering: the outcome is unknown.
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                seen.append(conn.recv(65536))

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    sleeps: list[float] = []
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(ConnectionFailedError):
            client_for(url, sleeps, max_retries=3).create_dataset("x")
        assert sleeps == [] and len(seen) == 1 and seen[0].startswith(b"POST /v1/datasets")
        # while a GET on the same broken server is repeated
        with pytest.raises(ConnectionFailedError):
            client_for(url, sleeps, max_retries=3).get_run(RUN_ID)
        assert len(sleeps) == 3
    finally:
        listener.close()


def test_connection_refused_is_recognised_wrapped_or_bare_and_nothing_else():
    refused = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert connection_refused(refused) and connection_refused(urllib.error.URLError(refused))
    assert connection_refused(OSError(errno.ECONNREFUSED, "refused"))
    for other in (
        ConnectionResetError(errno.ECONNRESET, "reset"),
        TimeoutError("timed out"),
        urllib.error.URLError("no host"),
        urllib.error.URLError(OSError(errno.EHOSTUNREACH, "x")),
    ):
        assert not connection_refused(other)


def test_iterators_follow_next_cursor_until_it_is_null():
    pages = {None: (["a", "b"], "c1"), "c1": (["c", "d"], "c2"), "c2": (["e"], None)}

    def page(seen: Seen):
        cursor = seen.query.get("cursor", [None])[0]
        ids, nxt = pages[cursor]
        return reply(
            200, {"items": [{"id": i, "name": i} for i in ids], "count": len(ids), "next_cursor": nxt}
        )

    with fake_api() as api:
        api.on("GET", "/v1/datasets", page)
        names = [d.name for d in client_for(api.url).iter_datasets(page_size=2)]
    assert names == ["a", "b", "c", "d", "e"]
    assert [s.query.get("cursor") for s in api.seen] == [None, ["c1"], ["c2"]]
    assert all(s.query["limit"] == ["2"] for s in api.seen)


def test_iter_evaluations_sends_filters_with_json_booleans():
    with fake_api() as api:
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}/evaluations",
            reply(
                200,
                {
                    "items": [{"id": "e1", "record_id": "r1", "score": 0.0, "is_passed": False}],
                    "count": 1,
                    "next_cursor": None,
                },
            ),
        )
        items = list(client_for(api.url).iter_evaluations(RUN_ID, metric="exact", passed=False))
    assert items[0].record_id == "r1" and items[0].is_passed is False
    assert api.seen[0].query["passed"] == ["false"] and api.seen[0].query["metric"] == ["exact"]


def test_download_export_follows_the_303_without_sending_the_api_key():
    with fake_api() as api:
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}/export",
            (303, {"Location": f"{api.url}/bucket/export.jsonl?X-Amz-Signature=abc"}, b""),
        )
        api.on(
            "GET", "/bucket/export.jsonl", (200, {"Content-Type": "application/x-ndjson"}, b'{"id":"e1"}\n')
        )
        content = client_for(api.url).download_export(RUN_ID, "jsonl")
    assert content == b'{"id":"e1"}\n'
    api_call, s3_call = api.seen
    assert api_call.query["format"] == ["jsonl"] and "authorization" in api_call.headers
    assert "authorization" not in s3_call.headers and s3_call.query["X-Amz-Signature"] == ["abc"]


def test_download_export_writes_an_inline_export_to_a_path(tmp_path):
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}/export", (200, {"Content-Type": "text/csv"}, b"id\r\ne1\r\n"))
        target = client_for(api.url).download_export(RUN_ID, "csv", tmp_path / "run.csv")
    assert Path(target).read_bytes() == b"id\r\ne1\r\n"


def test_wait_for_run_polls_until_terminal_and_reports_progress():
    with fake_api() as api:
        api.on(
            "GET",
            f"/v1/eval-runs/{RUN_ID}",
            [
                reply(200, run_json("pending")),
                reply(200, run_json("running", 2)),
                reply(200, run_json("completed", 4, verdict="pass")),
            ],
        )
        seen: list[tuple[str, int]] = []
        sleeps: list[float] = []
        run = client_for(api.url).wait_for_run(
            RUN_ID,
            poll_interval=1.0,
            sleep=sleeps.append,
            on_progress=lambda r: seen.append((r.status, r.scored_count)),
        )
    assert run.status == "completed" and run.verdict == "pass"
    assert seen == [("pending", 0), ("running", 2), ("completed", 4)]
    assert sleeps == [0.25, 0.5]  # polls start quick and back off


def test_wait_for_run_raises_run_timeout_with_the_last_run():
    clock = iter([0.0, 0.0, 1.0, 1.0, 2.5, 2.5]).__next__
    with fake_api() as api:
        api.on("GET", f"/v1/eval-runs/{RUN_ID}", reply(200, run_json("running", 1)))
        with pytest.raises(RunTimeoutError) as caught:
            client_for(api.url).wait_for_run(RUN_ID, timeout=2.0, clock=clock, sleep=lambda s: None)
    assert caught.value.run.status == "running" and "1/4" in str(caught.value)


def test_upload_file_converts_csv_to_jsonl_and_puts_it_to_the_presigned_url(tmp_path):
    source = tmp_path / "data.csv"
    source.write_text("id,output,golden_answer,lang\nq1,Paris,Paris,fr\nq2,,Rome,it\n")
    progress: list[tuple[int, int]] = []
    with fake_api() as api:
        api.on(
            "POST",
            "/v1/datasets/d1/uploads",
            reply(
                201,
                {
                    "upload_id": "u1",
                    "url": f"{api.url}/bucket/up?sig=1",
                    "method": "PUT",
                    "headers": {"Content-Type": "application/x-ndjson"},
                    "expires_at": "2030-01-01T00:00:00Z",
                },
            ),
        )
        api.on("PUT", "/bucket/up", (200, {}, b""))
        api.on("POST", "/v1/datasets/d1/versions", reply(201, {"id": "v1", "version": 1, "record_count": 2}))
        version = client_for(api.url).upload_file(
            "d1", source, via="upload", progress=lambda d, t: progress.append((d, t))
        )
    put = api.calls("PUT", "/bucket/up")[0]
    assert version.record_count == 2
    assert [json.loads(line) for line in put.body.splitlines()] == [
        {"id": "q1", "output": "Paris", "golden_answer": "Paris", "metadata": {"lang": "fr"}},
        {"id": "q2", "golden_answer": "Rome", "metadata": {"lang": "it"}},
    ]
    assert put.headers["content-type"] == "application/x-ndjson" and "authorization" not in put.headers
    assert api.calls("POST", "/v1/datasets/d1/versions")[0].json() == {"upload_id": "u1"}
    assert progress[-1] == (len(put.body), len(put.body))


def test_upload_file_sends_small_files_inline(tmp_path):
    source = tmp_path / "data.json"
    source.write_text(json.dumps({"records": [{"id": "a", "output": "x"}]}))
    with fake_api() as api:
        api.on("POST", "/v1/datasets/d1/versions", reply(201, {"id": "v1", "version": 3, "record_count": 1}))
        version = client_for(api.url).upload_file("d1", source)
    assert version.version == 3 and api.seen[0].json() == {"records": [{"id": "a", "output": "x"}]}


def test_compare_runs_parses_the_comparison_shape():
    body = {
        "run_id": "r2",
        "baseline_run_id": "r1",
        "confidence_level": 0.95,
        "method": "paired bootstrap",
        "verdict": "regressed",
        "metrics": [
            {
                "metric_name": "exact",
                "run": {"mean": 0.5, "pass_rate": 0.5, "count": 4},
                "baseline": {"mean": 1.0, "pass_rate": 1.0, "count": 4},
                "mean_delta": -0.5,
                "pass_rate_delta": -0.5,
                "ci_low": -0.9,
                "ci_high": -0.1,
                "p_value": 0.01,
                "significant": True,
                "paired_count": 4,
                "improved": 0,
                "regressed": 2,
                "unchanged": 2,
            }
        ],
        "regressions": [
            {
                "record_id": "q1",
                "metric_name": "exact",
                "score": 0.0,
                "baseline_score": 1.0,
                "delta": -1.0,
                "is_passed": False,
                "baseline_is_passed": True,
            }
        ],
        "improvements": [],
        "unmatched": {"run_only": 0, "baseline_only": 1},
    }
    with fake_api() as api:
        api.on("GET", "/v1/eval-runs/r2/compare", reply(200, body))
        comp = client_for(api.url).compare_runs("r2", "r1")
    assert api.seen[0].query == {"baseline": ["r1"]}
    assert comp.verdict == "regressed" and comp.metrics[0].baseline.mean == 1.0
    assert comp.metrics[0].significant and comp.regressions[0].record_id == "q1"
    assert comp.unmatched == {"run_only": 0, "baseline_only": 1}


def test_parse_retry_after_accepts_seconds_and_http_dates_and_caps_them():
    now = time.time()
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(
        time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 10)), now=now
    ) == pytest.approx(10, abs=1.01)
    assert parse_retry_after("100000") == 60.0 and parse_retry_after("soon") is None
    assert parse_retry_after(None) is None and parse_retry_after("-5") == 0.0
