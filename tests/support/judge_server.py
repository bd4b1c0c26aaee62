"""A real OpenAI-compatible chat-completions server on loopback, answering as scripted.

Used by the judge unit tests and by the end-to-end LLM-judge run on the local stack: the
judge client under test speaks real HTTP to it. Replies come from ``replies`` in order
(each ``(status, body)`` or ``("slow", seconds)``), else from ``respond(request_body)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GOOD = {"score": 0.9, "label": "correct", "reasoning": "Same fact as the reference.", "confidence": 0.8}


def completion(content: str, prompt_tokens: int = 120, completion_tokens: int = 30) -> dict:
    return {
        "id": "c1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class Script:
    def __init__(self, respond: Callable[[dict], tuple[int, Any]] | None = None) -> None:
        self.replies: list[tuple] = []
        self.requests: list[dict] = []
        self.respond = respond
        self.lock = threading.Lock()

    def next_reply(self, body: dict) -> tuple[Any, Any]:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        if self.respond is None:
            raise AssertionError("the judge server got a request it had no reply for")
        return self.respond(body)


@contextmanager
def judge_server(respond: Callable[[dict], tuple[int, Any]] | None = None) -> Iterator[tuple[str, Script]]:
    """Serve on 127.0.0.1 (a free port); yields (base URL ending in /v1, script)."""
    script = Script(respond)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            with script.lock:
                script.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                )
            kind, payload = script.next_reply(body)
            if kind == "slow":
                time.sleep(payload)
                kind, payload = 200, completion(json.dumps(GOOD))
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            try:
                self.send_response(kind)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (the slow case)
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    finally:
        httpd.shutdown()
        httpd.server_close()
