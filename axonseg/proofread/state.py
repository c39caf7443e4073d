"""The current fragment -> segment mapping: the base LUT with edit-log rows applied to it.

Applying a row only touches the fragments it moves, and every row is checked before it is
applied (fragments must be in the segment the row says they leave), so a replay either
reproduces the recorded state exactly or stops with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from axonseg.errors import AxonsegError, InputError
from axonseg.proofread.records import EDIT_OPERATIONS, EditRecord, Move


class EditRefused(AxonsegError):
    """An edit that cannot be applied: locked segment, stale version, or an invalid request."""


@dataclass(frozen=True)
class Flag:
    """A location marked by a user: point (z, y, x) in nm and a note."""

    op_id: int
    user: str
    point_nm: tuple[float, float, float]
    note: str


class LutState:
    """Fragment -> segment mapping with per-segment member lists.

    Args:
        fragment_ids: (N,) base LUT fragment ids (any order; unique).
        segment_ids: (N,) base LUT segment ids.
    """

    def __init__(self, fragment_ids: np.ndarray, segment_ids: np.ndarray) -> None:
        fragment_ids = np.asarray(fragment_ids, dtype=np.uint64)
        segment_ids = np.asarray(segment_ids, dtype=np.uint64)
        if fragment_ids.shape != segment_ids.shape or fragment_ids.ndim != 1:
            raise InputError(f"base LUT has {fragment_ids.shape} fragment ids and {segment_ids.shape} segment ids: "
                             "expected two 1-D arrays of equal length")
        order = np.argsort(fragment_ids, kind="stable")
        self.fragment_ids = fragment_ids[order]
        if len(self.fragment_ids) > 1 and (np.diff(self.fragment_ids) == 0).any():
            raise InputError("base LUT lists a fragment id twice: expected unique fragment ids")
        self.segment_of = segment_ids[order].copy()
        by_segment = np.argsort(self.segment_of, kind="stable")
        sorted_segments = self.segment_of[by_segment]
        starts = np.flatnonzero(np.r_[True, sorted_segments[1:] != sorted_segments[:-1]]) if len(by_segment) else []
        self.members: dict[int, np.ndarray] = {
            int(s): m for s, m in zip(sorted_segments[starts], np.split(by_segment, starts[1:]))
        } if len(by_segment) else {}
        self.max_id = int(max(self.segment_of.max(initial=0), self.fragment_ids.max(initial=0)))
        self.locked: dict[int, str] = {}
        self.flags: list[Flag] = []
        self.version = 0
        self.records: list[EditRecord] = []
        # per-user undo / redo stacks of op ids, derived from the log so replay rebuilds them
        self.undo_stack: dict[str, list[int]] = {}
        self.redo_stack: dict[str, list[int]] = {}

    # ---- lookups -----------------------------------------------------------------------------
    def index_of(self, fragments: np.ndarray) -> np.ndarray:
        """Positions of fragment ids in the sorted LUT; InputError for unknown ids."""
        fragments = np.asarray(fragments, dtype=np.uint64)
        position = np.minimum(np.searchsorted(self.fragment_ids, fragments), max(len(self.fragment_ids) - 1, 0))
        if len(fragments) and (len(self.fragment_ids) == 0 or (self.fragment_ids[position] != fragments).any()):
            missing = fragments[self.fragment_ids[position] != fragments] if len(self.fragment_ids) else fragments
            raise InputError(f"fragment ids {missing[:5].tolist()} are not in the LUT: expected fragments of the run")
        return position

    def segment_of_fragments(self, fragments: np.ndarray) -> np.ndarray:
        return self.segment_of[self.index_of(fragments)]

    def fragments_of(self, segment_id: int) -> np.ndarray:
        """(n,) uint64 fragment ids of a segment (empty if it does not exist)."""
        return self.fragment_ids[self.members.get(int(segment_id), np.zeros(0, np.int64))]

    def check_exists(self, segment_id: int) -> None:
        if int(segment_id) not in self.members:
            raise EditRefused(f"segment {segment_id} does not exist (now): expected a current segment id")

    def check_unlocked(self, segment_ids) -> None:  # noqa: ANN001
        for segment in segment_ids:
            if int(segment) in self.locked:
                raise EditRefused(f"segment {segment} is locked by {self.locked[int(segment)]}: unlock it first")

    # ---- applying rows -----------------------------------------------------------------------
    def check_moves(self, moves: tuple[Move, ...]) -> None:
        """Refuse moves whose fragments are not (all) in their source segment now."""
        for move in moves:
            current = self.segment_of[self.index_of(move.fragments)]
            if (current != np.uint64(move.source)).any():
                raise EditRefused(f"fragments of segment {move.source} have moved since (now in segments "
                                  f"{sorted(set(current.tolist()) - {move.source})[:5]}): the edit is stale")

    def _apply_moves(self, moves: tuple[Move, ...]) -> None:
        for move in moves:
            index = self.index_of(move.fragments)
            self.segment_of[index] = np.uint64(move.target)
            source = self.members.get(move.source, np.zeros(0, np.int64))
            remaining = source[~np.isin(source, index)] if len(index) < len(source) else source[:0]
            if len(remaining):
                self.members[move.source] = remaining
            else:
                self.members.pop(move.source, None)
            target = self.members.get(move.target)
            self.members[move.target] = index.astype(np.int64) if target is None else np.concatenate([target, index])
            self.max_id = max(self.max_id, move.target)

    def apply(self, record: EditRecord) -> None:
        """Apply one log row (in op id order); raises EditRefused when it does not fit."""
        if record.op_id != self.version + 1:
            raise EditRefused(f"log row {record.op_id} applied at version {self.version}: expected row {self.version + 1}")
        if record.operation in EDIT_OPERATIONS:
            self.check_moves(record.moves)
            self._apply_moves(record.moves)
            self.max_id = max([self.max_id, *record.children])
            undo, redo = self.undo_stack.setdefault(record.user, []), self.redo_stack.setdefault(record.user, [])
            if record.operation in ("merge", "split"):
                undo.append(record.op_id)
                redo.clear()
            elif record.operation == "undo":
                undo.remove(record.target_op)
                redo.append(record.target_op)
            else:
                redo.remove(record.target_op)
                undo.append(record.target_op)
        elif record.operation == "lock":
            self.locked[int(record.parents[0])] = record.user
        elif record.operation == "unlock":
            self.locked.pop(int(record.parents[0]), None)
        elif record.operation == "flag":
            point = tuple(float(v) for v in record.seeds_nm[0, 1:]) if len(record.seeds_nm) else (np.nan,) * 3
            self.flags.append(Flag(record.op_id, record.user, point, record.note))  # type: ignore[arg-type]
        self.records.append(record)
        self.version = record.op_id

    def lut(self) -> tuple[np.ndarray, np.ndarray]:
        """The current ``(fragment_ids, segment_ids)`` (copies, sorted by fragment id)."""
        return self.fragment_ids.copy(), self.segment_of.copy()
