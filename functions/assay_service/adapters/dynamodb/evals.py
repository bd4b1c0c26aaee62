"""Evals and their versions (each written once, listed under its eval through GSI1)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.dynamodb.codec import item_model, model_item
from assay_service.adapters.dynamodb.counters import TRANSACTION_ITEMS, delete_unreferenced
from assay_service.adapters.dynamodb.keys import (
    counter_sk,
    created_sk,
    eval_pk,
    eval_version_gsi_sk,
    eval_version_pk,
    eval_versions_gsi_pk,
    evals_gsi_pk,
)
from assay_service.adapters.dynamodb.table import Table, cancellation_codes
from assay_service.errors import ConflictError, TransientStoreError
from assay_service.models.domain import Eval, EvalVersion


class DynamoDBEvalRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def create(self, ev: Eval) -> None:
        self.table.put(self._eval_item(ev), condition="attribute_not_exists(PK)")

    @staticmethod
    def _eval_item(ev: Eval) -> dict[str, Any]:
        return model_item(
            ev,
            PK=eval_pk(ev.tenant_id, ev.id),
            SK="EVAL",
            GSI1PK=evals_gsi_pk(ev.tenant_id),
            GSI1SK=created_sk(ev.created_at.isoformat(), ev.id),
        )

    def get(self, tenant_id: UUID, eval_id: UUID) -> Eval | None:
        item = self.table.get(eval_pk(tenant_id, eval_id), "EVAL")
        return item_model(Eval, item) if item else None

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Eval], str | None]:
        items, after = self.table.page(pk=evals_gsi_pk(tenant_id), index="GSI1", limit=limit, cursor=cursor)
        return [item_model(Eval, i) for i in items], after

    def add_version(self, tenant_id: UUID, ev: Eval, version: EvalVersion) -> None:
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        eval_pk(tenant_id, ev.id),
                        "EVAL",
                        expression="SET #n = :new",
                        names={"#n": "version_count"},
                        values={":new": version.version, ":old": ev.version_count},
                        condition="#n = :old",
                    ),
                    self._version_op(tenant_id, ev, version),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                raise ConflictError(
                    "another version of this eval was created at the same time; retry"
                ) from exc
            raise

    def _version_op(self, tenant_id: UUID, ev: Eval, version: EvalVersion) -> dict[str, Any]:
        """A version's item (listed through GSI1 under its eval), written once."""
        return self.table.put_op(
            model_item(
                version,
                PK=eval_version_pk(tenant_id, version.id),
                SK="EVALVER",
                tenant_id=str(tenant_id),
                project_id=str(ev.project_id),
                GSI1PK=eval_versions_gsi_pk(tenant_id, ev.id),
                GSI1SK=eval_version_gsi_sk(version.version),
            ),
            condition="attribute_not_exists(PK)",
        )

    def get_version(self, tenant_id: UUID, version_id: UUID) -> EvalVersion | None:
        item = self.table.get(eval_version_pk(tenant_id, version_id), "EVALVER")
        return item_model(EvalVersion, item) if item else None

    def list_versions(self, tenant_id: UUID, eval_id: UUID) -> list[EvalVersion]:
        return [
            item_model(EvalVersion, i)
            for i in self.table.query_all(
                pk=eval_versions_gsi_pk(tenant_id, eval_id), index="GSI1", forward=False
            )
        ]

    def create_with_version(self, ev: Eval, version: EvalVersion) -> None:
        """The eval and its version 1 in one transaction: both or neither."""
        self.table.transact(
            [
                self.table.put_op(self._eval_item(ev), condition="attribute_not_exists(PK)"),
                self._version_op(ev.tenant_id, ev, version),
            ]
        )

    def delete(self, ev: Eval) -> None:
        """Delete the eval and its versions in one transaction, only while no run counts it
        and nobody added a version meanwhile (ConflictError otherwise, and nothing is
        deleted: a retry starts afresh)."""
        tenant_id = ev.tenant_id
        versions = [
            (k["PK"], k["SK"])
            for k in self.table.keys(pk=eval_versions_gsi_pk(tenant_id, ev.id), index="GSI1")
        ]
        if len(versions) < ev.version_count:
            # Versions are found through GSI1, which lags its writes: never leave one behind.
            raise TransientStoreError(
                f"eval {ev.id}: {len(versions)} of {ev.version_count} versions indexed yet; retry"
            )
        # The versions go in the guard's own transaction: a run scheduled since the caller
        # looked refuses the whole delete, and the eval keeps every version it had.
        together = TRANSACTION_ITEMS - 2  # the counter check and the eval item
        delete_unreferenced(
            self.table,
            eval_pk(tenant_id, ev.id),
            "EVAL",
            tenant_id,
            counter_sk("eval_id", ev.id),
            ev.version_count,
            "eval",
            with_items=versions[:together],
        )
        # Past 98 versions the rest follow: the eval is gone, so no run can use them now.
        self.table.batch_delete(versions[together:])
