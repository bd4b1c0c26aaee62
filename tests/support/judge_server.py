"""A real OpenAI-compatible chat-completions server on loopback.

Two ways to run it, the same HTTP front:

* ``judge_server(respond=None)`` — **scripted**: used by the judge client tests and the
  end-to-end LLM-judge run. Replies come from ``replies`` in order (each ``(status, body)``
  or ``("slow", seconds)``), else from ``respond(request_body)``.
* ``model_server(rpm=None, tpm=None, latency=0.0, respond=None)`` — **a provider**: the
  same script first (a malformed reply, a 500, stays one ``replies.append`` away), then
  ``respond``, then a deterministic default: a generation request is answered
  ``generated_text(last user message, max_tokens)``; a judge request (a system prompt
  asking for a JSON object with ``"score"``) gets a valid verdict (``judge_verdict``).
  Every default reply carries ``usage`` counted as the limiter counts: prompt tokens are
  the messages' characters / 4 rounded up, completion tokens the reply's.

  It enforces requests/min and tokens/min as OpenAI does, with the refill of
  ``domain.ratelimit`` (implemented again here, so a mistake there is not mirrored): a
  bucket per axis refilling at limit/60 per second, holding one second's worth (at least
  one request); a request is counted at arrival as its prompt's characters / 4 plus the
  ``max_tokens`` it asks, and the tokens its reply did not use are given back when it is
  answered. A request the buckets cannot take is refused *before* it is served: 429 with
  ``Retry-After`` (whole seconds), ``retry-after-ms`` and OpenAI's error body. A request
  larger than the whole tokens-per-minute limit is refused for good, as OpenAI does.

  Counters: ``received``, ``served``, ``rate_limited`` (429s sent), ``max_in_flight``,
  ``over_limit_served`` — served requests that put any window of 1 s or 60 s over the
  limit plus one second's worth, recounted from the served timestamps independently of
  the buckets: it stays 0 by construction, and a test fails if it does not — and
  ``max_requests_in_window(seconds=60)``.

Both also serve **embeddings** at ``/v1/embeddings`` (``{"model", "input": [texts]}``):
``embedding_replies`` first (scripted ``(status, body)``, e.g. a 429), else deterministic
vectors (``hashed_embedding``: the same as ``tests.support.fakes.FakeJudgeClient``'s) with
``usage.prompt_tokens`` the texts' characters / 4; not rate limited, and ``respond`` is not
asked.

``ModelServer.handle`` is the whole server without the socket (the unit tests call it
with a fake clock); the HTTP handler only reads the request and writes what it returns.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
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


# (status, headers, body bytes) of one HTTP reply
Answer = tuple[int, dict[str, str], bytes]


def _encode(payload: Any) -> bytes:
    return (payload if isinstance(payload, str) else json.dumps(payload)).encode()


def hashed_embedding(text: str, dims: int = 64) -> list[float]:
    """A deterministic embedding: the text's lowercase words hashed into ``dims`` counts,
    normalized to length 1 (so equal texts have cosine 1, texts sharing no word about 0).
    A text without a word counts its characters instead; an empty text is the zero vector."""
    words = re.findall(r"\w+", text.lower()) or list(text)
    vector = [0.0] * dims
    for word in words:
        vector[int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "big") % dims] += 1.0
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def embedding_reply(body: dict) -> tuple[int, dict]:
    """OpenAI's embeddings reply to ``body``: a ``hashed_embedding`` per input."""
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    tokens = sum(tokens_of(len(str(t))) for t in texts)
    return 200, {
        "object": "list",
        "model": body.get("model"),
        "data": [
            {"object": "embedding", "index": i, "embedding": hashed_embedding(str(t))}
            for i, t in enumerate(texts)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


class Script:
    def __init__(self, respond: Callable[[dict], tuple[int, Any]] | None = None) -> None:
        self.replies: list[tuple] = []
        self.embedding_replies: list[tuple] = []  # scripted answers to /embeddings
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

    def record(self, path: str, auth: str | None, body: dict) -> None:
        with self.lock:
            self.requests.append({"path": path, "auth": auth, "body": body})

    def reply(self, body: dict) -> tuple[int, Any]:
        """The scripted reply, a ``("slow", s)`` one served after ``s`` seconds."""
        kind, payload = self.next_reply(body)
        if kind == "slow":
            time.sleep(payload)
            kind, payload = 200, completion(json.dumps(GOOD))
        return kind, payload

    def handle(self, path: str, auth: str | None, body: dict) -> Answer:
        self.record(path, auth, body)
        status, payload = self.reply(body)
        return status, {}, _encode(payload)

    def handle_embeddings(self, path: str, auth: str | None, body: dict) -> Answer:
        """``/embeddings``: the next of ``embedding_replies`` (``(status, body)`` or
        ``(status, body, headers)``), else ``embedding_reply``."""
        self.record(path, auth, body)
        with self.lock:
            scripted = self.embedding_replies.pop(0) if self.embedding_replies else None
        if scripted is None:
            status, payload = embedding_reply(body)
            return status, {}, _encode(payload)
        status, payload, *rest = scripted
        return status, dict(rest[0]) if rest else {}, _encode(payload)


# ------------------------------------------------------------------ the provider's answers
def tokens_of(chars: int) -> int:
    """Characters as tokens, the way the limiter and the usage count them: / 4, rounded up."""
    return -(-max(0, chars) // 4)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def prompt_chars(body: dict) -> int:
    return sum(len(_text(m.get("content"))) for m in body.get("messages") or [] if isinstance(m, dict))


def requested_max_tokens(body: dict) -> int:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_TOKENS


# What a request that names no max_tokens is counted for (and may be answered with).
DEFAULT_MAX_TOKENS = 1024


def last_user_message(body: dict) -> str:
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def generated_text(prompt: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> tuple[str, str]:
    """The default answer to a generation request whose last user message is ``prompt``,
    and its finish reason: ``"Answer: " + prompt``, cut to ``max_tokens`` tokens
    (``"length"``) when longer."""
    text = f"Answer: {prompt}"
    if tokens_of(len(text)) > max_tokens:
        return text[: max_tokens * 4], "length"
    return text, "stop"


def is_judge_request(body: dict) -> bool:
    return any(
        isinstance(m, dict) and m.get("role") == "system" and '"score"' in _text(m.get("content"))
        for m in body.get("messages") or []
    )


_SCALE = re.compile(r"`score` as a number from (-?\d+(?:\.\d+)?) to (-?\d+(?:\.\d+)?)")
_LABELS = re.compile(r"`label` as exactly one of (\[.*?\])")


def judge_verdict(body: dict) -> dict:
    """The default judge's verdict: the best score the prompt allows (the top of a rubric's
    scale, else 1), the first label it lists (else ``"pass"``)."""
    text = "\n".join(_text(m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict))
    score = 1.0
    if scale := _SCALE.search(text):
        score = float(scale.group(2))
    label = "pass"
    if labels := _LABELS.search(text):
        with suppress(ValueError, IndexError):
            label = str(json.loads(labels.group(1))[0])
    return {"score": score, "label": label, "reasoning": "Deterministic test verdict.", "confidence": 0.9}


def default_reply(body: dict) -> tuple[int, dict]:
    """A provider's answer: a judge verdict or the generated text, with its usage."""
    max_tokens = requested_max_tokens(body)
    if is_judge_request(body):
        text, finish = json.dumps(judge_verdict(body)), "stop"
    else:
        text, finish = generated_text(last_user_message(body), max_tokens)
        if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
            text = json.dumps({"answer": text})
    return 200, {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": tokens_of(prompt_chars(body)),
            "completion_tokens": max(1, tokens_of(len(text))),
            "total_tokens": tokens_of(prompt_chars(body)) + max(1, tokens_of(len(text))),
        },
    }


# ------------------------------------------------------------------ the provider's limits
class Bucket:
    """One axis: refills at ``per_minute / 60`` per second up to one second's worth (at
    least ``floor``). A request passes when the bucket holds it — or, larger than the
    bucket, when the bucket is full (then it goes into debt)."""

    def __init__(self, per_minute: int, now: float, floor: float = 0.0) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(floor, self.rate)
        self.level = self.capacity
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
            self.at = now

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` could pass (0: now)."""
        self._refill(now)
        need = min(amount, self.capacity) - self.level
        return 0.0 if need <= 1e-9 else need / self.rate

    def take(self, amount: float) -> None:
        self.level -= amount

    def give(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)


# The windows the served requests are recounted over (``over_limit_served``).
CHECK_WINDOWS = (1.0, 60.0)


class ModelServer(Script):
    """The provider behind ``model_server`` (module docstring). ``clock``/``sleep`` are
    ``time.monotonic``/``time.sleep`` unless a test passes a fake pair."""

    def __init__(
        self,
        respond: Callable[[dict], tuple[int, Any]] | None = None,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(respond)
        self.rpm, self.tpm, self.latency = rpm, tpm, latency
        self.clock, self.sleep = clock, sleep
        now = clock()
        self.request_bucket = Bucket(rpm, now, floor=1.0) if rpm is not None else None
        self.token_bucket = Bucket(tpm, now) if tpm is not None else None
        self.received = self.served = self.rate_limited = self.over_limit_served = 0
        self.in_flight = self.max_in_flight = 0
        self.served_at: list[float] = []  # arrival times of the requests served, in order
        self.token_events: list[tuple[float, int]] = []  # (time, tokens charged; < 0: given back)
        self.largest_request = 0

    def next_reply(self, body: dict) -> tuple[Any, Any]:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
        return (self.respond or default_reply)(body)

    # -------------------------------------------------------------- one request
    def handle(self, path: str, auth: str | None, body: dict) -> Answer:
        self.record(path, auth, body)
        estimate = tokens_of(prompt_chars(body)) + requested_max_tokens(body)
        with self.lock:
            self.received += 1
            refusal = self._admit(body, estimate)
            if refusal is not None:
                self.rate_limited += 1
                return refusal
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                self.sleep(self.latency)
            status, payload = self.reply(body)
        finally:
            with self.lock:
                self.in_flight -= 1
        self._give_back(estimate, status, payload)
        return status, {}, _encode(payload)

    def _admit(self, body: dict, estimate: int) -> Answer | None:
        """Count the request in, or the 429 refusing it (under the lock)."""
        now = self.clock()
        if self.tpm is not None and estimate > self.tpm:
            return self._refuse(body, "tokens", estimate, None)
        waits = {}
        if self.request_bucket is not None:
            waits["requests"] = self.request_bucket.wait(1, now)
        if self.token_bucket is not None:
            waits["tokens"] = self.token_bucket.wait(estimate, now)
        axis = max(waits, key=lambda k: waits[k], default=None)
        if axis is not None and waits[axis] > 0:
            return self._refuse(body, axis, 1 if axis == "requests" else estimate, waits[axis])
        if self.request_bucket is not None:
            self.request_bucket.take(1)
        if self.token_bucket is not None:
            self.token_bucket.take(estimate)
        self.served += 1
        self.served_at.append(now)
        self.token_events.append((now, estimate))
        self.largest_request = max(self.largest_request, estimate)
        if self._beyond_limit(now):
            self.over_limit_served += 1
        return None

    def _refuse(self, body: dict, axis: str, requested: int, wait: float | None) -> Answer:
        model = body.get("model") or "the model"
        limit = self.rpm if axis == "requests" else self.tpm
        unit = "requests per min (RPM)" if axis == "requests" else "tokens per min (TPM)"
        if wait is None:
            message = f"Request too large for {model} on {unit}: Limit {limit}, Requested {requested}."
            headers: dict[str, str] = {}
        else:
            message = (
                f"Rate limit reached for {model} on {unit}: Limit {limit}, Requested {requested}. "
                f"Please try again in {wait:.3f}s."
            )
            headers = {
                "Retry-After": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(math.ceil(wait * 1000)),
            }
        error = {
            "message": message,
            "type": "rate_limit_exceeded",
            "param": None,
            "code": "rate_limit_exceeded",
        }
        return 429, headers, _encode({"error": error})

    def _give_back(self, estimate: int, status: int, payload: Any) -> None:
        """The tokens the reply did not use go back to the bucket (all of them for a reply
        that is not a completion)."""
        used = 0
        if status == 200 and isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
            usage = payload["usage"]
            used = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
        elif status == 200:
            used = estimate  # no usage reported: what it asked for
        unused = max(0, estimate - used)
        if unused and self.token_bucket is not None:
            with self.lock:
                now = self.clock()
                self.token_bucket.give(unused, now)
                self.token_events.append((now, -unused))

    # -------------------------------------------------------------- the recount
    def _beyond_limit(self, now: float) -> bool:
        """Whether a window ending now holds more than the limit plus one second's worth
        (tokens: plus the largest request's excess over that, its allowed debt)."""
        for window in CHECK_WINDOWS:
            if self.request_bucket is not None:
                count = len(self.served_at) - bisect.bisect_left(self.served_at, now - window)
                if count > self.request_bucket.capacity + self.request_bucket.rate * window + 1e-6:
                    return True
            if self.token_bucket is not None:
                net = sum(tokens for t, tokens in self.token_events if t >= now - window)
                allowed = self.token_bucket.capacity + self.token_bucket.rate * window
                allowed += max(0.0, self.largest_request - self.token_bucket.capacity)
                if net > allowed + 1e-6:
                    return True
        return False

    def max_requests_in_window(self, seconds: float = 60.0) -> int:
        """The most requests served within any ``seconds`` (a closed window)."""
        times, best, start = self.served_at, 0, 0
        for end, t in enumerate(times):
            while times[start] < t - seconds:
                start += 1
            best = max(best, end - start + 1)
        return best


# ------------------------------------------------------------------ the HTTP front
@contextmanager
def _serve(script: Script) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            handle = (
                script.handle_embeddings if self.path.rstrip("/").endswith("/embeddings") else script.handle
            )
            status, headers, data = handle(self.path, self.headers.get("Authorization"), body)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (the slow case)
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def judge_server(respond: Callable[[dict], tuple[int, Any]] | None = None) -> Iterator[tuple[str, Script]]:
    """Serve on 127.0.0.1 (a free port); yields (base URL ending in /v1, script)."""
    script = Script(respond)
    with _serve(script) as url:
        yield url, script


@contextmanager
def model_server(
    rpm: int | None = None,
    tpm: int | None = None,
    latency: float = 0.0,
    respond: Callable[[dict], tuple[int, Any]] | None = None,
) -> Iterator[tuple[str, ModelServer]]:
    """A provider with limits on 127.0.0.1 (module docstring); yields (base URL ending in
    /v1, the server: its ``replies``, ``requests`` and counters)."""
    server = ModelServer(respond, rpm=rpm, tpm=tpm, latency=latency)
    with _serve(server) as url:
        yield url, server
