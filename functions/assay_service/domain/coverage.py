"""Which record fields a dataset version's records have, and what looks misnamed.

Counted once, while a version is written (the records stream through anyway), and stored
on the version: scheduling a run checks the eval's metrics against these counts without
reading the records again. Kept small whatever the upload: five counts and at most
MAX_UNKNOWN_FIELDS names of at most MAX_NAME_CHARS characters each.

A record has a field when it is not null; an empty string counts, because the scorers
read it (``text_of`` fails only a missing field).

Unknown top-level keys never reach a stored record: the API refuses them (``RecordIn``
forbids extra fields). They arrive in ``metadata`` instead: the CLI's CSV reader stores
every column that is not a record field there under its own name, so a header
``Output,golden`` yields records with no ``output`` and no ``golden_answer``. A metadata
key that looks like a record field (its name in another case or spelling, or a common
synonym) is therefore reported as an unknown field with a suggestion; other metadata keys
(``category``, ``source``…) are what metadata is for and are not reported.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from assay_service.models.domain import Record

TEXT_FIELDS = ("prompt", "input", "context", "output", "golden_answer")
# Suggestions may also name the id fields: an ``ID`` column is an ``id`` in another case.
_SUGGESTABLE = (*TEXT_FIELDS, "id", "trace_id")
MAX_UNKNOWN_FIELDS = 50
MAX_NAME_CHARS = 64
# Distinct metadata keys examined per version; a file with more (a key per record) stops
# being examined there, so an upload's time and memory stay bounded.
MAX_KEYS_EXAMINED = 1_000
_CLOSE_MATCH = 0.8  # difflib ratio: "outptu" and "contexts" match, "content" does too

# Names other tools and datasets use for the record fields; only unambiguous ones (an
# "answer" column may be the model's answer or the expected one: difflib decides).
ALIASES = {
    "expected": "golden_answer",
    "expected_output": "golden_answer",
    "expected_answer": "golden_answer",
    "reference": "golden_answer",
    "reference_answer": "golden_answer",
    "ground_truth": "golden_answer",
    "gold": "golden_answer",
    "golden": "golden_answer",
    "gold_answer": "golden_answer",
    "target": "golden_answer",
    "response": "output",
    "completion": "output",
    "prediction": "output",
    "actual_output": "output",
    "model_output": "output",
    "generation": "output",
    "contexts": "context",
    "retrieved_context": "context",
    "documents": "context",
}


def suggestion(name: str) -> str | None:
    """The record field ``name`` most likely meant, or None when it looks like none."""
    key = name.strip().casefold().replace("-", "_").replace(" ", "_")
    if not key or len(key) > MAX_NAME_CHARS:
        return None
    if key in _SUGGESTABLE:
        return key
    if key in ALIASES:
        return ALIASES[key]
    close = difflib.get_close_matches(key, _SUGGESTABLE, n=1, cutoff=_CLOSE_MATCH)
    return close[0] if close else None


def unknown_field_hint(error: Mapping[str, Any]) -> str:
    """``; did you mean 'output'?`` for a record's unknown top-level key (pydantic's
    ``extra_forbidden`` at ``records[i].KEY`` in a body, or ``KEY`` of an uploaded line),
    else ``""``: the inline and the upload path answer the same misnamed key alike."""
    loc = tuple(error.get("loc", ()))
    if error.get("type") != "extra_forbidden" or not loc or not isinstance(loc[-1], str):
        return ""
    in_records = len(loc) >= 3 and isinstance(loc[-2], int) and loc[-3] == "records"
    if not (in_records or len(loc) == 1):
        return ""
    target = suggestion(loc[-1])
    return f"; did you mean {target!r}?" if target else ""


class Coverage:
    """Counts, record by record, which fields are present and which metadata keys look
    like misnamed record fields."""

    __slots__ = ("_examined", "fields", "records", "unknown")

    def __init__(self) -> None:
        self.records = 0
        self.fields: dict[str, int] = dict.fromkeys(TEXT_FIELDS, 0)
        self.unknown: dict[str, int] = {}
        self._examined: set[str] = set()

    def add(self, record: Record) -> None:
        self.records += 1
        fields = self.fields
        if record.prompt is not None:
            fields["prompt"] += 1
        if record.input is not None:
            fields["input"] += 1
        if record.context is not None:
            fields["context"] += 1
        if record.output is not None:
            fields["output"] += 1
        if record.golden_answer is not None:
            fields["golden_answer"] += 1
        for key in record.metadata:
            if key in self.unknown:
                self.unknown[key] += 1
            elif key not in self._examined and len(self._examined) < MAX_KEYS_EXAMINED:
                self._examined.add(key)
                if len(self.unknown) < MAX_UNKNOWN_FIELDS and suggestion(key) is not None:
                    self.unknown[key] = 1

    def unknown_fields(self) -> dict[str, int]:
        """The reported names, each cut to MAX_NAME_CHARS characters."""
        out: dict[str, int] = {}
        for name, count in self.unknown.items():
            short = name[:MAX_NAME_CHARS]
            out[short] = max(out.get(short, 0), count)
        return out


def warnings(
    record_count: int, fields: dict[str, int] | None, unknown_fields: dict[str, int] | None
) -> list[dict[str, Any]]:
    """What a version's stored coverage says is likely wrong, as ``DataWarning`` dicts.

    ``count`` is the number of records the warning is about: those holding the unknown
    key, or those lacking the field. None for a version stored without coverage."""
    if fields is None:
        return []
    out: list[dict[str, Any]] = []
    for name, count in (unknown_fields or {}).items():
        target = suggestion(name)
        where = f"({count:,} of {record_count:,} records)"
        if name == target:  # a metadata key spelt exactly like the field
            message = f"{name!r} was stored in metadata {where}, not as the record field"
        else:
            hint = f" — did you mean {target!r}?" if target else ""
            message = f"{name!r} is not a record field; it was stored in metadata {where}{hint}"
        out.append(
            {"code": "unknown_field", "field": name, "count": count, "suggestion": target, "message": message}
        )
    have = fields.get("output", 0)
    if have == 0:
        out.append(
            {
                "code": "missing_field",
                "field": "output",
                "count": record_count,
                "suggestion": None,
                "message": f"no record has 'output' (0 of {record_count:,}): every scorer reads "
                "it unless a metric's args name another field",
            }
        )
    elif have < record_count:
        out.append(
            {
                "code": "partial_field",
                "field": "output",
                "count": record_count - have,
                "suggestion": None,
                "message": f"{record_count - have:,} of {record_count:,} records have no "
                "'output': metrics reading it cannot score those records",
            }
        )
    return out
