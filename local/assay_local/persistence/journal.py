"""The write-ahead journal: one SQLite file (WAL, ``synchronous=NORMAL``) holding the
requests to replay (in the order moto applied them; a snapshot's rows first), the template
secrets' values and a little metadata; and the reports of a replay and of a compaction."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from assay_local.persistence.wsgi_capture import Environ


@dataclass
class ReplayReport:
    rows: int = 0
    failed: int = 0
    seconds: float = 0.0
    bytes: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class CompactionReport:
    rows: int
    bytes: int
    seconds: float


class Journal:
    """The SQLite file: journal rows (requests, in the order moto applied them; a
    snapshot's rows first), the secrets' values, and a little metadata."""

    def __init__(self, path: Path) -> None:
        self.path = path
        new = not path.exists()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if new:  # must precede the first table: lets a compaction give pages back
            self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS journal (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,          -- 'write' (served by moto) or 'snapshot'
                request TEXT NOT NULL,       -- the stored WSGI environ (JSON)
                body BLOB NOT NULL,
                result TEXT                  -- CreateMultipartUpload: the upload id
            );
            CREATE TABLE IF NOT EXISTS secrets (
                logical_id TEXT PRIMARY KEY, string TEXT, binary BLOB);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """)
        self.lock = threading.Lock()
        sums = dict(
            self.db.execute(
                "SELECT kind, COALESCE(SUM(length(request) + length(body)), 0) FROM journal GROUP BY kind"
            ).fetchall()
        )
        self.write_bytes = int(sums.get("write", 0))
        self.snapshot_bytes = int(sums.get("snapshot", 0))

    # ---- metadata
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # ---- rows
    def append(self, environ: Environ, body: bytes, result: str | None = None) -> None:
        request = json.dumps(environ, separators=(",", ":"))
        with self.lock:
            self.db.execute(
                "INSERT INTO journal(kind, request, body, result) VALUES ('write', ?, ?, ?)",
                (request, body, result),
            )
            self.write_bytes += len(request) + len(body)

    def rows(self) -> Iterator[tuple[int, str, Environ, bytes, str | None]]:
        cursor = self.db.execute("SELECT seq, kind, request, body, result FROM journal ORDER BY seq")
        for seq, kind, request, body, result in cursor:
            yield seq, kind, json.loads(request), bytes(body), result

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM journal").fetchone()[0])

    def replace_with(self, snapshot: Iterable[tuple[Environ, bytes]]) -> tuple[int, int]:
        """Every row replaced by ``snapshot``'s, in one transaction: a crash leaves the old
        rows or the new ones, never a mix. Returns (rows, bytes)."""
        rows = size = 0
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("DELETE FROM journal")
                for environ, body in snapshot:
                    request = json.dumps(environ, separators=(",", ":"))
                    self.db.execute(
                        "INSERT INTO journal(kind, request, body) VALUES ('snapshot', ?, ?)", (request, body)
                    )
                    rows += 1
                    size += len(request) + len(body)
                self.db.execute(
                    "INSERT INTO meta(key, value) VALUES ('compacted_at', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (datetime.now(UTC).isoformat(),),
                )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.write_bytes, self.snapshot_bytes = 0, size
            self.db.execute("PRAGMA incremental_vacuum")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return rows, size

    # ---- secrets
    def secret_values(self) -> dict[str, str | bytes]:
        return {
            lid: (bytes(binary) if binary is not None else string)
            for lid, string, binary in self.db.execute("SELECT logical_id, string, binary FROM secrets")
        }

    def put_secret(self, logical_id: str, value: str | bytes) -> None:
        string, binary = (None, value) if isinstance(value, bytes) else (value, None)
        with self.lock:
            self.db.execute(
                "INSERT INTO secrets(logical_id, string, binary) VALUES (?, ?, ?) "
                "ON CONFLICT(logical_id) DO UPDATE SET string = excluded.string, "
                "binary = excluded.binary",
                (logical_id, string, binary),
            )

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(f"{self.path.name}*") if p.is_file())

    def close(self) -> None:
        with self.lock, contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()
