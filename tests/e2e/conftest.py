"""Every end-to-end test runs on local stacks that enforce the functions' IAM roles
(assay_local/iam/). A handler calling what its role does not allow gets
AccessDenied, as on AWS — but code may swallow an error, so the session also fails at its
end if any stack built from the real template.yaml refused a request, or saw a request
from a function role that the enforcement could not map to IAM actions."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest
from assay_local.iam.enforcer import recorded_denials, recorded_unmapped
from assay_local.iam.middleware import ENV_SWITCH, enabled_from_env
from assay_local.stack import DEFAULT_TEMPLATE

REAL_TEMPLATE = str(DEFAULT_TEMPLATE.resolve())


@pytest.fixture(scope="session", autouse=True)
def no_iam_denials_on_the_real_template() -> Iterator[None]:
    if not enabled_from_env(os.environ):
        warnings.warn(f"{ENV_SWITCH} is off: the end-to-end tests do not check IAM", stacklevel=1)
    denials_before, unmapped_before = len(recorded_denials()), len(recorded_unmapped())
    yield
    denials = [d for d in recorded_denials()[denials_before:] if d.stack == REAL_TEMPLATE]
    unmapped = [r for stack, r in recorded_unmapped()[unmapped_before:] if stack == REAL_TEMPLATE]
    problems = [f"{d.role}: {d.action} on {d.resource} ({d.request})" for d in denials]
    problems += [f"not mapped to IAM actions: {r}" for r in unmapped]
    assert problems == [], (
        "template.yaml does not let a function do what its code does (fix the policy, tests/"
        "infrastructure/test_template_policy.py EXPECTED_GRANTS and docs/security.md):\n"
        + "\n".join(problems)
    )
