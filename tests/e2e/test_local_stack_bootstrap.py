"""ASSAY_BOOTSTRAP_KEY: the local stack creates the 'local' tenant with that owner key."""

from __future__ import annotations

import pytest
import requests
from assay_local.stack import LocalStack, LocalStackError

pytestmark = pytest.mark.e2e

OWNER_KEY = "local-owner-key-0123456789abcdef"


def test_short_bootstrap_keys_are_refused() -> None:
    with pytest.raises(LocalStackError, match="at least 20"):
        LocalStack(port=0, bootstrap_key="too-short")


def test_bootstrapped_owner_key_is_accepted_by_the_real_api() -> None:
    with LocalStack(port=0, bootstrap_key=OWNER_KEY) as stack:
        authed = requests.get(
            f"{stack.url}/v1/datasets", headers={"Authorization": f"Bearer {OWNER_KEY}"}, timeout=60
        )
        anonymous = requests.get(f"{stack.url}/v1/datasets", timeout=60)
    assert authed.status_code == 200, authed.text
    assert anonymous.status_code == 401, anonymous.text
