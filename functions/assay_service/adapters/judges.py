"""Judge model clients — the ``JudgeClient`` port's adapters.

* ``BedrockJudgeClient``: Amazon Bedrock's Converse API (``bedrock-runtime`` ``converse``).
* ``OpenAIJudgeClient``: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI,
  vLLM, Ollama, …) over ``urllib.request`` — no extra dependency.

Failures the provider may recover from (throttling, 5xx, timeouts, an unreachable
endpoint, a model still loading) raise ``TransientScoringError`` so the state machine
retries the batch with backoff; anything else (a 4xx such as a wrong model id or a bad key)
raises ``JudgeRequestError`` and becomes a failed evaluation carrying the provider's words.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from assay_service.adapters.aws_errors import is_transient_bedrock
from assay_service.domain.scorers.judges import JudgeClient, JudgeReply
from assay_service.errors import TransientScoringError
from assay_service.models.domain import JudgeSettings

__all__ = [
    "BedrockJudgeClient",
    "JudgeClient",
    "JudgeReply",
    "JudgeRequestError",
    "OpenAIJudgeClient",
    "openai_credentials",
]

EXCERPT = 300


class JudgeRequestError(Exception):
    """The provider refused the request for good (4xx other than 408/429)."""


# ------------------------------------------------------------------ Bedrock
class BedrockJudgeClient:
    def __init__(self, client: Any) -> None:
        self.client = client  # a boto3 ``bedrock-runtime`` client

    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        from botocore.exceptions import (  # deferred: botocore is the Lambda runtime's
            BotoCoreError,
            ClientError,
            ReadTimeoutError,
        )
        from botocore.exceptions import (
            ConnectionError as BotoConnectionError,
        )

        try:
            response = self.client.converse(
                modelId=settings.model,
                system=[{"text": system}],
                messages=[{"role": "user", "content": [{"text": user}]}],
                inferenceConfig={"maxTokens": settings.max_tokens, "temperature": settings.temperature},
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            message = f"bedrock {code or status}: {error.get('Message', '')}"[:EXCERPT]
            if is_transient_bedrock(exc):
                raise TransientScoringError(message) from exc
            raise JudgeRequestError(message) from exc
        except (ReadTimeoutError, BotoConnectionError) as exc:
            raise TransientScoringError(f"bedrock unreachable: {exc}"[:EXCERPT]) from exc
        except BotoCoreError as exc:
            raise JudgeRequestError(f"bedrock: {exc}"[:EXCERPT]) from exc
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict))
        usage = response.get("usage") or {}
        return JudgeReply(
            text=text, input_tokens=usage.get("inputTokens"), output_tokens=usage.get("outputTokens")
        )


# ------------------------------------------------------------------ OpenAI-compatible
class OpenAIJudgeClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("the judge base URL must be http(s)")
        if urllib.parse.urlsplit(base_url).scheme not in {"http", "https"}:
            raise ValueError("the judge endpoint must be an http(s) URL")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.timeout = timeout

    def complete(self, system: str, user: str, settings: JudgeSettings) -> JudgeReply:
        body = json.dumps(
            {
                "model": settings.model,
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
                "temperature": settings.temperature,
                "max_tokens": settings.max_tokens,
                "response_format": {"type": "json_object"},
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(  # noqa: S310
            self.url,
            data=body,
            headers=headers,
            method="POST",
        )
        try:
            # B310 (urlopen of a variable URL): __init__ admits only http and https.
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 # nosec B310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = _excerpt(exc.read() if exc.fp else b"")
            message = f"judge endpoint HTTP {exc.code}: {detail}"
            if exc.code in (408, 429) or exc.code >= 500:
                raise TransientScoringError(message) from exc
            raise JudgeRequestError(message) from exc
        except TimeoutError as exc:
            raise TransientScoringError(f"judge endpoint timed out after {self.timeout:g}s") from exc
        except urllib.error.URLError as exc:  # refused, DNS, TLS, or a timeout while connecting
            raise TransientScoringError(f"judge endpoint unreachable: {exc.reason}"[:EXCERPT]) from exc
        except (ConnectionError, OSError) as exc:
            raise TransientScoringError(f"judge endpoint connection failed: {exc}"[:EXCERPT]) from exc
        try:
            data = json.loads(raw)
            text = data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise JudgeRequestError(f"judge endpoint sent no chat completion: {_excerpt(raw)}") from exc
        usage = data.get("usage") or {}
        return JudgeReply(
            text=text, input_tokens=usage.get("prompt_tokens"), output_tokens=usage.get("completion_tokens")
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
