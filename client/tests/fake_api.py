"""A scripted HTTP server on loopback for the client's unit tests (a real socket, not a mock)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[[Seen], Reply]


def reply(status: int, body: Any = None, **headers: str) -> Reply:
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return (
        status,
        {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}},
        data,
    )


def envelope(status: int, code: str, message: str = "nope", request_id: str = "req-123") -> Reply:
    return reply(status, {"error": message, "code": code, "details": {}, "request_id": request_id})


@dataclass
class FakeApi:
    url: str
    routes: dict[tuple[str, str], Handler | list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, handler: Handler | list[Reply] | Reply) -> None:
        """A handler, or a list of replies served in order (the last one repeats)."""
        self.routes[(method, path)] = [handler] if isinstance(handler, tuple) else handler

    def calls(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]


@contextmanager
def fake_api(port: int = 0) -> Iterator[FakeApi]:
    """A server on ``port`` of 127.0.0.1 (0: a free one)."""
    api = FakeApi(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
            api.seen.append(seen)
            route = api.routes.get((self.command, parts.path))
            if route is None:
                status, headers, body = envelope(404, "resource.not_found", "no route")
            elif isinstance(route, list):
                status, headers, body = route.pop(0) if len(route) > 1 else route[0]
            else:
                status, headers, body = route(seen)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------- runs that generate
# The request shapes of the real API (docs/openapi.json): the fake refuses a field the API does
# not take (its request models forbid extra fields), so a body the CLI builds is one it accepts.
OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())


def schema_fields(name: str) -> set[str]:
    return set(OPENAPI["components"]["schemas"][name]["properties"])


def unknown_fields(body: dict[str, Any]) -> list[str]:
    """What a ``ScheduleEvalRunRequest`` body holds that the API would refuse (422)."""
    bad = [k for k in body if k not in schema_fields("ScheduleEvalRunRequest")]
    generation = body.get("generation") or {}
    bad += [f"generation.{k}" for k in generation if k not in schema_fields("GenerationSettings")]
    for message in generation.get("messages") or []:
        bad += [f"generation.messages.{k}" for k in message if k not in schema_fields("ChatMessage")]
    if "model" in generation and not generation["model"]:
        bad.append("generation.model")
    return bad


def generated_run_id(index: int) -> str:
    return f"44444444-4444-4444-8444-{index:012d}"


def serve_runs(
    api: FakeApi,
    dataset_id: str,
    finish: Callable[[dict[str, Any], int], dict[str, Any]],
    *,
    running_polls: int = 1,
) -> list[dict[str, Any]]:
    """``POST /v1/datasets/{dataset_id}/runs`` schedules run N (ids from ``generated_run_id``), a
    400 for a field the API does not take; its ``GET /v1/eval-runs/{id}`` answers ``running``
    ``running_polls`` times, then ``finish(body, N)`` merged over the run (the new fields:
    ``generation``, ``per_model_usage``, ``cost_breakdown``, ``cache_hits``…). Returns the bodies
    received, in order."""
    bodies: list[dict[str, Any]] = []
    lock = threading.Lock()

    def schedule(seen: Seen) -> Reply:
        body = seen.json()
        bad = unknown_fields(body)
        if bad:
            return envelope(400, "request.invalid", f"unknown fields: {', '.join(bad)}")
        with lock:
            index = len(bodies)
            bodies.append(body)
        run = {
            "id": generated_run_id(index),
            "name": body.get("name"),
            "status": "pending",
            "dataset_id": dataset_id,
            "eval_version_id": body["eval_version_id"],
            "item_count": 4,
            "completed_count": 0,
            "failed_count": 0,
            "generation": body.get("generation"),
            "cache": body.get("cache", True),
            "cache_hits": 0,
            "cache_misses": 0,
            "per_model_usage": None,
            "cost_breakdown": None,
            "total_cost": 0.0,
        }
        running = [reply(200, {**run, "status": "running", "completed_count": 2})] * running_polls
        api.on("GET", f"/v1/eval-runs/{run['id']}", [*running, reply(200, {**run, **finish(body, index)})])
        return reply(202, run)

    api.on("POST", f"/v1/datasets/{dataset_id}/runs", schedule)
    return bodies
