"""Model clients — the ``ModelClient`` (``chat``) and ``JudgeClient`` (``complete``) ports'
adapters; a judge's call is a chat request like any other.

* ``BedrockJudgeClient``: Amazon Bedrock's Converse API (``bedrock-runtime`` ``converse``);
  embeddings (``embed``) through ``invoke_model`` of an Amazon Titan text embeddings model
  (``{"inputText": …}``, one text a call).
* ``OpenAIJudgeClient``: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI,
  vLLM, Ollama, …) over ``urllib.request`` — no extra dependency; embeddings through the
  same endpoint's ``/embeddings``.

Failures the provider may recover from (throttling, 5xx, timeouts, an unreachable
endpoint, a model still loading) raise ``TransientScoringError`` so the state machine
retries the batch with backoff; anything else (a 4xx such as a wrong model id or a bad key)
raises ``ModelRequestError`` and becomes a failed evaluation (or, for generation, an errored
record) carrying the provider's words.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from assay_service.adapters.aws_errors import is_transient_bedrock
from assay_service.domain.generation import (
    ChatReply,
    ChatRequest,
    ModelRequestError,
    clean_text,
    judge_request,
)
from assay_service.domain.scorers.judges import JudgeClient, JudgeReply
from assay_service.errors import TransientScoringError
from assay_service.models.domain import JudgeSettings

__all__ = [
    "BedrockJudgeClient",
    "JudgeClient",
    "JudgeReply",
    "ModelRequestError",
    "OpenAIJudgeClient",
    "openai_credentials",
]

EXCERPT = 300


# ------------------------------------------------------------------ Bedrock
class BedrockJudgeClient:
    def __init__(self, client: Any) -> None:
        self.client = client  # a boto3 ``bedrock-runtime`` client

    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        return _judge_reply(self.chat(judge_request(system, user, settings)))

    def chat(self, request: ChatRequest) -> ChatReply:
        system = [{"text": text} for role, text in request.messages if role == "system"]
        messages = [
            {"role": role, "content": [{"text": text}]} for role, text in request.messages if role != "system"
        ]
        config: dict[str, Any] = {"maxTokens": request.max_tokens, "temperature": request.temperature}
        if request.top_p is not None:
            config["topP"] = request.top_p
        if request.stop:
            config["stopSequences"] = list(request.stop)
        with _bedrock_errors():
            response = self.client.converse(
                modelId=request.model,
                messages=messages,
                inferenceConfig=config,
                **({"system": system} if system else {}),
            )
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
        usage = response.get("usage") or {}
        return ChatReply(
            text=clean_text(text),
            finish_reason=_BEDROCK_STOP.get(response.get("stopReason") or "", response.get("stopReason")),
            prompt_tokens=usage.get("inputTokens"),
            completion_tokens=usage.get("outputTokens"),
            cached_tokens=usage.get("cacheReadInputTokens"),
        )

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int | None]:
        """Titan text embeddings (``amazon.titan-embed-text-v2:0``, v1 alike): one
        ``invoke_model`` a text, ``{"inputText": text}`` → ``embedding`` and
        ``inputTextTokenCount`` (summed; None when a reply has none)."""
        vectors: list[list[float]] = []
        tokens: int | None = 0
        for text in texts:
            with _bedrock_errors():
                response = self.client.invoke_model(
                    modelId=model,
                    body=json.dumps({"inputText": text}),
                    contentType="application/json",
                    accept="application/json",
                )
                raw = response["body"].read(MAX_REPLY_BYTES + 1)
            if len(raw) > MAX_REPLY_BYTES:
                raise ModelRequestError(f"bedrock sent over {MAX_REPLY_BYTES:,} bytes")
            try:
                data = json.loads(raw)
                vectors.append(_vector(data["embedding"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelRequestError(f"bedrock sent no embedding: {_excerpt(raw)}") from exc
            count = _count(data.get("inputTextTokenCount"))
            tokens = None if tokens is None or count is None else tokens + count
        return vectors, tokens


@contextmanager
def _bedrock_errors() -> Iterator[None]:
    """A Bedrock call's failures as the ports want them: TransientScoringError for what may
    pass (``aws_errors.is_transient_bedrock``, timeouts, no connection), else
    ``ModelRequestError`` with Bedrock's words."""
    from botocore.exceptions import (  # deferred: botocore is the Lambda runtime's
        BotoCoreError,
        ClientError,
        ReadTimeoutError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        message = f"bedrock {code or status}: {error.get('Message', '')}"[:EXCERPT]
        if is_transient_bedrock(exc):
            raise TransientScoringError(message) from exc
        raise ModelRequestError(message) from exc
    except (ReadTimeoutError, BotoConnectionError) as exc:
        raise TransientScoringError(f"bedrock unreachable: {exc}"[:EXCERPT]) from exc
    except BotoCoreError as exc:
        raise ModelRequestError(f"bedrock: {exc}"[:EXCERPT]) from exc


# Converse's stopReason in OpenAI's finish_reason words, so runs compare across providers.
_BEDROCK_STOP = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "tool_use": "tool_calls",
}


# ------------------------------------------------------------------ OpenAI-compatible
class OpenAIJudgeClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("the judge base URL must be http(s)")
        if urllib.parse.urlsplit(base_url).scheme not in {"http", "https"}:
            raise ValueError("the judge endpoint must be an http(s) URL")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.embeddings_url = base_url.rstrip("/") + "/embeddings"
        self.api_key = api_key
        self.timeout = timeout

    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        return _judge_reply(self.chat(judge_request(system, user, settings)))

    def chat(self, request: ChatRequest) -> ChatReply:
        return _parse_completion(self._post(_payload(request)))

    def embed(self, model: str, texts: list[str]) -> tuple[list[list[float]], int | None]:
        """``POST {base_url}/embeddings`` ``{"model", "input": [texts]}``: ``data[i].embedding``
        in ``index`` order, ``usage.prompt_tokens`` — with ``chat``'s timeout, size cap and
        error mapping (429/5xx transient, ``Retry-After`` carried)."""
        return _parse_embeddings(
            self._post({"model": model, "input": list(texts)}, self.embeddings_url), len(texts)
        )

    def _post(self, payload: dict[str, Any], url: str | None = None) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        http_request = urllib.request.Request(  # noqa: S310
            url or self.url,
            data=json.dumps(payload).encode(),
            headers=headers,
            method="POST",
        )
        try:
            # B310 (urlopen of a variable URL): __init__ admits only http and https.
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:  # noqa: S310 # nosec B310
                return self._body(response)
        except urllib.error.HTTPError as exc:
            detail = _excerpt(exc.read() if exc.fp else b"")
            message = f"model endpoint HTTP {exc.code}: {detail}"
            if exc.code in (408, 429) or exc.code >= 500:
                raise TransientScoringError(message, retry_after=_retry_after(exc.headers)) from exc
            raise ModelRequestError(message) from exc
        except TimeoutError as exc:
            raise TransientScoringError(f"model endpoint timed out after {self.timeout:g}s") from exc
        except urllib.error.URLError as exc:  # refused, DNS, TLS, or a timeout while connecting
            raise TransientScoringError(f"model endpoint unreachable: {exc.reason}"[:EXCERPT]) from exc
        except (ConnectionError, OSError) as exc:
            raise TransientScoringError(f"model endpoint connection failed: {exc}"[:EXCERPT]) from exc

    def _body(self, response: Any) -> bytes:
        """The reply, within ``timeout`` in all: the socket's own timeout bounds each read,
        so a reply trickling in a byte at a time would never time out; and at most
        ``MAX_REPLY_BYTES``, held in memory."""
        deadline = time.monotonic() + self.timeout
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
            if size > MAX_REPLY_BYTES:
                raise ModelRequestError(f"model endpoint sent over {MAX_REPLY_BYTES:,} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError
            chunks.append(chunk)
        return b"".join(chunks)


# A chat completion of 16k tokens is ~100 KB of JSON; far more is not an answer.
MAX_REPLY_BYTES = 8_000_000


def _payload(request: ChatRequest) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": role, "content": text} for role, text in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }
    for name in ("top_p", "seed"):
        if getattr(request, name) is not None:
            payload[name] = getattr(request, name)
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.json_schema is not None:
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": json.loads(request.json_schema)},
        }
    elif request.json_object:
        payload["response_format"] = {"type": "json_object"}
    return payload


def _parse_completion(raw: bytes) -> ChatReply:
    try:
        data = json.loads(raw)
        choice = data["choices"][0]
        text = _content_text(choice["message"]["content"])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelRequestError(f"model endpoint sent no chat completion: {_excerpt(raw)}") from exc
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    return ChatReply(
        text=clean_text(text),
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        cached_tokens=_count(details.get("cached_tokens")),
    )


def _parse_embeddings(raw: bytes, count: int) -> tuple[list[list[float]], int | None]:
    """An embeddings reply: one vector per input, ordered by ``index`` (when every row has
    one), and ``usage.prompt_tokens``."""
    try:
        data = json.loads(raw)
        rows = data["data"]
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise TypeError("data is not a list of objects")
        if all(_count(row.get("index")) is not None for row in rows):
            rows = sorted(rows, key=lambda row: row["index"])
        vectors = [_vector(row["embedding"]) for row in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelRequestError(f"model endpoint sent no embeddings: {_excerpt(raw)}") from exc
    if len(vectors) != count:
        raise ModelRequestError(f"model endpoint sent {len(vectors)} embeddings for {count} texts")
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return vectors, _count(usage.get("prompt_tokens"))


def _vector(value: Any) -> list[float]:
    """An embedding: a non-empty list of finite numbers (``encoding_format`` float)."""
    if not isinstance(value, list) or not value:
        raise TypeError("the embedding is not a list of numbers")
    out = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise TypeError("the embedding is not a list of finite numbers")
        out.append(float(x))
    return out


def _content_text(content: Any) -> str:
    """A message's content: text, or a list of parts whose text parts are joined (some
    compatible servers answer so); null is the empty answer."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        return "".join(str(part.get("text") or "") for part in content if part.get("type") in (None, "text"))
    raise TypeError("content is not text")


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


RETRY_AFTER_MAX_S = 120.0


def _retry_after(headers: Any) -> float | None:
    """``Retry-After`` in seconds (a number; an HTTP date is not worth parsing here), or
    OpenAI's ``retry-after-ms``; capped, since a batch has 300 s in all."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("Retry-After", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return min(seconds, RETRY_AFTER_MAX_S)
    return None


def _judge_reply(reply: ChatReply) -> JudgeReply:
    return JudgeReply(
        text=reply.text, input_tokens=reply.prompt_tokens, output_tokens=reply.completion_tokens
    )


def _excerpt(raw: bytes) -> str:
    return raw[:EXCERPT].decode("utf-8", "replace")


def openai_credentials(secret: str | None, base_url: str | None) -> tuple[str, str | None]:
    """(base URL, API key) from the secret's value — either the bare key or JSON
    ``{"base_url": …, "api_key": …}`` — and the ``JUDGE_OPENAI_BASE_URL`` setting."""
    key: str | None = secret or None
    if secret and secret.lstrip().startswith("{"):
        data = json.loads(secret)
        key = data.get("api_key") or None
        base_url = data.get("base_url") or base_url
    if not base_url:
        raise RuntimeError(
            "no OpenAI-compatible judge endpoint: set JUDGE_OPENAI_BASE_URL "
            "or put base_url in the judge secret"
        )
    return base_url, key
