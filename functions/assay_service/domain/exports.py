"""Export encodings of a finished run — pure: items in, bytes out, one item at a time.

* ``json``  — TruLayer's ``{"run": EvalRun, "items": [evaluation, …]}``;
* ``jsonl`` — one evaluation per line (the run is in the json export and the API);
* ``csv``   — one evaluation per row, flat columns, record text fields as stored
  (truncated to 100 characters), with two changes a spreadsheet needs: a text cell that
  starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``
  (OWASP's CSV-injection rule: opened in Excel, LibreOffice or Google Sheets it would
  otherwise be a live formula), and booleans are ``true``/``false``. Numbers are written
  as they are, so a negative score stays a number. The JSON encodings carry the raw text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

FORMATS = {"json": "application/json", "jsonl": "application/x-ndjson", "csv": "text/csv"}

CSV_COLUMNS = [
    "id",
    "run_id",
    "record_id",
    "record_index",
    "trace_id",
    "metric_name",
    "scorer",
    "evaluator_type",
    "status",
    "score",
    "label",
    "is_passed",
    "threshold",
    "confidence",
    "reasoning",
    "error_message",
    "evaluation_cost",
    "created_at",
    "input",
    "output",
    "golden_answer",
]


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def encode_json(run: dict[str, Any], items: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    yield b'{"run":' + _dumps(run) + b',"items":['
    for i, item in enumerate(items):
        yield (b"," if i else b"") + _dumps(item)
    yield b"]}"


def encode_jsonl(items: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for item in items:
        yield _dumps(item) + b"\n"


# What a spreadsheet reads as the start of a formula (OWASP "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a CSV cell: text that a spreadsheet would run as a formula is escaped
    with a leading ``'``; booleans are ``true``/``false``; numbers and None (empty) are
    left to the writer."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_row(values: list[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


def encode_csv(items: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    yield _csv_row(CSV_COLUMNS)
    for item in items:
        record = item.get("record") or {}
        row = {**item, **{k: record.get(k) for k in ("input", "output", "golden_answer")}}
        yield _csv_row([csv_cell(row.get(c)) for c in CSV_COLUMNS])
