"""HTTP over the standard library: retries with backoff and full jitter, Retry-After, no auto-redirect.

Redirects are not followed automatically because the export's 303 points at a presigned S3
URL: following it with the API key attached would leak the key to S3 (and S3 refuses a
request carrying two kinds of authentication). ``Client.download_export`` follows it itself.
"""

from __future__ import annotations

import email.utils
import errno
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from assay.errors import ConnectionFailedError

# Methods that may be repeated after a failure whose outcome is unknown (5xx, broken connection).
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Statuses that say the request was not processed: safe to retry for any method.
NOT_PROCESSED = frozenset({429, 503})
# A refused connection is another "not processed": connect() failed, so no byte of the request
# left this machine and repeating it is safe for any method (e.g. a POST while a server starts).
RETRY_AFTER_CAP_S = 60.0


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class RetryPolicy:
    """``max_retries`` retries after the first attempt; delay ``uniform(0, min(cap, base·2^n))``."""

    max_retries: int = 4
    base_s: float = 0.5
    cap_s: float = 20.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap_s, self.base_s * (2**attempt)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def connection_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is a refused TCP connection (ECONNREFUSED), i.e. nothing was sent.

    urllib wraps the socket error in ``URLError.reason``; other failures (a reset, a timeout, a
    broken pipe) may happen after the request was sent and are not included."""
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, ConnectionRefusedError) or (
        isinstance(reason, OSError) and reason.errno == errno.ECONNREFUSED
    )


class Reader(Protocol):
    """What a streamed body needs: a file opened for binary reading, or a wrapper of one."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def _send(
    method: str, url: str, headers: Mapping[str, str], body: bytes | Reader | None, timeout: float
) -> Response:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            return Response(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as answer:
        with answer:
            return Response(answer.code, {k.lower(): v for k, v in answer.headers.items()}, answer.read())


class Transport:
    def __init__(
        self, *, timeout: float = 60.0, retry: RetryPolicy | None = None, user_agent: str = "assay-python"
    ) -> None:
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.user_agent = user_agent

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | Callable[[], Reader] | None = None,
        retry_unsafe: bool = False,
    ) -> Response:
        """One HTTP exchange with retries. ``body`` may be a factory of fresh readers (streamed PUTs).

        ``retry_unsafe``: the request is safe to repeat although its method is not idempotent
        (a POST carrying an Idempotency-Key). A refused connection is retried for every method:
        the request never reached the server."""
        if not url.lower().startswith(("http://", "https://")):
            raise ConnectionFailedError(f"not an http(s) URL: {url!r}")
        if params:
            query = urllib.parse.urlencode({k: _param(v) for k, v in params.items() if v is not None})
            url = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
        sent_headers = {"User-Agent": self.user_agent, **(headers or {})}
        repeatable = method.upper() in IDEMPOTENT or retry_unsafe
        attempt = 0
        while True:
            payload = body() if callable(body) else body
            try:
                response = _send(method, url, sent_headers, payload, self.timeout)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                if (repeatable or connection_refused(exc)) and attempt < self.retry.max_retries:
                    self.retry.sleep(self.retry.backoff(attempt))
                    attempt += 1
                    continue
                reason = getattr(exc, "reason", exc)
                raise ConnectionFailedError(f"{method} {_strip_query(url)}: {reason}") from exc
            finally:
                if payload is not None and not isinstance(payload, bytes):
                    payload.close()
            retryable = response.status in NOT_PROCESSED or (response.status >= 500 and repeatable)
            if not retryable or attempt >= self.retry.max_retries:
                return response
            wait = parse_retry_after(response.headers.get("retry-after"))
            self.retry.sleep(self.retry.backoff(attempt) if wait is None else wait)
            attempt += 1


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _strip_query(url: str) -> str:
    """A URL without its query string (presigned signatures stay out of error messages)."""
    return url.split("?", 1)[0]
