"""The local stack's DynamoDB response writer gives moto's own answer for every item operation."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from assay_local import moto_dynamodb_json, moto_hooks
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

ORIGINAL = moto_dynamodb_json._original_serialized
ITEM = {
    "PK": {"S": "a"},
    "SK": {"S": "b"},
    "n": {"N": "1.50"},
    "big": {"N": "-1e+100"},
    "bin": {"B": b"\x00\xff\x10"},
    "bs": {"BS": [b"\x01", b"\x02"]},
    "ns": {"NS": ["1", "2.5"]},
    "ss": {"SS": ["x", "ÿ ✓"]},
    "l": {"L": [{"NULL": True}, {"BOOL": False}, {"S": "\u2028"}]},
    "m": {"M": {"deep": {"M": {"x": {"L": [{"N": "0"}]}}}}},
    "esc": {"S": 'quote" \\ \n \x01'},
}


@pytest.fixture
def compared(monkeypatch):
    """Every DynamoDB response written both ways; the operations whose bodies ours wrote."""
    ours: list[str] = []

    def both(self, action_result):
        expected = ORIGINAL(self, action_result)
        body = moto_dynamodb_json.dump(self._get_action(), action_result.result)
        if body is not None:
            actual = moto_dynamodb_json.serialized(self, action_result)
            assert actual[0] == expected[0]
            assert actual[1]["Content-Type"] == expected[1]["Content-Type"]
            assert json.loads(actual[2]) == json.loads(expected[2]), self._get_action()
            ours.append(self._get_action())
        return expected

    monkeypatch.setattr(DynamoHandler, "serialized", both)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield ours


def test_every_item_operation_answers_as_moto_does(compared):
    c = boto3.client("dynamodb", region_name="us-east-1")
    table = f"t-{uuid.uuid4().hex}"  # another mock_aws may be active in the full suite
    c.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
    )
    key = {"PK": {"S": "a"}, "SK": {"S": "b"}}
    c.put_item(TableName=table, Item=ITEM)
    c.put_item(TableName=table, Item=ITEM, ReturnValues="ALL_OLD", ReturnConsumedCapacity="TOTAL")
    assert c.get_item(TableName=table, Key=key)["Item"]["bin"]["B"] == b"\x00\xff\x10"
    c.get_item(TableName=table, Key={"PK": {"S": "none"}, "SK": {"S": "b"}})
    c.get_item(
        TableName=table,
        Key=key,
        ProjectionExpression="m.deep, #n",
        ExpressionAttributeNames={"#n": "n"},
        ReturnConsumedCapacity="INDEXES",
    )
    c.query(
        TableName=table,
        KeyConditionExpression="PK = :p",
        Limit=1,
        ExpressionAttributeValues={":p": {"S": "a"}},
        ReturnConsumedCapacity="TOTAL",
    )
    c.query(
        TableName=table,
        KeyConditionExpression="PK = :p",
        Select="COUNT",
        ExpressionAttributeValues={":p": {"S": "zzz"}},
    )
    c.scan(TableName=table, FilterExpression="attribute_exists(bin)")
    c.batch_get_item(
        RequestItems={table: {"Keys": [key, {"PK": {"S": "x"}, "SK": {"S": "y"}}]}},
        ReturnConsumedCapacity="TOTAL",
    )
    c.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET n = n + :o REMOVE esc",
        ExpressionAttributeValues={":o": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    c.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET n = :o",
        ExpressionAttributeValues={":o": {"N": "3"}},
        ReturnValues="UPDATED_OLD",
    )
    c.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}])
    c.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": {"PK": {"S": "c"}, "SK": {"S": "d"}}}}]
    )
    c.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": {"PK": {"S": "e"}, "SK": {"S": "f"}}}}]})
    c.delete_item(TableName=table, Key={"PK": {"S": "e"}, "SK": {"S": "f"}}, ReturnValues="ALL_OLD")
    with pytest.raises(ClientError) as refused:  # an error: moto's serializer, untouched
        c.put_item(TableName=table, Item=ITEM, ConditionExpression="attribute_not_exists(PK)")
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert set(compared) == moto_dynamodb_json.ITEM_OPERATIONS


def test_other_operations_and_unwritable_results_go_to_moto():
    assert moto_dynamodb_json.dump("DescribeTable", {"Table": {}}) is None
    assert moto_dynamodb_json.dump("GetItem", ["not", "a", "dict"]) is None
    assert moto_dynamodb_json.dump("GetItem", {"Item": {"when": object()}}) is None
    assert moto_dynamodb_json.dump("GetItem", {"Item": {}, "moto_only": 1}) == '{"Item": {}}'


def test_install_is_idempotent(monkeypatch):
    monkeypatch.setattr(DynamoHandler, "serialized", ORIGINAL)
    moto_hooks.install(moto_dynamodb_json)
    moto_hooks.install(moto_dynamodb_json)
    assert moto_hooks.installed(moto_dynamodb_json)
