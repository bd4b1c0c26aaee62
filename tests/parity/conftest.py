"""Every parity test runs twice: on the C extension (what the Lambda runs) and on the
pure-Python twins (what runs where the extension is not built) — both must equal the
reference libraries."""

from __future__ import annotations

import pytest
from assay_service.domain.scorers import textmetrics


@pytest.fixture(autouse=True, scope="module", params=["native", "python"])
def implementation(request):
    in_use = textmetrics.use_native(request.param == "native")
    assert in_use == request.param, "the _fastmetrics extension is not built (make install)"
    yield in_use
    textmetrics.use_native(True)
