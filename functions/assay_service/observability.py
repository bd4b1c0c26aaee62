"""The one logger of the service (Powertools, JSON to stdout → CloudWatch)."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Logger


@lru_cache(maxsize=1)
def get_logger() -> Logger:
    return Logger(service="assay")
