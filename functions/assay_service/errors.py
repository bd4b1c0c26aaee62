"""One exception hierarchy for the whole service.

Every error a client can cause maps to an HTTP status and one of the envelope codes
of the product spec. Workflow errors keep their class names stable: the state
machine's ``Retry``/``Catch`` match them by name (``TransientScoringError``,
``TransientStoreError``).
"""

from __future__ import annotations

from typing import Any


class AssayError(Exception):
    """Base of every error Assay raises on purpose."""

    status_code = 500
    code = "server.internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequestError(AssayError):
    status_code = 400
    code = "validation.invalid_request"


class InvalidFormatError(AssayError):
    status_code = 400
    code = "validation.invalid_format"


class NotFoundError(AssayError):
    status_code = 404
    code = "resource.not_found"

    def __init__(self, kind: str) -> None:
        # The message names the kind, never the id or the owner: a foreign object must be
        # indistinguishable from a missing one.
        super().__init__(f"{kind} not found")


def found[T](value: T | None, kind: str) -> T:
    """``value``, or ``NotFoundError(kind)`` when the store had none (missing, or another
    tenant's: the two are one answer)."""
    if value is None:
        raise NotFoundError(kind)
    return value


class ConflictError(AssayError):
    status_code = 409
    code = "resource.conflict"


class QuotaExceededError(AssayError):
    status_code = 429
    code = "quota.limit_exceeded"


class InvalidKeyError(AssayError):
    status_code = 401
    code = "auth.invalid_key"

    def __init__(self, message: str = "missing or invalid API key") -> None:
        super().__init__(message)


class ExpiredKeyError(AssayError):
    status_code = 401
    code = "auth.expired_key"

    def __init__(self, message: str = "API key has expired") -> None:
        super().__init__(message)


class InsufficientPermissionsError(AssayError):
    status_code = 403
    code = "auth.insufficient_permissions"


class TransientStoreError(AssayError):
    """Throttling or a transient fault of a data store; the workflow retries it."""


class TransientScoringError(AssayError):
    """A model was throttled or failed transiently. Model calls are tried again in the batch
    (``retry_after``: the provider's ``Retry-After``, seconds, when it sent one); a judge
    call still failing after that fails the batch, which the workflow retries."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidRecordError(AssayError):
    """A record cannot be scored by a metric; recorded as a failed evaluation."""


class BatchTooLargeError(AssayError):
    """A scored batch is too large to record in one DynamoDB transaction; not retried: the
    run fails saying to schedule it with a smaller batch_size."""
