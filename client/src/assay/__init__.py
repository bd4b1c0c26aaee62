"""Python client for Assay, the self-hosted serverless LLM-evaluation service.

``Client()`` reads ``ASSAY_URL`` and ``ASSAY_API_KEY``; the ``assay`` command is built on it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from assay.client import Client
from assay.errors import (
    ApiError,
    AssayError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ConnectionFailedError,
    InvalidRequestError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    QuotaExceededError,
    RunTimeoutError,
    ServerError,
)
from assay.models import (
    Comparison,
    CostBreakdown,
    Dataset,
    DatasetVersion,
    Eval,
    EvalRun,
    Evaluation,
    EvalVersion,
    ModelUsage,
)

__all__ = [
    "ApiError",
    "AssayError",
    "AuthenticationError",
    "Client",
    "Comparison",
    "ConfigurationError",
    "ConflictError",
    "ConnectionFailedError",
    "CostBreakdown",
    "Dataset",
    "DatasetVersion",
    "Eval",
    "EvalRun",
    "EvalVersion",
    "Evaluation",
    "InvalidRequestError",
    "ModelUsage",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RunTimeoutError",
    "ServerError",
    "__version__",
]
