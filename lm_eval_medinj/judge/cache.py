"""SQLite cache of judgements: one row per (judge, prompt version, item text), committed per batch.

Several processes may share one cache file (e.g. ``judge/score.py`` on several model folders at once).
Before scoring a batch a process *claims* its keys in a ``BEGIN IMMEDIATE`` transaction (one writer at
a time, the others wait up to ``timeout`` seconds): a key already stored, or claimed by another live
process, is not claimed. The scores and the release of the claims are committed together. So each key
is scored by one process and stored once; the others wait for it and read it from the cache. A claim
left by a killed process is taken over when its process is gone (same host) or after ``claim_ttl``
seconds (another host sharing the file).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS judgements (
    key TEXT PRIMARY KEY,
    judge TEXT NOT NULL,
    prompt TEXT NOT NULL,
    p_equivalent REAL NOT NULL,
    scored_at REAL NOT NULL
)
""",
    """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL
)
""",
)
_CHUNK = 500
DEFAULT_CLAIM_TTL = 3600.0  # seconds: a claim from another host older than this is taken over


def _alive(pid: int) -> bool:
    """Whether a process of this host has this id (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class JudgementCache:
    """P(equivalent) by item key. Inserting a key twice is an error, never a silent re-score."""

    def __init__(self, path: Path, timeout: float = 120.0, claim_ttl: float = DEFAULT_CLAIM_TTL):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.claim_ttl = claim_ttl
        self.host, self.pid = socket.gethostname(), os.getpid()
        # autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE) where they matter
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def get_many(self, keys: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, p_equivalent FROM judgements WHERE key IN ({marks})", chunk)
            found.update(rows)
        return found

    def put_many(self, judge: str, prompt: str, rows: Iterable[tuple[str, float]]) -> None:
        """Insert and commit in one transaction (a kill loses at most the batch in flight)."""
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO judgements (key, judge, prompt, p_equivalent, scored_at) VALUES (?,?,?,?,?)",
                [(key, judge, prompt, p, now) for key, p in rows],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def claim(self, keys: Sequence[str], limit: int) -> tuple[list[str], dict[str, float]]:
        """Claim up to ``limit`` of ``keys`` for this process to score: those neither stored nor claimed
        by another live process, in order. Also returns the scores of ``keys`` found stored on the way
        (the keys after the last claimed one are not all looked at)."""
        claimed: list[str] = []
        stored: dict[str, float] = {}
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._drop_stale_claims()
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ",".join("?" * len(chunk))
                found = dict(
                    self._db.execute(f"SELECT key, p_equivalent FROM judgements WHERE key IN ({marks})", chunk)
                )
                stored.update(found)
                taken = {row[0] for row in self._db.execute(f"SELECT key FROM claims WHERE key IN ({marks})", chunk)}
                for key in chunk:
                    if len(claimed) < limit and key not in found and key not in taken:
                        claimed.append(key)
                        taken.add(key)
                if len(claimed) >= limit:
                    break
            now = time.time()
            self._db.executemany(
                "INSERT INTO claims (key, host, pid, claimed_at) VALUES (?,?,?,?)",
                [(key, self.host, self.pid, now) for key in claimed],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return claimed, stored

    def store(self, judge: str, prompt: str, rows: Sequence[tuple[str, float]]) -> dict[str, float]:
        """Store claimed scores and release their claims in one transaction; returns the stored scores
        (another process's where a claim was taken over and that process stored the key first)."""
        now = time.time()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO judgements (key, judge, prompt, p_equivalent, scored_at) VALUES (?,?,?,?,?)",
                [(key, judge, prompt, p, now) for key, p in rows],
            )
            self._db.executemany(
                "DELETE FROM claims WHERE key = ? AND host = ? AND pid = ?",
                [(key, self.host, self.pid) for key, _ in rows],
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return self.get_many([key for key, _ in rows])

    def release(self, keys: Sequence[str]) -> None:
        """Give up claims (scoring failed): other processes may claim the keys again."""
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany(
            "DELETE FROM claims WHERE key = ? AND host = ? AND pid = ?", [(key, self.host, self.pid) for key in keys]
        )
        self._db.execute("COMMIT")

    def _drop_stale_claims(self) -> None:
        """Inside a transaction: drop claims of dead processes of this host, and expired ones."""
        rows = self._db.execute("SELECT DISTINCT host, pid FROM claims WHERE host = ?", (self.host,)).fetchall()
        dead = [(host, pid) for host, pid in rows if pid != self.pid and not _alive(pid)]
        self._db.executemany("DELETE FROM claims WHERE host = ? AND pid = ?", dead)
        self._db.execute("DELETE FROM claims WHERE claimed_at < ?", (time.time() - self.claim_ttl,))

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]

    def close(self) -> None:
        self._db.close()
