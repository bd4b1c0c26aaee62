"""Projects, listed per tenant newest first."""

from __future__ import annotations

from uuid import UUID

from botocore.exceptions import ClientError

from assay_service.adapters.dynamodb.codec import item_model, model_item
from assay_service.adapters.dynamodb.keys import created_sk, project_pk, projects_gsi_pk
from assay_service.adapters.dynamodb.table import Table, is_condition_failure
from assay_service.models.domain import Project


class DynamoDBProjectRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def create(self, project: Project, *, exist_ok: bool = False) -> None:
        try:
            self.table.put(
                model_item(
                    project,
                    PK=project_pk(project.tenant_id, project.id),
                    SK="PROJ",
                    GSI1PK=projects_gsi_pk(project.tenant_id),
                    GSI1SK=created_sk(project.created_at.isoformat(), project.id),
                ),
                condition="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if not (exist_ok and is_condition_failure(exc)):
                raise

    def get(self, tenant_id: UUID, project_id: UUID) -> Project | None:
        item = self.table.get(project_pk(tenant_id, project_id), "PROJ")
        return item_model(Project, item) if item else None

    def list_page(
        self, tenant_id: UUID, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Project], str | None]:
        items, after = self.table.page(
            pk=projects_gsi_pk(tenant_id), index="GSI1", limit=limit, cursor=cursor
        )
        return [item_model(Project, i) for i in items], after
