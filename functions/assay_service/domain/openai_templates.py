"""OpenAI Evals templates over a free-form item: ``{{item.PATH}}`` and ``{{sample.…}}``.

A record created from an OpenAI Evals data source keeps the item as given in
``metadata["item"]`` and, when the data source row carried one, the sample in
``metadata["sample"]``; the text under test (the sample's ``output_text``, or the answer a
``completions`` run generated) is the record's ``output``.

* ``{{item.a.b}}`` — a key path into the item (list indexes are numbers: ``item.turns.0``);
* ``{{sample.output_text}}`` — the record's output;
* ``{{sample.output_json.a}}`` — a key path into the output parsed as JSON;
* ``{{sample.PATH}}`` — any other key path into the given sample.

A string is inserted as is; any other value as compact JSON. A path the record does not
have is the record's fault (``InvalidRecordError``: that evaluation errors, the run goes
on), as when an OpenAI grader meets an item without the field. Placeholders are the whole
language — no expressions, no filters (decision 0017).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from assay_service.errors import InvalidRecordError

PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_PATH = re.compile(r"^(item|sample)(\.[A-Za-z0-9_\-$]{1,100}){0,16}$")
NAMESPACES = ("item", "sample")


def placeholders(template: str) -> list[str]:
    return [m.group(1) for m in PLACEHOLDER.finditer(template)]


def check(template: str) -> None:
    """Raise ``ValueError`` naming the first placeholder that is not ``item.…``/``sample.…``."""
    for path in placeholders(template):
        if not _PATH.match(path):
            raise ValueError(
                f"template placeholder {{{{{path}}}}}: use {{{{item.<key>}}}} or "
                "{{sample.output_text}} (a key path; no expressions)"
            )
    if "{{" in PLACEHOLDER.sub("", template):
        raise ValueError("an unclosed '{{' placeholder (write {{item.<key>}})")


def _walk(value: Any, keys: list[str], shown: str) -> Any:
    for key in keys:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise InvalidRecordError(f"template placeholder {{{{{shown}}}}}: the record has no {key!r} there")
    return value


def lookup(path: str, record: Mapping[str, Any]) -> Any:
    """The value ``path`` (``item.…``/``sample.…``) names in ``record``."""
    namespace, *keys = path.split(".")
    metadata = record.get("metadata") or {}
    if namespace == "item":
        return _walk(metadata.get("item", {}), keys, path)
    if keys[:1] == ["output_text"] and len(keys) == 1:
        output = record.get("output")
        if output is None:
            raise InvalidRecordError(f"template placeholder {{{{{path}}}}}: the record has no output")
        return output
    if keys[:1] == ["output_json"]:
        try:
            parsed = json.loads(record.get("output") or "")
        except ValueError:
            raise InvalidRecordError(f"template placeholder {{{{{path}}}}}: the output is not JSON") from None
        return _walk(parsed, keys[1:], path)
    return _walk(metadata.get("sample", {}), keys, path)


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render(template: str, record: Mapping[str, Any]) -> str:
    """``template`` with every placeholder replaced from ``record``."""
    return PLACEHOLDER.sub(lambda m: as_text(lookup(m.group(1), record)), template)


def content_text(content: Any) -> str:
    """A message's content as text: a string, or ``input_text``/``output_text`` parts (one,
    or a list of them and strings, joined by newlines). Images and audio are refused."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else [content]
    if not parts:
        raise ValueError("content is empty")
    texts = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in ("input_image", "input_audio"):
            raise ValueError(
                f"{kind} content is not supported: Assay sends models text only "
                "(a string, or input_text / output_text parts)"
            )
        else:
            raise ValueError(
                "content must be a string, or input_text / output_text parts ({type, text})"
                + (f", not {kind!r}" if isinstance(kind, str) else "")
            )
    return "\n".join(texts)
