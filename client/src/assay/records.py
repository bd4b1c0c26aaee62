"""Dataset files: JSONL, JSON or CSV, read as records and written as the JSONL the upload takes.

CSV columns named like record fields (``id``, ``trace_id``, ``prompt``, ``input``,
``context``, ``output``, ``golden_answer``) fill those fields; a ``metadata`` column holds a
JSON object; every other column goes into ``metadata`` under its own name. Empty cells are
left out. Nothing is renamed: a column ``Output`` stays ``Output`` in ``metadata``, and the
server's answer warns about it with the field it likely meant (``warnings`` of the version;
``--strict`` refuses it), so one rule serves every client, not only this reader.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

RECORD_FIELDS = ("id", "trace_id", "prompt", "input", "context", "output", "golden_answer")
FORMATS = ("jsonl", "json", "csv")


class RecordFileError(ValueError):
    """A dataset file cannot be read: the message names the file, line or row, and what is wrong."""


def detect_format(path: Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise RecordFileError(f"unknown format {explicit!r}: use one of {', '.join(FORMATS)}")
        return explicit
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix in FORMATS:
        return suffix
    raise RecordFileError(f"{path}: cannot tell the format from the extension; pass --format jsonl|json|csv")


def iter_records(path: Path, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """Records of a dataset file, one dict each, in file order."""
    fmt = detect_format(path, fmt)
    if fmt == "jsonl":
        with path.open("r", encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield _object(_loads(line, f"{path}:{number}"), f"{path}:{number}")
    elif fmt == "json":
        data = _loads(path.read_text(encoding="utf-8"), str(path))
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        if not isinstance(data, list):
            raise RecordFileError(f'{path}: expected a JSON array of records or {{"records": [...]}}')
        for number, item in enumerate(data, 1):
            yield _object(item, f"{path}: record {number}")
    else:
        with path.open("r", encoding="utf-8", newline="") as handle:
            yield from _csv_records(handle, path)


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RecordFileError(f"{where}: not valid JSON ({exc})") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordFileError(f"{where}: a record must be a JSON object, got {type(value).__name__}")
    return value


def _csv_records(handle: IO[str], path: Path) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(handle)
    if not reader.fieldnames:
        raise RecordFileError(f"{path}: the CSV file has no header row")
    for row in reader:
        record: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        for column, cell in row.items():
            if column is None:  # more cells than header columns
                raise RecordFileError(f"{path}: row {reader.line_num} has more cells than the header")
            if cell is None or cell == "":
                continue
            if column in RECORD_FIELDS:
                record[column] = cell
            elif column == "metadata":
                value = _loads(cell, f"{path}: row {reader.line_num}, column metadata")
                metadata.update(_object(value, f"{path}: row {reader.line_num}, column metadata"))
            else:
                metadata[column] = cell
        if metadata:
            record["metadata"] = metadata
        yield record


def write_jsonl(records: Iterator[dict[str, Any]], out: IO[bytes]) -> int:
    """Write records as JSONL; returns how many."""
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        count += 1
    return count
