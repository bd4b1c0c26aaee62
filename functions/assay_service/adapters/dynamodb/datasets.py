"""Datasets and their numbered versions (each version's records are an S3 object).

A dataset whose delete has begun carries a ``deleting`` tombstone (its time): reads answer
as if it were gone, no version is added to it, and no run is scheduled on it (the run's
create transaction checks the tombstone is absent: ``runs.py``). Nothing of it is deleted
before the tombstone is written, in a transaction guarded by its run counter
(docs/decisions/0012-deletes.md)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.dynamodb.codec import item_model, model_item
from assay_service.adapters.dynamodb.counters import delete_unreferenced, guarded
from assay_service.adapters.dynamodb.keys import (
    DATASET_VERSION_PREFIX,
    counter_sk,
    created_sk,
    dataset_pk,
    dataset_version_sk,
    datasets_gsi_pk,
)
from assay_service.adapters.dynamodb.table import Table, cancellation_codes
from assay_service.errors import ConflictError, NotFoundError
from assay_service.models.domain import Dataset, DatasetVersion, utcnow

DELETING = "deleting"  # the tombstone attribute of a dataset being deleted


class DynamoDBDatasetRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    @staticmethod
    def _pk(tenant_id: UUID, dataset_id: UUID) -> str:
        return dataset_pk(tenant_id, dataset_id)

    def create(self, dataset: Dataset) -> None:
        created = dataset.created_at.isoformat()
        self.table.put(
            model_item(
                dataset,
                PK=self._pk(dataset.tenant_id, dataset.id),
                SK="DS",
                GSI1PK=datasets_gsi_pk(dataset.tenant_id),
                GSI1SK=created_sk(created, dataset.id),
            ),
            condition="attribute_not_exists(PK)",
        )

    def get(self, tenant_id: UUID, dataset_id: UUID) -> Dataset | None:
        """The dataset; None when missing or being deleted (tombstoned)."""
        item = self.table.get(self._pk(tenant_id, dataset_id), "DS")
        return item_model(Dataset, item) if item and DELETING not in item else None

    def get_for_delete(self, tenant_id: UUID, dataset_id: UUID) -> tuple[Dataset, bool] | None:
        """The dataset even while it is being deleted, and whether its delete has begun."""
        item = self.table.get(self._pk(tenant_id, dataset_id), "DS")
        return (item_model(Dataset, item), DELETING in item) if item else None

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Dataset], str | None]:
        """A page of the tenant's datasets, newest first, without those being deleted."""
        items, after = self.table.page(
            pk=datasets_gsi_pk(tenant_id),
            index="GSI1",
            limit=limit,
            cursor=cursor,
            keep=lambda item: DELETING not in item,
        )
        return [item_model(Dataset, i) for i in items], after

    def add_version(
        self, tenant_id: UUID, dataset: Dataset, version: DatasetVersion, object_key: str
    ) -> None:
        """Append a version: the counter moves only if nobody appended meanwhile and no
        delete has begun (NotFoundError then, as a read would answer)."""
        pk = self._pk(tenant_id, dataset.id)
        try:
            self.table.transact(
                [
                    self.table.update_op(
                        pk,
                        "DS",
                        expression="SET #n = :new",
                        names={"#n": "version_count", "#d": DELETING},
                        values={":new": version.version, ":old": dataset.version_count},
                        condition="#n = :old AND attribute_not_exists(#d)",
                    ),
                    self.table.put_op(
                        model_item(
                            version,
                            PK=pk,
                            SK=dataset_version_sk(version.version),
                            tenant_id=str(tenant_id),
                            object_key=object_key,
                        ),
                        condition="attribute_not_exists(PK)",
                    ),
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                if self.get(tenant_id, dataset.id) is None:  # deleted, or being deleted
                    raise NotFoundError("dataset") from exc
                raise ConflictError(
                    "another version of this dataset was created at the same time; retry"
                ) from exc
            raise

    def get_version(
        self, tenant_id: UUID, dataset_id: UUID, version: int | None
    ) -> tuple[DatasetVersion, str] | None:
        """The numbered version (or the latest) and its object key."""
        pk = self._pk(tenant_id, dataset_id)
        if version is None:
            items, _ = self.table.query(pk=pk, sk_prefix=DATASET_VERSION_PREFIX, forward=False, limit=1)
            item = items[0] if items else None
        else:
            item = self.table.get(pk, dataset_version_sk(version))
        return (item_model(DatasetVersion, item), item["object_key"]) if item else None

    def list_versions(self, tenant_id: UUID, dataset_id: UUID) -> list[DatasetVersion]:
        return [
            item_model(DatasetVersion, i)
            for i in self.table.query_all(
                pk=self._pk(tenant_id, dataset_id), sk_prefix=DATASET_VERSION_PREFIX, forward=False
            )
        ]

    def version_objects(self, tenant_id: UUID, dataset_id: UUID) -> list[tuple[str, str]]:
        """(sort key, object key) of every version of the dataset."""
        return [
            (i["SK"], i["object_key"])
            for i in self.table.query_all(
                pk=self._pk(tenant_id, dataset_id), sk_prefix=DATASET_VERSION_PREFIX
            )
        ]

    def begin_delete(self, dataset: Dataset) -> None:
        """A delete's first write: the tombstone, in one transaction with two guards — no
        run counts the dataset, and its version count is still ``dataset``'s (ConflictError
        otherwise, and nothing changed). From then on no run can be scheduled on it and no
        version added: what ``delete`` removes next cannot be needed. Marking a dataset
        already marked keeps its first mark (a retry, or two deletes at once)."""
        guarded(
            self.table,
            dataset.tenant_id,
            counter_sk("dataset_id", dataset.id),
            self.table.update_op(
                self._pk(dataset.tenant_id, dataset.id),
                "DS",
                expression="SET #d = if_not_exists(#d, :now)",
                names={"#d": DELETING, "#n": "version_count"},
                values={":now": utcnow().isoformat(), ":n": dataset.version_count},
                condition="attribute_exists(PK) AND #n = :n",
            ),
            "dataset",
        )

    def delete(self, dataset: Dataset, version_keys: Sequence[str]) -> None:
        """Delete the version items named, then the dataset item — the latter only while
        no run counts it and nobody added a version meanwhile (ConflictError otherwise; the
        versions already deleted stay deleted, a retry finishes). Called after
        ``begin_delete`` (or on a dataset nothing has seen yet: a failed create's undo)."""
        pk = self._pk(dataset.tenant_id, dataset.id)
        self.table.batch_delete([(pk, sk) for sk in version_keys])
        delete_unreferenced(
            self.table,
            pk,
            "DS",
            dataset.tenant_id,
            counter_sk("dataset_id", dataset.id),
            dataset.version_count,
            "dataset",
        )
