"""The append-only edit log ``RUN/edits.sqlite`` (WAL mode): every SQL statement of axonseg.

Rows are only ever inserted. The log version is the last op id; :meth:`EditLog.append` takes
the version its edit was computed against and inserts inside one ``BEGIN IMMEDIATE``
transaction, so two processes cannot both write on top of the same version unnoticed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from axonseg.errors import InputError
from axonseg.proofread.records import OPERATIONS, EditRecord, pack_moves, unpack_moves

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS ops (
    op_id INTEGER PRIMARY KEY,
    user TEXT NOT NULL,
    timestamp REAL NOT NULL,
    operation TEXT NOT NULL,
    seeds_nm TEXT NOT NULL,
    moves BLOB NOT NULL,
    parents TEXT NOT NULL,
    children TEXT NOT NULL,
    target_op INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
BUSY_TIMEOUT_S = 30.0

COLUMNS = "op_id, user, timestamp, operation, seeds_nm, moves, parents, children, target_op, note"


def _row_to_record(row: tuple) -> EditRecord:
    op_id, user, timestamp, operation, seeds, moves, parents, children, target_op, note = row
    return EditRecord(
        operation=operation, user=user, timestamp=timestamp,
        seeds_nm=np.asarray(json.loads(seeds), dtype=np.float64).reshape(-1, 4),
        moves=unpack_moves(moves), parents=tuple(json.loads(parents)), children=tuple(json.loads(children)),
        target_op=int(target_op), note=note, op_id=int(op_id),
    )


def _retry_while_locked(action: Callable[[], None]) -> None:
    """Run ``action()``, retrying for up to ``BUSY_TIMEOUT_S`` while the file is locked.

    Switching a new file to WAL can answer "database is locked" at once, without waiting on the
    busy timeout, when another process opens the same new file at the same moment (SQLite's
    deadlock avoidance); the statements are idempotent, so they are simply tried again.
    """
    deadline, delay = time.monotonic() + BUSY_TIMEOUT_S, 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.25)


class EditLog:
    """One connection to an edit log file.

    Args:
        path: the sqlite file (created with its schema when missing).
        base_id: identity of the base LUT the log edits (e.g. ``"threshold=0.5;sha=..."``).
            A new log records it; an existing log with another base is refused, because
            replaying its moves on a different LUT would give a wrong state silently.
    """

    def __init__(self, path: str | Path, base_id: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        _retry_while_locked(lambda: self._create(base_id))
        stored = self._db.execute("SELECT value FROM meta WHERE key = 'base_id'").fetchone()[0]
        if stored != base_id:
            raise InputError(f"{self.path} edits base LUT {stored!r} but the run's base LUT is {base_id!r}: "
                             "expected the LUT the log was started on")
        self.base_id = base_id

    def _create(self, base_id: str) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('base_id', ?)", (base_id,))

    def version(self) -> int:
        """The last op id (0 for an empty log)."""
        return int(self._db.execute("SELECT COALESCE(MAX(op_id), 0) FROM ops").fetchone()[0])

    def read(self, after: int = 0) -> list[EditRecord]:
        """Rows with op id > ``after``, in order."""
        rows = self._db.execute(f"SELECT {COLUMNS} FROM ops WHERE op_id > ? ORDER BY op_id", (after,)).fetchall()
        return [_row_to_record(row) for row in rows]

    def append(self, version: int, prepare: Callable[[list[EditRecord]], EditRecord]) -> EditRecord:
        """Insert one row written against ``version``, atomically.

        Args:
            version: the op id the caller's state reflects.
            prepare: called inside the write transaction with the rows written since
                ``version`` by others (possibly none). It returns the row to insert (it may
                rebase the edit over those rows) or raises to refuse it.

        Returns:
            The inserted row with its op id.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            newer = self.read(after=version)
            record = prepare(newer)
            if record.operation not in OPERATIONS:
                raise InputError(f"operation {record.operation!r}: expected one of {list(OPERATIONS)}")
            cursor = self._db.execute(
                f"INSERT INTO ops ({COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record.user, record.timestamp, record.operation, json.dumps(np.asarray(record.seeds_nm).tolist()),
                 pack_moves(record.moves), json.dumps([int(p) for p in record.parents]),
                 json.dumps([int(c) for c in record.children]), int(record.target_op), record.note),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return replace(record, op_id=int(cursor.lastrowid))

    def close(self) -> None:
        self._db.close()
