"""Run counters: an exact count of a tenant's runs per filter value, its count of runs in
flight, and the deletes those counts guard (docs/decisions/0007-run-counters.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.dynamodb.keys import counter_sk, run_count_pk, tenant_pk
from assay_service.adapters.dynamodb.table import Table, cancellation_codes
from assay_service.errors import ConflictError
from assay_service.models.domain import Run

# The single-criterion filters of GET /v1/eval-runs, each with an exact counter per value.
RUN_COUNTERS = ("status", "eval_id", "eval_version_id", "dataset_id", "project_id")


def counter_keys(run: Run) -> list[str]:
    """The sort keys of the counters ``run`` is counted in."""
    return ["ALL", *(counter_sk(name, getattr(run, name)) for name in RUN_COUNTERS)]


def count_op(table: Table, tenant_id: UUID, sk: str, delta: int) -> dict[str, Any]:
    return table.update_op(
        run_count_pk(tenant_id), sk, expression="ADD runs :d", names={}, values={":d": delta}
    )


def in_flight_op(table: Table, tenant_id: UUID, delta: int, limit: int | None = None) -> dict[str, Any]:
    """Move the tenant's count of unfinished runs; with ``limit``, only below it."""
    condition = (
        "attribute_not_exists(runs_in_flight) OR runs_in_flight < :limit" if limit is not None else None
    )
    values: dict[str, Any] = {":d": delta}
    if limit is not None:
        values[":limit"] = limit
    return table.update_op(
        tenant_pk(tenant_id),
        "TENANT",
        expression="ADD runs_in_flight :d",
        names={},
        values=values,
        condition=condition,
    )


# DynamoDB's TransactWriteItems takes at most 100 items.
TRANSACTION_ITEMS = 100


def unreferenced_check(table: Table, tenant_id: UUID, counter: str) -> dict[str, Any]:
    """A ConditionCheck that the tenant's run counter ``counter`` is zero (or was never
    moved): no run counts the dataset or eval."""
    return table.check_op(
        run_count_pk(tenant_id),
        counter,
        condition="attribute_not_exists(runs) OR runs = :zero",
        values={":zero": 0},
    )


def guarded(
    table: Table,
    tenant_id: UUID,
    counter: str,
    op: dict[str, Any],
    kind: str,
    with_items: Sequence[dict[str, Any]] = (),
) -> None:
    """``with_items``, then a check that the run counter ``counter`` is zero, then ``op`` on
    the dataset or eval item (conditional on its version count), in one transaction; a
    failed condition is a ConflictError saying which guard refused."""
    try:
        table.transact([*with_items, unreferenced_check(table, tenant_id, counter), op])
    except ClientError as exc:
        codes = cancellation_codes(exc)
        gone, codes = codes[: len(with_items)], codes[len(with_items) :]
        if "ConditionalCheckFailed" in gone:
            raise ConflictError(
                f"the {kind} changed while it was being deleted (deleted meanwhile); retry"
            ) from exc
        if codes[:1] == ["ConditionalCheckFailed"]:
            raise ConflictError(
                f"a run of this {kind} was scheduled while it was being "
                "deleted; delete the run first, then retry"
            ) from exc
        if codes[1:2] == ["ConditionalCheckFailed"]:
            raise ConflictError(
                f"the {kind} changed while it was being deleted (a version "
                "was added, or it was deleted meanwhile); retry"
            ) from exc
        raise


def delete_unreferenced(
    table: Table,
    pk: str,
    sk: str,
    tenant_id: UUID,
    counter: str,
    version_count: int,
    kind: str,
    with_items: Sequence[tuple[str, str]] = (),
) -> None:
    """Delete a dataset or eval item in one transaction with two guards: the tenant's run
    counter for it is zero (a run scheduled since the caller looked makes this a 409, not
    a dangling reference), and its version count is still the one whose versions were
    deleted (a version added meanwhile would otherwise be orphaned). ``with_items`` (at
    most ``TRANSACTION_ITEMS - 2``) are deleted in the same transaction: all or none."""
    guarded(
        table,
        tenant_id,
        counter,
        table.delete_op(
            pk,
            sk,
            condition="attribute_exists(PK) AND #n = :n",
            names={"#n": "version_count"},
            values={":n": version_count},
        ),
        kind,
        with_items=[table.delete_op(item_pk, item_sk) for item_pk, item_sk in with_items],
    )
