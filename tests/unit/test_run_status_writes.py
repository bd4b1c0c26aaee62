"""The transaction ``set_status`` sends: every expression value it names is defined, and a
field set to None (finalize of a run where nothing could be scored: ``result``,
``pass_rate``, ``is_gte_threshold`` are None) is REMOVEd — as a put stores it (absent) —
instead of naming a value the serializer dropped, which DynamoDB rejects with
"An expression attribute value used in expression is not defined"."""

from __future__ import annotations

import re
from typing import Any

import pytest
from assay_service.adapters.dynamodb import (
    DynamoDBRunRepository,
    Table,
    deserialize,
    expression_values,
    item_model,
    serialize,
)
from assay_service.models.domain import Run

from tests.support.factories import a_run


class RecordingClient:
    """Just enough of a DynamoDB client: records TransactWriteItems, answers nothing else."""

    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.transactions.append(kwargs["TransactItems"])
        return {}


def running_run() -> Run:
    return a_run(status="running", item_count=1, failed_count=1, threshold=0.7, batch_size=1)


def assert_well_formed(op: dict[str, Any]) -> None:
    text = " ".join(op.get(k, "") for k in ("UpdateExpression", "ConditionExpression"))
    assert set(re.findall(r":\w+", text)) == set(op.get("ExpressionAttributeValues", {}))
    assert set(re.findall(r"#\w+", text)) == set(op.get("ExpressionAttributeNames", {}))


def apply_update(item: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    """The SET/REMOVE of ``op`` applied to ``item`` (the subset of the grammar _move uses)."""
    names, values = op["ExpressionAttributeNames"], deserialize(op["ExpressionAttributeValues"])
    sets, _, removes = op["UpdateExpression"].removeprefix("SET ").partition(" REMOVE ")
    out = dict(item)
    for assignment in sets.split(", "):
        name, value = assignment.split(" = ")
        out[names[name]] = values[value]
    for name in filter(None, removes.split(", ")):
        out.pop(names[name], None)
    return out


def test_expression_values_keep_none_as_null_where_items_drop_it():
    assert expression_values({":a": None, ":b": 1}) == {":a": {"NULL": True}, ":b": {"N": "1"}}
    assert serialize({"a": None, "b": 1}) == {"b": {"N": "1"}}


@pytest.mark.parametrize(
    "fields",
    [
        # finalize of a run where nothing could be scored
        {
            "completed_at": "2026-01-01T00:00:00+00:00",
            "aggregates": [],
            "result": None,
            "pass_rate": None,
            "is_gte_threshold": None,
            "total_cost": 0.0,
        },
        # a status change that clears a field
        {"error_message": None, "completed_at": "2026-01-01T00:00:00+00:00"},
        # nothing None at all
        {"error_message": "boom", "completed_at": "2026-01-01T00:00:00+00:00"},
    ],
)
def test_set_status_with_none_fields_names_only_defined_values_and_reads_back_none(fields):
    client = RecordingClient()
    run = running_run()
    target = "failed" if "error_message" in fields else "completed"
    assert DynamoDBRunRepository(Table(client, "t")).set_status(
        run, target, expect=["running"], fields=fields
    )
    [ops] = client.transactions
    for op in ops:
        assert_well_formed(next(iter(op.values())))
    update = ops[0]["Update"]
    nones = {name for name, value in fields.items() if value is None}
    removed = set(update["UpdateExpression"].partition(" REMOVE ")[2].split(", ")) - {""}
    assert {update["ExpressionAttributeNames"][n] for n in removed} == nones
    # Stored (with the stale values a previous write may have left) and read back as None.
    stored = deserialize(serialize(run.model_dump(mode="json")))
    stale = {**stored, **dict.fromkeys(nones, "stale")}
    after = item_model(Run, apply_update(stale, update))
    assert after.status == target
    for name in nones:
        assert getattr(after, name) is None
