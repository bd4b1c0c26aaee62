"""The OpenAI objects' store on the service's table (moto, the template's GSI1): documents
by kind and id, listed in creation order both ways, resumed after an id, scoped to the
tenant and to the parent — an ``after`` from another listing or tenant reads nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from assay_service import dependencies
from assay_service.adapters.dynamodb.openai_objects import DynamoDBOpenAIObjects

from tests.functional.harness import environment


@pytest.fixture(scope="module")
def store(stack) -> Iterator[DynamoDBOpenAIObjects]:
    with environment(stack.env("OpenAIEvalsFunction")):
        yield DynamoDBOpenAIObjects(dependencies.table())


def put_many(
    store: DynamoDBOpenAIObjects, tenant: uuid.UUID, n: int, parent: uuid.UUID | None = None
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    for i, object_id in enumerate(ids):
        created = f"2026-12-07T10:00:{i:02d}+00:00"
        store.put(tenant, "run", object_id, {"id": str(object_id), "n": i}, created_at=created, parent=parent)
    return ids


def test_pages_in_creation_order_both_ways_with_has_more(store: DynamoDBOpenAIObjects) -> None:
    tenant, parent = uuid.uuid4(), uuid.uuid4()
    ids = put_many(store, tenant, 5, parent)
    first, more = store.page(tenant, "run", parent=parent, ascending=True, after=None, limit=2)
    assert [d["n"] for d in first] == [0, 1] and more is True
    second, more = store.page(tenant, "run", parent=parent, ascending=True, after=ids[1], limit=2)
    assert [d["n"] for d in second] == [2, 3] and more is True
    last, more = store.page(tenant, "run", parent=parent, ascending=True, after=ids[3], limit=2)
    assert [d["n"] for d in last] == [4] and more is False
    newest, more = store.page(tenant, "run", parent=parent, ascending=False, after=None, limit=5)
    assert [d["n"] for d in newest] == [4, 3, 2, 1, 0] and more is False
    exact, more = store.page(tenant, "run", parent=parent, ascending=True, after=None, limit=5)
    assert len(exact) == 5 and more is False


def test_after_must_belong_to_the_listing(store: DynamoDBOpenAIObjects) -> None:
    tenant, parent = uuid.uuid4(), uuid.uuid4()
    ids = put_many(store, tenant, 2, parent)
    other_parent = put_many(store, tenant, 2, uuid.uuid4())
    other_tenant = uuid.uuid4()
    assert store.page(tenant, "run", parent=parent, ascending=True, after=other_parent[0], limit=5) == (
        [],
        False,
    )
    assert store.page(other_tenant, "run", parent=parent, ascending=True, after=ids[0], limit=5) == (
        [],
        False,
    )
    assert store.page(tenant, "run", parent=parent, ascending=True, after=uuid.uuid4(), limit=5) == (
        [],
        False,
    )


def test_documents_are_scoped_replaced_and_deleted(store: DynamoDBOpenAIObjects) -> None:
    tenant = uuid.uuid4()
    (object_id,) = put_many(store, tenant, 1)
    assert store.get(uuid.uuid4(), "run", object_id) is None
    assert store.get(tenant, "eval", object_id) is None
    assert store.replace(tenant, "run", object_id, {"n": 9}) is True
    assert store.get(tenant, "run", object_id) == {"n": 9}
    store.delete(tenant, "run", object_id)
    assert store.get(tenant, "run", object_id) is None
    assert store.replace(tenant, "run", object_id, {"n": 1}) is False  # never recreated by a replace
