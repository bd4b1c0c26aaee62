"""Functional tests: each handler invoked in-process with the events/*.json samples, on moto,
with every resource created from template.yaml (the local stack's resource creator)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from assay_local.http_front import HttpFront

from tests.functional.harness import Stack, bootstrapped_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with bootstrapped_stack("assay-functional") as created:
        yield created


@pytest.fixture(scope="session")
def fuzz_stack() -> Iterator[Stack]:
    """A stack of the fuzzers' own: they create thousands of objects, and moto copies a whole
    table on every transaction, so in the shared table they would slow every later test."""
    with bootstrapped_stack("assay-fuzz") as created:
        yield created


@pytest.fixture(scope="module")
def http_front(fuzz_stack: Stack) -> Iterator[HttpFront]:
    """The template's routes behind the local HTTP front (API Gateway's events and result
    mapping), each route invoking its function's real handler in-process on moto."""
    yield from _front(fuzz_stack)


def _front(stack: Stack) -> Iterator[HttpFront]:
    by_arn = {info.arn: logical for logical, info in stack.created.functions.items()}

    def invoke(arn: str, event: dict) -> tuple[bytes, bool]:
        return json.dumps(stack.invoke(by_arn[arn], event)).encode(), False

    front = HttpFront(stack.created.routes, invoke, api_id="functional", account_id="123456789012")
    yield front
    front._server.server_close()
