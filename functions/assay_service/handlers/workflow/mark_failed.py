"""MarkRunFailedFunction: the Catch path — run → failed with the error message."""

from assay_service.handlers.workflow.steps import step
from assay_service.models.workflow import MarkFailedInput
from assay_service.services import workflow

handler = step(MarkFailedInput, lambda e: workflow.mark_failed(e.tenant_id, e.run_id, e.error))
