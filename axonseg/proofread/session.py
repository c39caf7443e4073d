"""A proofreading session: merge, split, undo, redo, lock and flag over a run's LUT.

The state is always ``base LUT + replay of edits.sqlite``. Every edit is computed on the
session's in-memory state at some log version and written with optimistic versioning: if
others wrote rows since, the session applies them first; the edit is refused when those rows
touched a segment it names, and rebased (recomputed on the new state) otherwise.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from axonseg.errors import InputError
from axonseg.proofread.log import EditLog
from axonseg.proofread.records import EditRecord, Move
from axonseg.proofread.split import CAPACITY_SCALE, FragmentAdjacency, min_cut_sides
from axonseg.proofread.state import EditRefused, Flag, LutState

if TYPE_CHECKING:  # the region graph module pulls numba kernels: not needed at run time here
    from axonseg.segment.region_graph import RegionGraph

logger = logging.getLogger(__name__)

Locator = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SplitPreview:
    """What a split would do, not committed.

    Attributes:
        segment_id: the segment split.
        keep_fragments: fragment ids that keep ``segment_id`` (the larger side).
        new_fragments: fragment ids that would get a new segment id.
        seed_fragments: (k,) fragment id under each seed (A seeds first).
        cut_capacity: summed affinity (``aff_sum``) of the contacts cut.
    """

    segment_id: int
    keep_fragments: np.ndarray
    new_fragments: np.ndarray
    seed_fragments: np.ndarray
    cut_capacity: float


def lut_digest(fragment_ids: np.ndarray, segment_ids: np.ndarray) -> str:
    """A short content hash of a LUT (order-independent), naming the log's base."""
    order = np.argsort(fragment_ids, kind="stable")
    digest = hashlib.sha1(np.asarray(fragment_ids, "<u8")[order].tobytes())
    digest.update(np.asarray(segment_ids, "<u8")[order].tobytes())
    return digest.hexdigest()[:16]


def _points(points_nm: Sequence[Sequence[float]] | np.ndarray | None) -> np.ndarray:
    points = np.zeros((0, 3)) if points_nm is None else np.asarray(points_nm, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(points).all():
        raise InputError("points_nm holds NaN or infinite values: expected (z, y, x) positions in nm")
    return points


class ProofreadSession:
    """Edit a run's fragment -> segment LUT through an append-only log.

    Args:
        log_path: ``RUN/edits.sqlite``.
        base_lut: ``(fragment_ids, segment_ids)`` the log edits (the chosen agglomeration LUT).
        graph: the run's region graph (for splits and segment sizes); None disables split.
        user: recorded in every row; default the login name.
        locate: maps (k, 3) points in nm (zyx) to the fragment id under each point (the viewer
            reads the fragments volume). Default: the fragment with the nearest centroid.
        base_id: identity of the base LUT; default its content hash.
    """

    def __init__(self, log_path: str | Path, base_lut: tuple[np.ndarray, np.ndarray], graph: RegionGraph | None = None,
                 user: str | None = None, locate: Locator | None = None, base_id: str | None = None) -> None:
        self.user = user or getpass.getuser()
        self.state = LutState(*base_lut)
        self.log = EditLog(log_path, base_id or lut_digest(*base_lut))
        self.locate = locate
        n = len(self.state.fragment_ids)
        self.node_size = np.zeros(n, np.int64)
        self.node_centroid = np.full((n, 3), np.nan)
        self.adjacency: FragmentAdjacency | None = None
        if graph is not None:
            self._attach_graph(graph)
        self.refresh()

    def _attach_graph(self, graph: RegionGraph) -> None:
        ids = self.state.fragment_ids
        position = np.minimum(np.searchsorted(ids, graph.node_id), max(len(ids) - 1, 0))
        known = ids[position] == graph.node_id if len(ids) else np.zeros(len(graph.node_id), bool)
        self.node_size[position[known]] = graph.node_size[known]
        self.node_centroid[position[known]] = graph.node_centroid[known]
        pu = np.minimum(np.searchsorted(ids, graph.u), max(len(ids) - 1, 0))
        pv = np.minimum(np.searchsorted(ids, graph.v), max(len(ids) - 1, 0))
        inside = (ids[pu] == graph.u) & (ids[pv] == graph.v) if len(ids) else np.zeros(len(graph.u), bool)
        self.adjacency = FragmentAdjacency(len(ids), pu[inside], pv[inside], graph.aff_sum[inside])

    # ---- reading -----------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return self.state.version

    def refresh(self) -> list[EditRecord]:
        """Apply rows that other sessions wrote; returns them."""
        newer = self.log.read(after=self.state.version)
        for record in newer:
            self.state.apply(record)
        return newer

    def current_lut(self) -> tuple[np.ndarray, np.ndarray]:
        """``(fragment_ids, segment_ids)`` including every edit (for relabel, skeletonize, export)."""
        return self.state.lut()

    def segment_of(self, fragment_ids: np.ndarray | int) -> np.ndarray:
        """Current segment id of each fragment id (uint64)."""
        return self.state.segment_of_fragments(np.atleast_1d(np.asarray(fragment_ids, dtype=np.uint64)))

    def segment_at(self, point_nm: Sequence[float]) -> int:
        """Segment under a point (z, y, x nm); needs ``locate``. 0 is background."""
        if self.locate is None:
            raise InputError("segment_at needs a locate function (fragments volume): none was given")
        fragment = np.uint64(self.locate(_points(point_nm))[0])
        return 0 if fragment == 0 else int(self.segment_of(fragment)[0])

    def fragments_of(self, segment_id: int) -> np.ndarray:
        return self.state.fragments_of(segment_id)

    def segment_size(self, segment_id: int) -> int:
        """Size of a segment in voxels (sum of its fragments' sizes from the region graph)."""
        return int(self.node_size[self.state.members.get(int(segment_id), np.zeros(0, np.int64))].sum())

    def history(self, segment_id: int) -> list[EditRecord]:
        """Rows that name ``segment_id`` (as parent, child or move end), oldest first."""
        return [r for r in self.state.records if int(segment_id) in r.segments]

    def touched_segments(self, since_op: int = 0) -> tuple[set[int], set[int]]:
        """Segments changed by rows after ``since_op``.

        Returns:
            ``(current, removed)``: current segment ids that hold a moved fragment, and ids
            named by those rows that no longer exist.
        """
        rows = [r for r in self.state.records if r.op_id > since_op and r.moves]
        if not rows:
            return set(), set()
        moved = np.unique(np.concatenate([r.moved_fragments for r in rows]))
        current = {int(s) for s in np.unique(self.segment_of(moved))}
        named = set().union(*(r.segments for r in rows))
        return current, {s for s in named if s not in self.state.members}

    @property
    def locked(self) -> dict[int, str]:
        return dict(self.state.locked)

    @property
    def flags(self) -> list[Flag]:
        return list(self.state.flags)

    # ---- committing --------------------------------------------------------------------------
    def _commit(self, named: set[int], build: Callable[[], EditRecord]) -> EditRecord:
        """Write the row ``build`` makes; rebase over newer rows that touch none of ``named``."""
        def prepare(newer: list[EditRecord]) -> EditRecord:
            for record in newer:
                self.state.apply(record)
            # only rows that moved fragments change what the user saw; locks are checked by build()
            clash = [r for r in newer if r.moves and named & r.segments]
            if clash:
                first = clash[0]
                raise EditRefused(f"segment(s) {sorted(named & first.segments)} were changed by {first.user} "
                                  f"(op {first.op_id}, {first.operation}) since your view: refreshed, try again")
            return build()

        record = self.log.append(self.state.version, prepare)
        self.state.apply(record)
        logger.info("op %d: %s by %s, %s -> %s", record.op_id, record.operation, record.user,
                    list(record.parents), list(record.children))
        return record

    def _row(self, operation: str, **fields) -> EditRecord:  # noqa: ANN003
        return EditRecord(operation=operation, user=self.user, timestamp=time.time(), **fields)

    def merge(self, segment_ids: Sequence[int], points_nm: Sequence[Sequence[float]] | None = None) -> EditRecord:
        """Merge two or more segments; the one with most fragments keeps its id.

        Args:
            segment_ids: current segment ids (at least two distinct).
            points_nm: optional (k, 3) points the user clicked (z, y, x, nm), for the log.
        """
        ids = sorted({int(s) for s in segment_ids})
        if len(ids) < 2:
            raise InputError(f"merge of segments {list(segment_ids)}: expected at least two different segments")
        points = _points(points_nm)
        seeds = np.column_stack([np.zeros(len(points)), points])

        def build() -> EditRecord:
            for segment in ids:
                self.state.check_exists(segment)
            self.state.check_unlocked(ids)
            sizes = [len(self.state.members[s]) for s in ids]
            child = ids[int(np.argmax(sizes))]  # first maximum: ties keep the smallest id
            moves = tuple(Move(self.state.fragments_of(s), s, child) for s in ids if s != child)
            return self._row("merge", seeds_nm=seeds, moves=moves, parents=tuple(ids), children=(child,))

        return self._commit(set(ids), build)

    def _seed_fragments(self, points: np.ndarray) -> np.ndarray:
        """Fragment under each point: ``locate``, else the fragment with the nearest centroid."""
        if self.locate is not None:
            return np.asarray(self.locate(points), dtype=np.uint64)
        known = np.flatnonzero(~np.isnan(self.node_centroid[:, 0]))
        if len(known) == 0:
            raise InputError("split seeds: no locate function and no fragment centroids: expected a region graph")
        distance = ((self.node_centroid[known][None, :, :] - points[:, None, :]) ** 2).sum(-1)
        return self.state.fragment_ids[known[np.argmin(distance, axis=1)]]

    def preview_split(self, segment_id: int, seeds_a_nm: Sequence[Sequence[float]],
                      seeds_b_nm: Sequence[Sequence[float]]) -> SplitPreview:
        """The min-cut split of a segment between two seed sets, without committing it.

        Args:
            segment_id: current segment id.
            seeds_a_nm, seeds_b_nm: (k, 3) seed points per side, z, y, x in nm (at least one each).
        """
        if self.adjacency is None:
            raise InputError("split needs the run's region graph (RUN/graph): none was loaded")
        segment_id = int(segment_id)
        self.state.check_exists(segment_id)
        points_a, points_b = _points(seeds_a_nm), _points(seeds_b_nm)
        if len(points_a) == 0 or len(points_b) == 0:
            raise InputError("split seeds: expected at least one seed point on each side")
        seed_fragments = self._seed_fragments(np.concatenate([points_a, points_b]))
        owner = self.state.segment_of_fragments(seed_fragments)
        outside = owner != np.uint64(segment_id)
        if outside.any():
            raise InputError(f"split seeds at {np.concatenate([points_a, points_b])[outside][:3].tolist()} nm lie in "
                             f"segments {owner[outside][:3].tolist()}: expected every seed inside segment {segment_id}")
        members = self.state.members[segment_id]
        local = np.searchsorted(np.sort(members), self.state.index_of(seed_fragments))
        order = np.argsort(members)
        local = order[local]
        capacity = self.adjacency.subgraph(members)
        side_b = min_cut_sides(capacity, local[: len(points_a)], local[len(points_a):])
        cut = float(capacity[side_b][:, ~side_b].sum()) / CAPACITY_SCALE
        fragments = self.state.fragment_ids[members]
        keep, new = fragments[~side_b], fragments[side_b]
        if len(new) > len(keep):
            keep, new = new, keep
        return SplitPreview(segment_id, keep, new, seed_fragments, cut)

    def split(self, segment_id: int, seeds_a_nm: Sequence[Sequence[float]],
              seeds_b_nm: Sequence[Sequence[float]]) -> EditRecord:
        """Commit :meth:`preview_split`: the smaller side gets a new id above every id so far."""
        segment_id = int(segment_id)
        points_a, points_b = _points(seeds_a_nm), _points(seeds_b_nm)
        seeds = np.concatenate([np.column_stack([np.zeros(len(points_a)), points_a]),
                                np.column_stack([np.ones(len(points_b)), points_b])])

        def build() -> EditRecord:
            self.state.check_unlocked([segment_id])
            preview = self.preview_split(segment_id, points_a, points_b)
            new_id = self.state.max_id + 1
            return self._row("split", seeds_nm=seeds, moves=(Move(preview.new_fragments, segment_id, new_id),),
                             parents=(segment_id,), children=(segment_id, new_id))

        return self._commit({segment_id}, build)

    def _inverse_of(self, operation: str, target: EditRecord) -> Callable[[], EditRecord]:
        def build() -> EditRecord:
            if operation == "undo":
                moves = tuple(m.inverse() for m in reversed(target.moves))
                parents, children = target.children, target.parents
            else:
                moves, parents, children = target.moves, target.parents, target.children
            self.state.check_unlocked(set(parents) | set(children))
            try:
                self.state.check_moves(moves)
            except EditRefused as error:
                raise EditRefused(f"cannot {operation} op {target.op_id} ({target.operation}): {error}") from None
            return self._row(operation, seeds_nm=target.seeds_nm, moves=moves, parents=parents, children=children,
                             target_op=target.op_id)
        return build

    def undo(self) -> EditRecord:
        """Append the inverse of this user's last merge or split (or redone edit)."""
        stack = self.state.undo_stack.get(self.user, [])
        if not stack:
            raise EditRefused(f"nothing to undo for user {self.user}")
        target = self.state.records[stack[-1] - 1]
        return self._commit(target.segments, self._inverse_of("undo", target))

    def redo(self) -> EditRecord:
        """Re-apply this user's last undone edit."""
        stack = self.state.redo_stack.get(self.user, [])
        if not stack:
            raise EditRefused(f"nothing to redo for user {self.user}")
        target = self.state.records[stack[-1] - 1]
        return self._commit(target.segments, self._inverse_of("redo", target))

    def lock(self, segment_id: int, note: str = "") -> EditRecord:
        """Lock a segment: every later edit that touches it is refused until unlocked."""
        segment_id = int(segment_id)

        def build() -> EditRecord:
            self.state.check_exists(segment_id)
            if segment_id in self.state.locked:
                raise EditRefused(f"segment {segment_id} is locked already by {self.state.locked[segment_id]}")
            return self._row("lock", parents=(segment_id,), note=note)

        return self._commit({segment_id}, build)

    def unlock(self, segment_id: int) -> EditRecord:
        segment_id = int(segment_id)

        def build() -> EditRecord:
            if segment_id not in self.state.locked:
                raise EditRefused(f"segment {segment_id} is not locked")
            return self._row("unlock", parents=(segment_id,))

        return self._commit({segment_id}, build)

    def flag(self, point_nm: Sequence[float], note: str) -> EditRecord:
        """Mark a location (z, y, x nm) with a note for later review."""
        point = _points(point_nm)
        if len(point) != 1:
            raise InputError(f"flag point {point_nm}: expected one (z, y, x) point in nm")
        return self._commit(set(), lambda: self._row("flag", seeds_nm=np.column_stack([[0.0], point]), note=note))

    def close(self) -> None:
        self.log.close()
