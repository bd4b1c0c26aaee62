"""Every parity test runs twice: on the C extension (what the Lambda runs) and on the
pure-Python twins (what runs where the extension is not built) — both must equal the
reference libraries."""

from __future__ import annotations

import pytest
from assay_service.domain.scorers import textmetrics


@pytest.fixture(autouse=True, scope="module", params=["native", "python"])
def implementation(request):
    native = textmetrics._native
    if request.param == "native":
        assert native is not None, "the _fastmetrics extension is not built (make install)"
    else:
        textmetrics._native = None
    textmetrics.clear_caches()  # no token computed by the other implementation is reused
    yield request.param
    textmetrics._native = native
    textmetrics.clear_caches()
