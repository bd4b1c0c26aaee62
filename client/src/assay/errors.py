"""Typed errors. Every API error carries the envelope's ``code`` and ``request_id``.

The service answers every error with ``{"error", "code", "details", "request_id"}`` (under
``/openai/v1``, with OpenAI's ``{"error": {"message", "type", "param", "code"}}``, whose
``param`` and ``type`` go to ``details``); the exception class is chosen by the code
(``auth.*``, ``validation.*``, ``resource.*``, …), falling back to the HTTP status when a
response is not an envelope (e.g. a proxy's 502).
"""

from __future__ import annotations

import json
from typing import Any


class AssayError(Exception):
    """Base of every error this package raises."""


class ConfigurationError(AssayError):
    """The client is missing its base URL or API key, or a setting is malformed."""


class MissingApiKeyError(ConfigurationError):
    """A request needs an API key and none was given (``api_key=`` or ``$ASSAY_API_KEY``)."""


class ConnectionFailedError(AssayError):
    """The service could not be reached (after retries, for idempotent requests)."""


class RunTimeoutError(AssayError):
    """``wait_for_run`` gave up before the run reached a terminal status."""

    def __init__(self, message: str, run: Any = None) -> None:
        super().__init__(message)
        self.run = run


class NotReadyError(AssayError):
    """``wait_until_ready`` gave up: the service did not answer (or accept the key) in time.
    ``last_error`` is the last failure seen."""

    def __init__(self, message: str, last_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class ApiError(AssayError):
    """An error answer from the API: ``status``, ``code``, ``message``, ``details``, ``request_id``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{message} ({code}, HTTP {status}, request {request_id or '-'})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.request_id = request_id


class AuthenticationError(ApiError):
    """``auth.invalid_key`` / ``auth.expired_key`` (401)."""


class PermissionDeniedError(ApiError):
    """``auth.insufficient_permissions`` (403)."""


class InvalidRequestError(ApiError):
    """``validation.*`` (400, 415): the message says what was wrong and where."""


class NotFoundError(ApiError):
    """``resource.not_found`` (404): missing, or another tenant's."""


class ConflictError(ApiError):
    """``resource.conflict`` (409): e.g. the run is not finished, or an idempotency key was reused."""


class QuotaExceededError(ApiError):
    """``quota.limit_exceeded`` (429) after the client's retries ran out."""


class ServerError(ApiError):
    """``server.*`` or any 5xx after the client's retries ran out."""


_BY_PREFIX: list[tuple[str, type[ApiError]]] = [
    ("auth.insufficient_permissions", PermissionDeniedError),
    ("auth.", AuthenticationError),
    ("validation.", InvalidRequestError),
    ("resource.not_found", NotFoundError),
    ("resource.conflict", ConflictError),
    ("quota.", QuotaExceededError),
    ("server.", ServerError),
]
_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: QuotaExceededError,
}


def error_from_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> ApiError:
    """The typed exception for an error response (envelope or not)."""
    envelope: dict[str, Any] = {}
    try:
        parsed = json.loads(body or b"null")
        if isinstance(parsed, dict):
            envelope = parsed
    except ValueError:
        pass
    if isinstance(envelope.get("error"), dict):
        # OpenAI's envelope (the API under /openai/v1): {"error": {message, type, param, code}},
        # ``code`` being Assay's error code; ``param`` and ``type`` are kept in ``details``.
        inner = envelope["error"]
        envelope = {
            "error": inner.get("message"),
            "code": inner.get("code"),
            "details": {k: inner[k] for k in ("param", "type") if inner.get(k) is not None},
        }
    code = envelope.get("code") if isinstance(envelope.get("code"), str) else None
    message = envelope.get("error") or envelope.get("message") or body[:300].decode("utf-8", "replace")
    request_id = envelope.get("request_id") or (headers or {}).get("x-request-id")
    details = envelope.get("details") if isinstance(envelope.get("details"), dict) else None
    cls: type[ApiError] | None = None
    if code:
        cls = next((c for prefix, c in _BY_PREFIX if code.startswith(prefix)), None)
    if cls is None:
        cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return cls(
        status,
        code or f"http.{status}",
        str(message or f"HTTP {status}"),
        details=details,
        request_id=request_id,
    )
