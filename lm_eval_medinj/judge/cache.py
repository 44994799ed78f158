"""SQLite cache of judgements: one row per (judge, prompt version, item text), committed per batch."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    prompt TEXT NOT NULL,
    p_equivalent REAL NOT NULL,
    scored_at REAL NOT NULL
)
"""


class JudgementCache:
    """P(equivalent) by item key. Inserting a key twice is an error, never a silent re-score."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, p_equivalent FROM judgements WHERE key IN ({marks})", chunk)
            found.update(rows)
        return found

    def put_many(self, judge: str, prompt: str, rows: Iterable[tuple[str, float]]) -> None:
        """Insert and commit in one transaction (a kill loses at most the batch in flight)."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT INTO judgements (key, judge, prompt, p_equivalent, scored_at) VALUES (?,?,?,?,?)",
                [(key, judge, prompt, p, now) for key, p in rows],
            )

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    def close(self) -> None:
        self._db.close()
