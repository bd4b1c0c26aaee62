"""TransactWriteItems without copying whole tables (assay_local.moto_transactions) answers as
moto's own does — and as DynamoDB does: all or nothing, reasons per item in order."""

from __future__ import annotations

import uuid

import boto3
import pytest
from assay_local import moto_hooks, moto_transactions
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

ORIGINAL = DynamoDBBackend.transact_write_items
TABLE = "t"


@pytest.fixture(params=["moto", "ours"])
def ddb(request, monkeypatch):
    """A table on moto, with moto's TransactWriteItems or ours: every test runs on both, so
    ours is held to moto's answers."""
    monkeypatch.setattr(
        DynamoDBBackend,
        "transact_write_items",
        ORIGINAL if request.param == "moto" else moto_transactions.transact_write_items,
    )
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        # A name of its own: under the full suite another mock_aws is active (the functional
        # tests' session stack), so the backend is not reset between these tests.
        global TABLE
        TABLE = f"t-{uuid.uuid4().hex}"
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
        )
        client.put_item(
            TableName=TABLE,
            Item={"PK": {"S": "run"}, "SK": {"S": "RUN"}, "n": {"N": "0"}, "status": {"S": "running"}},
        )
        yield client


def key(pk: str, sk: str) -> dict:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def items(client) -> list[dict]:
    return sorted(client.scan(TableName=TABLE)["Items"], key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def put(pk: str, sk: str, condition: str | None = "attribute_not_exists(PK)") -> dict:
    op = {"TableName": TABLE, "Item": {**key(pk, sk), "v": {"S": "x"}}}
    return {"Put": {**op, "ConditionExpression": condition} if condition else op}


def add(n: int, status: str = "running") -> dict:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": key("run", "RUN"),
            "UpdateExpression": "ADD n :n",
            "ConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":n": {"N": str(n)}, ":s": {"S": status}},
        }
    }


def reasons(exc: ClientError) -> list[str]:
    return [r["Code"] for r in exc.response["CancellationReasons"]]


def test_a_transaction_applies_every_write(ddb):
    ddb.transact_write_items(TransactItems=[put("run", "B#1"), add(5)])
    assert [i["SK"]["S"] for i in items(ddb)] == ["B#1", "RUN"]
    assert items(ddb)[1]["n"] == {"N": "5"}


def test_a_failed_condition_cancels_all_with_reasons_in_order(ddb):
    ddb.transact_write_items(TransactItems=[put("run", "B#1"), add(5)])
    before = items(ddb)
    with pytest.raises(ClientError) as caught:  # the batch again: a duplicate delivery
        ddb.transact_write_items(TransactItems=[put("run", "B#1"), add(5)])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert reasons(caught.value) == ["ConditionalCheckFailed", "None"]
    with pytest.raises(ClientError) as caught:  # the run is no longer running
        ddb.transact_write_items(TransactItems=[put("run", "B#2"), add(5, status="done")])
    assert reasons(caught.value) == ["None", "ConditionalCheckFailed"]
    assert items(ddb) == before  # nothing of either was written


def test_all_old_comes_back_with_a_failed_condition(ddb):
    op = put("run", "RUN")
    op["Put"]["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    with pytest.raises(ClientError) as caught:
        ddb.transact_write_items(TransactItems=[op])
    assert caught.value.response["CancellationReasons"][0]["Item"]["status"] == {"S": "running"}


def test_two_writes_to_one_item_are_refused(ddb):
    with pytest.raises(ClientError) as caught:
        ddb.transact_write_items(TransactItems=[add(1), add(2)])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert items(ddb)[0]["n"] == {"N": "0"}


def test_a_write_that_fails_after_others_were_applied_puts_them_back(ddb):
    # The first two writes pass their checks and are applied; the third's update expression
    # is refused only when applied (ADD of a number to a string): all three are undone.
    bad = {
        "Update": {
            "TableName": TABLE,
            "Key": key("run", "RUN"),
            "UpdateExpression": "ADD #s :n",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":n": {"N": "1"}},
        }
    }
    ddb.put_item(TableName=TABLE, Item={**key("run", "OLD"), "v": {"S": "before"}})
    before = items(ddb)
    replace = {"Put": {"TableName": TABLE, "Item": {**key("run", "OLD"), "v": {"S": "after"}}}}
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=[put("run", "B#9"), replace, bad])
    assert items(ddb) == before


def test_a_delete_and_a_condition_check(ddb):
    ddb.put_item(TableName=TABLE, Item={**key("run", "B#1"), "v": {"S": "x"}})
    check = {
        "ConditionCheck": {
            "TableName": TABLE,
            "Key": key("run", "RUN"),
            "ConditionExpression": "n = :z",
            "ExpressionAttributeValues": {":z": {"N": "0"}},
        }
    }
    delete = {"Delete": {"TableName": TABLE, "Key": key("run", "B#1")}}
    ddb.transact_write_items(TransactItems=[check, delete])
    assert [i["SK"]["S"] for i in items(ddb)] == ["RUN"]


def test_install_is_idempotent(monkeypatch):
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", ORIGINAL)
    assert not moto_hooks.installed(moto_transactions)
    moto_hooks.install(moto_transactions)
    moto_hooks.install(moto_transactions)
    assert moto_hooks.installed(moto_transactions)
