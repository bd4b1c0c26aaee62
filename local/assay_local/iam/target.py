"""What every service's request mapping shares: the account it maps requests in
(``Target``) and the signal that a request cannot be mapped (``Unmapped``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class Unmapped(Exception):
    """The request's IAM actions are not known here (passed, and recorded)."""


@dataclass(frozen=True)
class Target:
    """What the mappers need to know about the account they run in."""

    account_id: str
    region: str
    # (table name, index name or None) -> the partition key's attribute name
    partition_key: Callable[[str, str | None], str | None] = lambda table, index: None
    # secret id (name or ARN) -> the secret's full ARN
    secret_arn: Callable[[str], str] | None = None

    def table_arn(self, name: str) -> str:
        if name.startswith("arn:"):
            return name
        return f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{name}"
