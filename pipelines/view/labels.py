"""The segmentation a shared run shows: the run's chosen LUT plus the replay of its proofreading
edits (``RUN/edits.sqlite``), read lazily per region, and the base segments each edit merged away.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from axonseg.io import Volume, group_exists, open_volume
from axonseg.pipelines.run_folder import Lut, RunFolder, apply_lut

logger = logging.getLogger(__name__)

EDITS_FILE = "edits.sqlite"


@dataclass(frozen=True)
class ShownLabels:
    """The run's segmentation as the proofreader left it.

    Attributes:
        volume: ``segmentation`` or ``fragments`` of the run (zyx, integer ids).
        lut: applied to ``volume`` per region (None: ``volume`` is the segmentation itself).
        threshold: the LUT threshold (None: a run's plain segmentation without LUTs).
        n_edits: proofreading edits replayed into ``lut`` (0: none or no edit log).
        merged: ``{current segment id: base segment ids merged into it}``, only segments
            that a merge absorbed whole (their meshes and skeletons, made before the edits,
            still carry the base ids).
    """

    volume: Volume
    lut: Lut | None
    threshold: float | None
    n_edits: int = 0
    merged: dict[int, list[int]] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape in voxels, zyx."""
        return self.volume.spatial_shape

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """Segment ids (uint64) of the zyx ``region`` (slices in voxels)."""
        block = self.volume.read(region)
        return np.asarray(block, np.uint64) if self.lut is None else apply_lut(block, self.lut)


def _edited_lut(run: RunFolder, threshold: float) -> tuple[Lut, Lut, int] | None:
    """``(base LUT, current LUT, number of edits)`` when ``RUN/edits.sqlite`` holds edits, else None.

    The base is the LUT of ``threshold`` (the one the proofreading viewer edits); the log
    refuses itself (one-line InputError) when it was started on another base.
    """
    log_path = run.path / EDITS_FILE
    if not log_path.is_file():
        return None
    from axonseg.proofread import (
        ProofreadSession,  # sqlite and the edit model only when there is a log
    )

    base = run.lut(threshold)
    session = ProofreadSession(log_path, (base.fragment_ids, base.segment_ids), user="axonseg-view",
                               base_id=f"threshold={threshold}")
    try:
        if session.version == 0:
            return None
        return base, Lut(*session.current_lut()), session.version
    finally:
        session.log.close()


def merged_segments(base: Lut, current: Lut) -> dict[int, list[int]]:
    """Base segments that edits merged whole into another segment, by the segment now holding them.

    A base segment counts only when every one of its fragments now lies in the same other
    segment and its own id no longer exists (a split's parts are left out: showing them as
    one would undo the split).

    Args:
        base: the LUT the edits started from.
        current: the LUT after the edits (same fragment ids).

    Returns:
        ``{current segment id: sorted base segment ids}``.
    """
    if not np.array_equal(base.fragment_ids, current.fragment_ids):
        return {}
    changed = base.segment_ids != current.segment_ids
    if not changed.any():
        return {}
    existing = set(np.unique(current.segment_ids).tolist())
    merged: dict[int, list[int]] = {}
    for base_id in np.unique(base.segment_ids[changed]).tolist():
        targets = np.unique(current.segment_ids[base.segment_ids == base_id])
        if len(targets) == 1 and base_id not in existing:
            merged.setdefault(int(targets[0]), []).append(int(base_id))
    return {key: sorted(value) for key, value in merged.items()}


def shown_labels(run_dir: str | Path) -> ShownLabels:
    """The segmentation a run shows: :meth:`RunFolder.labels` (the run's one threshold rule),
    with the proofreading edits of ``RUN/edits.sqlite`` applied when there are any.

    Raises:
        InputError: not a run folder, no segmentation and no fragments with LUTs, or an edit
            log started on another LUT.
    """
    run = RunFolder(Path(run_dir))
    labels = run.labels()  # raises in one line for a run without a segmentation
    if labels.threshold is not None and group_exists(run.store, "fragments"):
        edited = _edited_lut(run, labels.threshold)
        if edited is not None:
            base, current, n_edits = edited
            logger.info("%s: %d proofreading edit(s) over the LUT of threshold %s", run.path, n_edits, labels.threshold)
            return ShownLabels(open_volume(run.store / "fragments"), current, labels.threshold, n_edits,
                               merged_segments(base, current))
    return ShownLabels(labels.volume, labels.lut, labels.threshold)


def largest_segments(labels: ShownLabels, count: int, allowed: set[int] | None = None,
                     sample_shape: tuple[int, int, int] = (32, 256, 256)) -> list[int]:
    """The ``count`` segments with most voxels in a box at the volume's centre.

    Only the centre is read (at most ``sample_shape`` voxels, zyx), so this stays cheap on a
    teravoxel run; those are the segments the initial view shows.

    Args:
        labels: the segmentation.
        count: how many ids to return.
        allowed: keep only these ids (e.g. the segments with a mesh); None keeps all.
        sample_shape: the centre box in voxels, zyx.

    Returns:
        Segment ids, largest first (background 0 left out).
    """
    shape = np.asarray(labels.shape)
    size = np.minimum(shape, sample_shape)
    begin = (shape - size) // 2
    region = tuple(slice(int(b), int(b + s)) for b, s in zip(begin, size))
    ids, counts = np.unique(labels.read(region), return_counts=True)
    keep = ids != 0
    if allowed is not None:
        keep &= np.isin(ids, np.fromiter(allowed, np.uint64, len(allowed)))
    ids, counts = ids[keep], counts[keep]
    order = np.lexsort((ids, -counts))
    return [int(i) for i in ids[order][:count]]
