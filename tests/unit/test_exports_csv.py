"""CSV exports are safe to open in a spreadsheet: text that would run as a formula is
escaped with a leading ``'`` (OWASP's CSV-injection rule), numbers stay numbers, booleans
are ``true``/``false``; the JSON encodings carry the raw text."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from assay_service.domain.exports import (
    CSV_COLUMNS,
    FORMULA_STARTS,
    csv_cell,
    encode_csv,
    encode_json,
    encode_jsonl,
)

LEADS = ["=", "+", "-", "@", "\t", "\r"]
# Evaluation fields and record fields: (where, name).
TEXT_FIELDS = [
    ("item", "reasoning"),
    ("item", "error_message"),
    ("item", "label"),
    ("item", "record_id"),
    ("record", "input"),
    ("record", "output"),
    ("record", "golden_answer"),
]
PAYLOAD = {
    "=": '=HYPERLINK("http://x.test","click")',
    "+": "+1+cmd|' /C calc'!A0",
    "-": "-2+3",
    "@": "@SUM(A1:A9)",
    "\t": "\t=1+1",
    "\r": "\r=1+1",
}


def item(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": "e1",
        "run_id": "r1",
        "record_id": "q1",
        "record_index": 0,
        "trace_id": "t1",
        "metric_name": "exact",
        "scorer": "exact_match",
        "evaluator_type": "rule",
        "status": "complete",
        "score": -0.5,
        "label": "pass",
        "is_passed": True,
        "threshold": 1.0,
        "confidence": None,
        "reasoning": "fine",
        "error_message": None,
        "evaluation_cost": 0.0,
        "created_at": "2026-01-01T00:00:00Z",
        "record": {"input": "in", "output": "out", "golden_answer": "gold"},
    }
    return {**base, **overrides}


def hostile_items() -> list[tuple[str, str, dict[str, Any]]]:
    """Each leading character in each text field: 6 × 7 = 42 cells."""
    out = []
    for lead in LEADS:
        for where, name in TEXT_FIELDS:
            value = PAYLOAD[lead]
            if where == "item":
                out.append((name, value, item(**{name: value})))
            else:
                out.append((name, value, item(record={**item()["record"], name: value})))
    return out


def parse(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    text = b"".join(encode_csv(items)).decode()
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_leading_characters_are_owasps():
    assert set(FORMULA_STARTS) == set(LEADS)


def test_every_hostile_text_cell_is_escaped_with_a_leading_quote():
    cases = hostile_items()
    assert len(cases) == 42
    rows = parse([case for _, _, case in cases])
    assert len(rows) == len(cases)
    for (column, value, _), row in zip(cases, rows, strict=True):
        assert row[column] == "'" + value, (column, value, row[column])
        # nothing else in the row changed
        assert row["metric_name"] == "exact" and row["status"] == "complete"
    # and no cell of the whole export starts with a formula character any more
    for row in rows:
        for column in CSV_COLUMNS:
            if column not in {"score", "threshold", "confidence", "evaluation_cost", "record_index"}:
                assert not row[column].startswith(tuple(LEADS)), (column, row[column])


def test_numbers_stay_numbers_and_booleans_are_lowercase():
    (row,) = parse(
        [
            item(
                score=-0.5,
                threshold=1.0,
                confidence=-1e-05,
                evaluation_cost=0.25,
                record_index=-1,
                is_passed=True,
            )
        ]
    )
    assert row["score"] == "-0.5" and float(row["score"]) == -0.5
    assert row["confidence"] == "-1e-05" and float(row["confidence"]) == -1e-05
    assert row["record_index"] == "-1" and row["threshold"] == "1.0"
    assert row["evaluation_cost"] == "0.25"
    assert row["is_passed"] == "true"
    (row,) = parse([item(is_passed=False, error_message=None, score=None)])
    assert row["is_passed"] == "false" and row["error_message"] == "" and row["score"] == ""


def test_harmless_text_is_written_as_it_is():
    for value in ("Paris", "a=b", " =1", "'quoted", "1+1", "", "naïve — ünïcode"):
        (row,) = parse([item(reasoning=value)])
        assert row["reasoning"] == value


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1", "'=1"),
        ("-1", "'-1"),
        (-1, -1),
        (0.5, 0.5),
        (True, "true"),
        (False, "false"),
        (None, ""),
        ("x", "x"),
    ],
)
def test_csv_cell(value, cell):
    assert csv_cell(value) == cell


def test_json_and_jsonl_carry_the_raw_text():
    items = [case for _, _, case in hostile_items()]
    document = json.loads(b"".join(encode_json({"id": "r1"}, items)))
    assert document["items"] == items
    lines = [json.loads(line) for line in b"".join(encode_jsonl(items)).splitlines()]
    assert lines == items
