"""PrepareRunFunction: batch manifest to S3, run → running."""

from assay_service.handlers.workflow.steps import step
from assay_service.models.workflow import RunInput
from assay_service.services import workflow

handler = step(RunInput, lambda e: workflow.prepare(e.tenant_id, e.run_id))
