"""One edit-log row as a value object, and the packing of its fragment moves into one blob.

A row is self-contained: replaying its ``moves`` (fragment sets with their from -> to segment
ids) reproduces the edit exactly, so replay never re-runs a min-cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EDIT_OPERATIONS = ("merge", "split", "undo", "redo")
OPERATIONS = (*EDIT_OPERATIONS, "lock", "unlock", "flag")


@dataclass(frozen=True)
class Move:
    """Fragments moved from one segment to another.

    Attributes:
        fragments: (n,) uint64 fragment ids.
        source: the segment id they left.
        target: the segment id they joined.
    """

    fragments: np.ndarray
    source: int
    target: int

    def inverse(self) -> Move:
        return Move(self.fragments, self.target, self.source)


@dataclass(frozen=True)
class EditRecord:
    """One row of ``edits.sqlite``.

    Attributes:
        op_id: position in the log (1, 2, ...); 0 before it is written.
        user: who made it.
        timestamp: seconds since the epoch.
        operation: one of :data:`OPERATIONS`.
        seeds_nm: (k, 4) float64 seed points: side (0 merge/A, 1 B), z, y, x in nm.
        moves: the fragment sets moved, in order.
        parents: segment ids before the edit (or the locked / unlocked segment).
        children: segment ids after the edit.
        target_op: for undo / redo, the op id undone or redone; else 0.
        note: free text (flag notes, lock reasons).
    """

    operation: str
    user: str
    timestamp: float
    seeds_nm: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    moves: tuple[Move, ...] = ()
    parents: tuple[int, ...] = ()
    children: tuple[int, ...] = ()
    target_op: int = 0
    note: str = ""
    op_id: int = 0

    @property
    def segments(self) -> set[int]:
        """Every segment id the row names (parents, children and move ends)."""
        ids = set(self.parents) | set(self.children)
        for move in self.moves:
            ids.update((move.source, move.target))
        return ids

    @property
    def moved_fragments(self) -> np.ndarray:
        if not self.moves:
            return np.zeros(0, np.uint64)
        return np.concatenate([m.fragments for m in self.moves]).astype(np.uint64)


def pack_moves(moves: tuple[Move, ...]) -> bytes:
    """``[source, target, n, fragment ids...]`` per move as little-endian uint64 bytes."""
    parts = [np.array([m.source, m.target, len(m.fragments)], dtype="<u8") for m in moves]
    chunks = []
    for header, move in zip(parts, moves):
        chunks.extend((header, np.asarray(move.fragments, dtype="<u8")))
    return np.concatenate(chunks).tobytes() if chunks else b""


def unpack_moves(blob: bytes) -> tuple[Move, ...]:
    """Inverse of :func:`pack_moves`."""
    values = np.frombuffer(blob, dtype="<u8")
    moves, position = [], 0
    while position < len(values):
        source, target, count = (int(v) for v in values[position:position + 3])
        fragments = values[position + 3:position + 3 + count].astype(np.uint64)
        moves.append(Move(fragments, source, target))
        position += 3 + count
    return tuple(moves)
