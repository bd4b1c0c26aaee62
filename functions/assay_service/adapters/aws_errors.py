"""Which AWS errors are worth retrying: one rule for every adapter.

An error is transient when its code says the service throttled the request, failed inside,
was unavailable, timed out or lost a race with another request (``TRANSIENT_CODES``), or
when its HTTP status is 429 or 5xx — except ``NotImplemented`` (S3's 501: the service does
not support what was asked, which no retry changes). Each adapter turns a transient error
into its own retryable exception (``TransientStoreError``, ``TransientScoringError``) so
the workflow retries the step; anything else is a real failure and propagates.

What truly differs by service is kept here, named for it: the per-item reasons of a
cancelled DynamoDB transaction, and the Bedrock codes that are transient only there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # botocore is imported by the adapters that make calls, not by this rule
    from botocore.exceptions import ClientError

TRANSIENT_CODES = frozenset(
    {
        # throttled
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "SlowDown",
        # failed inside, or unavailable
        "InternalServerError",
        "InternalServerException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        # timed out
        "RequestTimeout",
        # lost a race with a concurrent transaction
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)

# A 5xx that is a permanent answer, not a passing state of the service.
PERMANENT_SERVER_CODES = frozenset({"NotImplemented"})

# Per-item reasons of a cancelled DynamoDB TransactWriteItems that a retry can clear
# (contention or throttling; a ``ConditionalCheckFailed`` is an answer, not a fault).
TRANSIENT_CANCELLATION_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)

# Bedrock Runtime codes that are transient there but not AWS-wide: a model still loading or
# slow to answer, and the account's on-demand token quota (elsewhere, e.g. Step Functions,
# ``ServiceQuotaExceededException`` is a resource limit no retry lifts).
BEDROCK_TRANSIENT_CODES = frozenset(
    {"ModelNotReadyException", "ModelTimeoutException", "ServiceQuotaExceededException"}
)


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code") or ""


def http_status(exc: ClientError) -> int:
    return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0


def is_transient(exc: ClientError) -> bool:
    """Whether a retry of the call may succeed (throttling, a service fault, a timeout)."""
    code = error_code(exc)
    if code in TRANSIENT_CODES:
        return True
    status = http_status(exc)
    return status == 429 or (status >= 500 and code not in PERMANENT_SERVER_CODES)


def is_transient_bedrock(exc: ClientError) -> bool:
    """``is_transient``, plus the Bedrock Runtime codes that are transient only there."""
    return is_transient(exc) or error_code(exc) in BEDROCK_TRANSIENT_CODES


def is_transient_cancellation(reasons: Iterable[str]) -> bool:
    """Whether a cancelled DynamoDB transaction's per-item reasons (``None`` for an item
    that was fine) name only contention or throttling: nothing was written, and the same
    transaction may be sent again."""
    found = set(reasons) - {"None"}
    return bool(found) and found <= TRANSIENT_CANCELLATION_REASONS
