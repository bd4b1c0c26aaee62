"""Reading history saved from OpenAI's Evals API (``assay import openai-evals DIR``).

OpenAI's hosted Evals API shut down on 30 Nov 2026; its users kept their evals, runs and
output items as the API returned them, in JSON. ``read_history`` walks a directory (or one
file) for ``*.json`` and ``*.jsonl`` files and sorts what they hold by the ``object`` field:

* a ``.json`` file holds one object, a list page as the API returned it
  (``{"object": "list", "data": [...]}``) or a JSON array of objects (a file of one JSON
  document a line, named ``.json``, is read as JSONL);
* a ``.jsonl`` file holds one object (or list page) a line, read line by line: a file of any
  size is never loaded whole.

``eval``, ``eval.run`` and ``eval.run.output_item`` objects are kept (deduplicated by ``id``);
anything else is skipped, each skip remembered with its file and line. Output items are not
kept in memory: each goes to a temporary spool file as one JSONL line, and a run's items are
read back from it, cut into upload files of at most ``FILE_LIMIT`` bytes (``split_sizes``).

A file that cannot be read — not JSON, not UTF-8, unreadable — is a ``SavedHistoryError``
naming the file and line: nothing is imported from a directory that holds one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

EVAL, RUN, ITEM = "eval", "eval.run", "eval.run.output_item"
KINDS = (EVAL, RUN, ITEM)
SUFFIXES = (".json", ".jsonl")
# The server holds at most 5 MiB a file (a Lambda request with the form around it); the
# upload files are cut at line boundaries to at most 4.5 MB, to be safe.
FILE_LIMIT = 4_500_000
MAX_FILES_PER_RUN = 100  # output_item_files: at most 100 files a run
MAX_LINE_BYTES = 64 * 1024 * 1024  # one JSONL line (an object or a page of them)
MAX_DEPTH = 3  # an array of list pages of objects, and no deeper


class SavedHistoryError(Exception):
    """A file that cannot be read as saved history: ``path``, ``line`` (1-based, or None)."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path, self.line, self.reason = str(path), line, message
        super().__init__(f"{self.path}{f':{line}' if line else ''}: {message}")


@dataclass
class Skipped:
    """Something left out, and why: ``reason`` in full, ``category`` for the summary (the
    reason when not given); ``where`` is ``file[:line]``."""

    where: str
    reason: str
    kind: str = ""
    id: str | None = None
    category: str = ""

    def __post_init__(self) -> None:
        self.category = self.category or self.reason

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "kind": self.kind, "id": self.id, "reason": self.reason}


@dataclass
class Saved:
    """A saved eval or run as the API returned it, and where it was found."""

    obj: dict[str, Any]
    where: str

    @property
    def id(self) -> str:
        return str(self.obj["id"])


@dataclass
class _Items:
    """A run's output items in the spool: (offset, length) per line; their ids."""

    spans: list[tuple[int, int]] = field(default_factory=list)
    where: str = ""
    positions: dict[int, str] = field(default_factory=dict)  # datasource_item_id → item id


class SavedHistory:
    """What a directory of saved history holds. Use as a context manager (the spool file)."""

    def __init__(self) -> None:
        self.evals: dict[str, Saved] = {}
        self.runs: dict[str, Saved] = {}
        self.skipped: list[Skipped] = []
        self.files: list[str] = []
        self.duplicates = 0
        self._items: dict[str, _Items] = {}
        self._item_ids: set[str] = set()
        self._spool: IO[bytes] = tempfile.TemporaryFile(prefix="assay-import-")  # noqa: SIM115
        self._end = 0

    # ------------------------------------------------------------------ reading
    def __enter__(self) -> SavedHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._spool.close()

    def item_count(self, run_id: str) -> int:
        items = self._items.get(run_id)
        return len(items.spans) if items else 0

    def item_sizes(self, run_id: str) -> list[int]:
        items = self._items.get(run_id)
        return [length for _, length in items.spans] if items else []

    def item_lines(self, run_id: str) -> Iterator[bytes]:
        """The run's output items, one JSONL line each (ending with a newline), as read."""
        items = self._items.get(run_id)
        for offset, length in items.spans if items else ():
            self._spool.seek(offset)
            yield self._spool.read(length)

    def item_files(self, run_id: str, limit: int | None = None) -> Iterator[bytes]:
        """The run's output items as upload files of at most ``limit`` (``FILE_LIMIT``) bytes each."""
        lines = self.item_lines(run_id)
        for chunk in split_sizes(self.item_sizes(run_id), limit or FILE_LIMIT):
            yield b"".join(next(lines) for _ in chunk)

    def orphan_items(self) -> dict[str, tuple[int, str]]:
        """Runs not in the directory whose output items are: run id → (item count, where first seen)."""
        return {
            run_id: (len(items.spans), items.where)
            for run_id, items in self._items.items()
            if run_id not in self.runs
        }

    # ------------------------------------------------------------------ classifying
    def take(self, value: Any, where: str, depth: int = 0) -> None:
        """One parsed JSON value: an object, a list page or an array of them."""
        elements = value if isinstance(value, list) else None
        if isinstance(value, dict) and value.get("object") == "list":
            elements = value.get("data")
            if not isinstance(elements, list):
                self._skip(where, "a list page without a data array", "bad list pages", "list")
                return
        if elements is not None:
            if depth >= MAX_DEPTH:
                self._skip(where, "an array or list page nested too deeply", "arrays nested too deeply")
                return
            for element in elements:
                self.take(element, where, depth + 1)
        elif not isinstance(value, dict):
            self._skip(where, f"a JSON {_json_type(value)}, not an object", "values that are not objects")
        else:
            self._object(value, where)

    def _skip(
        self, where: str, reason: str, category: str, kind: str = "", object_id: str | None = None
    ) -> None:
        self.skipped.append(Skipped(where, reason, kind, object_id, category))

    def _object(self, value: dict[str, Any], where: str) -> None:
        kind = value.get("object")
        if kind not in KINDS:
            reason = (
                "no 'object' field"
                if kind is None
                else f"object {_short(kind)} is not an eval, eval.run or eval.run.output_item"
            )
            self._skip(where, reason, "objects of other kinds", str(kind) if isinstance(kind, str) else "")
            return
        object_id = value.get("id")
        if not isinstance(object_id, str) or not object_id:
            self._skip(where, f"an {kind} without an id", "objects without an id", kind)
        elif kind == EVAL:
            self._keep(self.evals, value, where)
        elif kind == ITEM:
            self._item(value, where)
        elif not isinstance(value.get("eval_id"), str) or not value["eval_id"]:
            self._skip(where, "a run without an eval_id", "runs without an eval_id", kind, object_id)
        else:
            self._keep(self.runs, value, where)

    def _keep(self, into: dict[str, Saved], value: dict[str, Any], where: str) -> None:
        if value["id"] in into:
            self.duplicates += 1
            return
        into[value["id"]] = Saved(value, where)

    def _item(self, value: dict[str, Any], where: str) -> None:
        item_id, run_id, position = value["id"], value.get("run_id"), value.get("datasource_item_id")
        if not isinstance(run_id, str) or not run_id:
            self._skip(
                where, "an output item without a run_id", "output items without a run_id", ITEM, item_id
            )
            return
        if not isinstance(position, int) or isinstance(position, bool):
            reason = "an output item without an integer datasource_item_id"
            self._skip(where, reason, "output items without a datasource_item_id", ITEM, item_id)
            return
        if item_id in self._item_ids:
            self.duplicates += 1
            return
        items = self._items.setdefault(run_id, _Items(where=where))
        if position in items.positions:
            reason = f"datasource_item_id {position} again (output item {items.positions[position]} has it)"
            self._skip(where, reason, "output items repeating a datasource_item_id", ITEM, item_id)
            return
        line = _jsonl_line(value)
        self._spool.seek(self._end)
        self._spool.write(line)
        items.spans.append((self._end, len(line)))
        items.positions[position] = item_id
        self._end += len(line)
        self._item_ids.add(item_id)


def read_history(root: Path | str) -> SavedHistory:
    """Every ``*.json`` and ``*.jsonl`` file under ``root`` (a directory, read recursively in
    path order, or one file), classified. Raises ``SavedHistoryError`` for a file that cannot
    be read, ``FileNotFoundError`` for a missing ``root``."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(root)
    history = SavedHistory()
    try:
        for path in _files(root):
            history.files.append(str(path))
            if path.suffix.lower() == ".jsonl":
                _read_jsonl(path, history)
            else:
                _read_json(path, history)
    except BaseException:
        history.close()
        raise
    return history


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found = []
    for directory, subdirs, names in os.walk(root, onerror=_walk_error):  # symlinked dirs not followed
        subdirs.sort()
        # regular files only: a FIFO or device named *.jsonl would block or never end
        found += [Path(directory, n) for n in names if Path(n).suffix.lower() in SUFFIXES]
    return sorted(path for path in found if path.is_file())


def _walk_error(exc: OSError) -> None:
    raise SavedHistoryError(exc.filename or "?", None, f"cannot read the directory ({exc.strerror})")


def _read_jsonl(path: Path, history: SavedHistory) -> None:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SavedHistoryError(path, None, f"cannot read it ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(_lines(handle, path), start=1):
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
            if not line.strip():
                continue
            history.take(_parse(line.rstrip(b"\r\n"), path, number), f"{path}:{number}")


def _lines(handle: IO[bytes], path: Path) -> Iterator[bytes]:
    number = 0
    while True:
        line = handle.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES:
            raise SavedHistoryError(
                path, number, f"a line longer than {MAX_LINE_BYTES // (1024 * 1024)} MB (is this JSONL?)"
            )
        yield line


def _read_json(path: Path, history: SavedHistory) -> None:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SavedHistoryError(path, None, f"cannot read it ({exc.strerror})") from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    if not data.strip():
        history.skipped.append(Skipped(str(path), "an empty file", category="empty files"))
        return
    try:
        value = _parse(data, path, None)
    except _ExtraData as extra:
        lines = [(n, line.rstrip(b"\r")) for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
        try:
            json.loads(lines[0][1])
        except ValueError:  # not one document a line: several documents one after another
            raise SavedHistoryError(
                path,
                extra.line,
                f"not valid JSON: a second document starts at column {extra.column} (several "
                "documents in one file must be JSONL, one a line)",
            ) from None
        # One JSON document a line, saved as .json: read it as JSONL.
        for number, line in lines:
            history.take(_parse(line, path, number), f"{path}:{number}")
        return
    history.take(value, str(path))


class _ExtraData(Exception):
    """A JSON document followed by more (at ``line``, ``column``): perhaps JSONL in a .json file."""

    def __init__(self, line: int, column: int) -> None:
        super().__init__(line, column)
        self.line, self.column = line, column


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(data: bytes, path: Path, line: int | None) -> Any:
    """One JSON document; ``line`` is the document's line in the file (None: the whole file)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = (line or 1) + data[: exc.start].count(b"\n")
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SavedHistoryError(
            path, at, f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column})"
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        if line is None and exc.msg == "Extra data" and "\n" in text[: exc.pos]:
            raise _ExtraData(exc.lineno, exc.colno) from None
        at = (line or 1) + exc.lineno - 1
        raise SavedHistoryError(path, at, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except ValueError as exc:  # NaN, Infinity
        raise SavedHistoryError(path, line, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise SavedHistoryError(path, line, "not readable: JSON nested too deeply") from None


def _jsonl_line(value: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate ("\ud800" in the JSON): keep it escaped
        return json.dumps(value, separators=(",", ":")).encode("ascii") + b"\n"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# ---------------------------------------------------------------------------- upload files
class LineTooLargeError(ValueError):
    """One line is larger than a whole upload file may be."""

    def __init__(self, index: int, size: int, limit: int) -> None:
        super().__init__(f"line {index + 1} is {size:,} bytes, over the {limit:,} an upload file may hold")
        self.index, self.size, self.limit = index, size, limit


def split_sizes(sizes: Sequence[int], limit: int | None = None) -> list[range]:
    """Lines of these sizes (in bytes, newline included) grouped into consecutive files of at
    most ``limit`` bytes each: the index range of each file's lines. Raises
    ``LineTooLargeError`` when a line alone is over ``limit``."""
    limit = limit or FILE_LIMIT
    files: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if size > limit:
            raise LineTooLargeError(index, size, limit)
        if total + size > limit:
            files.append(range(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        files.append(range(start, len(sizes)))
    return files


def split_jsonl(lines: Iterable[bytes], limit: int | None = None) -> list[bytes]:
    """JSONL lines (each ending with a newline) joined into files of at most ``limit`` bytes,
    cut at line boundaries."""
    lines = list(lines)
    return [b"".join(lines[i] for i in chunk) for chunk in split_sizes([len(x) for x in lines], limit)]
