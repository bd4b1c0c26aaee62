"""Query reading only the partition it names (assay_local.moto_query) answers as moto's own
does: same items, same order, same pages (Limit, the 1 MB page, LastEvaluatedKey /
ExclusiveStartKey), ScanIndexForward, key conditions, filters, projections (the index's and
the request's), sparse indexes, Select=COUNT."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from assay_local import moto_hooks, moto_query
from moto import mock_aws
from moto.dynamodb.models.table import SecondaryIndex, Table

ORIGINAL_QUERY, ORIGINAL_PROJECT = moto_query._original_query, moto_query._original_project  # moto's
S, N = "S", "N"


def _index(name: str, hash_attr: str, range_attr: str | None, projection: dict[str, Any]) -> dict:
    schema = [{"AttributeName": hash_attr, "KeyType": "HASH"}]
    if range_attr:
        schema.append({"AttributeName": range_attr, "KeyType": "RANGE"})
    return {"IndexName": name, "KeySchema": schema, "Projection": projection}


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        table = f"q-{uuid.uuid4().hex}"
        ddb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": t}
                for a, t in [("PK", S), ("SK", S), ("G", S), ("GS", S), ("K", S), ("NUM", N), ("NR", N)]
            ],
            GlobalSecondaryIndexes=[
                _index("Include", "G", "GS", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a", "m"]}),
                _index("Keys", "K", "GS", {"ProjectionType": "KEYS_ONLY"}),
                _index("All", "G", None, {"ProjectionType": "ALL"}),
                _index("Numbers", "NUM", "NR", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["a"]}),
            ],
        )
        for p in range(6):
            for s in range(25):
                item: dict[str, Any] = {
                    "PK": {S: f"p{p}"},
                    "SK": {S: f"{'AB'[s % 2]}#{s:03}"},
                    "a": {N: str(s * 7 % 11)},
                    "b": {S: "x" * (s * 3)},
                    "m": {"M": {"k": {S: f"v{s}"}, "l": {"L": [{N: "1"}, {"BOOL": True}]}}},
                    "ss": {"SS": ["b", "a"]},
                    "bin": {"B": bytes([s, p])},
                }
                if s % 3:  # sparse: a third of the items are in no G-keyed index
                    item["G"] = {S: f"g{(p + s) % 3}"}
                    item["GS"] = {S: f"{s % 4}"}  # ties: the table's key orders them
                if s % 5 == 0:
                    item["K"] = {S: "k"}
                    item["GS"] = {S: f"{s % 4}"}
                if s % 4 == 1:
                    item["NUM"] = {N: "1" if s % 8 == 1 else "1.0"}  # equal numbers
                    item["NR"] = {N: str(100 - s)}
                ddb.put_item(TableName=table, Item=item)
        big = {"PK": {S: "big"}, "G": {S: "big"}, "GS": {S: "0"}}
        for s in range(8):  # ~300 KB each: pages end at 1 MB before Limit
            ddb.put_item(TableName=table, Item={**big, "SK": {S: f"{s}"}, "b": {S: "y" * 300_000}})
        yield ddb, table


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {S: "p1"}}},
    {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {S: "nope"}}},
    {
        "KeyConditionExpression": "PK = :p AND begins_with(SK, :b)",
        "ExpressionAttributeValues": {":p": {S: "p2"}, ":b": {S: "B#"}},
        "ScanIndexForward": False,
        "Limit": 4,
    },
    {
        "KeyConditionExpression": "PK = :p AND SK BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":p": {S: "p3"}, ":a": {S: "A#004"}, ":b": {S: "B#017"}},
        "FilterExpression": "a > :n",
        "ExpressionAttributeValues_extra": {":n": {N: "3"}},
        "Limit": 5,
    },
    {
        "KeyConditionExpression": "PK = :p AND SK > :s",
        "ExpressionAttributeValues": {":p": {S: "p4"}, ":s": {S: "A#010"}},
        "ProjectionExpression": "SK, m.k, #b",
        "ExpressionAttributeNames": {"#b": "bin"},
    },
    {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {S: "big"}}},
    {"KeyConditionExpression": "PK = :p", "ExpressionAttributeValues": {":p": {S: "p0"}}, "Select": "COUNT"},
    {
        "IndexName": "Include",
        "KeyConditionExpression": "G = :g",
        "ExpressionAttributeValues": {":g": {S: "g1"}},
    },
    {
        "IndexName": "Include",
        "KeyConditionExpression": "G = :g",
        "ExpressionAttributeValues": {":g": {S: "g2"}},
        "ScanIndexForward": False,
        "Limit": 7,
    },
    {
        "IndexName": "Include",
        "KeyConditionExpression": "G = :g AND GS >= :r",
        "ExpressionAttributeValues": {":g": {S: "g0"}, ":r": {S: "2"}},
        "FilterExpression": "a <> :n",
        "ExpressionAttributeValues_extra": {":n": {N: "0"}},
        "Limit": 3,
    },
    {
        "IndexName": "Include",
        "KeyConditionExpression": "G = :g",
        "ExpressionAttributeValues": {":g": {S: "g1"}},
        "ProjectionExpression": "PK, a",
    },
    {
        "IndexName": "Include",
        "KeyConditionExpression": "G = :g",
        "ExpressionAttributeValues": {":g": {S: "big"}},
    },
    {
        "IndexName": "Include",
        "KeyConditionExpression": "G = :g",
        "ExpressionAttributeValues": {":g": {S: "g0"}},
        "Select": "COUNT",
    },
    {
        "IndexName": "Keys",
        "KeyConditionExpression": "K = :k",
        "ExpressionAttributeValues": {":k": {S: "k"}},
        "Limit": 4,
        "ScanIndexForward": False,
    },
    {"IndexName": "All", "KeyConditionExpression": "G = :g", "ExpressionAttributeValues": {":g": {S: "g2"}}},
    {
        "IndexName": "All",
        "KeyConditionExpression": "G = :g",
        "ExpressionAttributeValues": {":g": {S: "g0"}},
        "Limit": 6,
        "ScanIndexForward": False,
    },
    {
        "IndexName": "All",
        "KeyConditionExpression": "G = :g",
        "ExpressionAttributeValues": {":g": {S: "none"}},
    },
    {
        "IndexName": "Numbers",
        "KeyConditionExpression": "NUM = :n",
        "ExpressionAttributeValues": {":n": {N: "1"}},
        "Limit": 5,
    },
]


def _pages(ddb: Any, table: str, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of the query, followed through LastEvaluatedKey."""
    request = dict(request)
    request["ExpressionAttributeValues"] = {
        **request.get("ExpressionAttributeValues", {}),
        **request.pop("ExpressionAttributeValues_extra", {}),
    }
    pages = []
    start = None
    while True:
        kwargs = {"TableName": table, **request}
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        page = ddb.query(**kwargs)
        page.pop("ResponseMetadata")
        pages.append(page)
        start = page.get("LastEvaluatedKey")
        if start is None or len(pages) > 100:
            return pages


@pytest.mark.parametrize("request_", QUERIES, ids=lambda q: f"{q.get('IndexName', 'table')}")
def test_answers_as_moto(client, monkeypatch, request_):
    ddb, table = client
    monkeypatch.setattr(Table, "query", ORIGINAL_QUERY)
    monkeypatch.setattr(SecondaryIndex, "project", ORIGINAL_PROJECT)
    theirs = _pages(ddb, table, request_)
    monkeypatch.setattr(Table, "query", moto_query.query)
    monkeypatch.setattr(SecondaryIndex, "project", moto_query.project)
    ours = _pages(ddb, table, request_)
    assert ours == theirs
    # Attribute order too (the same JSON on the wire), not only equal dictionaries.
    assert [[list(i) for i in p.get("Items", [])] for p in ours] == [
        [list(i) for i in p.get("Items", [])] for p in theirs
    ]
    assert sum(p["Count"] for p in theirs) > 0 or "none" in str(request_) or "nope" in str(request_)


def test_pages_are_actually_cut(client, monkeypatch):
    """The cases above exercise pagination: Limit and the 1 MB page both end pages."""
    ddb, table = client
    monkeypatch.setattr(Table, "query", moto_query.query)
    big = _pages(ddb, table, QUERIES[5])
    assert len(big) > 1 and all(p["Count"] < 8 for p in big)
    limited = _pages(ddb, table, QUERIES[8])
    assert len(limited) > 1 and limited[0]["Count"] == 7


def test_reads_only_the_candidates(client, monkeypatch):
    """The whole table is not listed: the view moto's algorithm sees holds the partition."""
    ddb, table = client
    monkeypatch.setattr(Table, "query", moto_query.query)
    seen: list[int] = []
    real = moto_query._Candidates.all_items

    def counted(self):
        items = real(self)
        seen.append(len(items))
        return items

    monkeypatch.setattr(moto_query._Candidates, "all_items", counted)
    monkeypatch.setattr(Table, "all_items", lambda self: pytest.fail("listed the whole table"))
    ddb.query(TableName=table, **QUERIES[0])
    ddb.query(TableName=table, **QUERIES[7])
    assert seen[0] == 25  # the partition p0
    assert 0 < seen[1] < 100  # the items of g1, not the 100 in the index nor the 158 in all


def test_install_is_idempotent(monkeypatch):
    monkeypatch.setattr(Table, "query", ORIGINAL_QUERY)  # put back after the test
    monkeypatch.setattr(SecondaryIndex, "project", ORIGINAL_PROJECT)
    moto_hooks.install(moto_query)
    moto_hooks.install(moto_query)
    assert moto_hooks.installed(moto_query)
