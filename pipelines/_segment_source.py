"""Label volumes for blockwise stages: a run's segmentation, or its fragments with a LUT applied
per block, plus the boundary checks (dtype, shape, voxel size) every label input must pass.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import fastremap
import numpy as np

from axonseg.blockwise import Roi
from axonseg.errors import InputError
from axonseg.io import Volume, group_exists, open_volume
from axonseg.io.luts import Lut, read_luts

logger = logging.getLogger(__name__)

BEST_THRESHOLD_FILE = Path("reports") / "best_threshold.json"


def run_store(run_dir: Path) -> Path:
    """The run's ``volume.zarr``; raises InputError when the run folder has none."""
    store = Path(run_dir) / "volume.zarr"
    if not store.is_dir():
        raise InputError(f"{run_dir}: not a run folder (no volume.zarr inside)")
    return store


def check_label_volume(volume: Volume, what: str) -> None:
    """Refuse a label volume that is not 3D or not of an integer dtype (reads no voxels).

    Args:
        volume: the opened array.
        what: its role in messages, e.g. ``"gt"`` or ``"pred"``.
    """
    if volume.data.ndim != 3:
        raise InputError(f"{what} {volume.source} has shape {volume.shape}: expected a 3D (z, y, x) label volume")
    if volume.dtype == bool or volume.dtype.kind not in "ui":
        raise InputError(f"{what} {volume.source} has dtype {volume.dtype}: expected an integer dtype")


def open_labels(address: str | Path, what: str, voxel_size: Sequence[float] | None = None) -> Volume:
    """Open a label array; ``voxel_size`` (nm, zyx) is used only where the file has none.

    Args:
        address: any address :func:`axonseg.io.open_volume` takes.
        what: the array's role in messages (``"gt"``, ``"pred"``).
        voxel_size: fallback voxel size in nm (zyx).

    Raises:
        InputError: unreadable array, missing voxel size, a file voxel size that contradicts
            ``voxel_size``, not 3D, or not integer.
    """
    try:
        volume = open_volume(address)
    except InputError:
        if voxel_size is None:
            raise
        volume = open_volume(address, voxel_size=voxel_size)  # re-raises errors other than a missing size
    else:
        if voxel_size is not None and not np.allclose(volume.voxel_size, voxel_size):
            raise InputError(
                f"{what} {volume.source} has voxel size {list(volume.voxel_size)} nm in its metadata but "
                f"--voxel-size is {list(map(float, voxel_size))}: expected them to agree"
            )
    check_label_volume(volume, what)
    return volume


def check_same_grid(pred: Volume, gt: Volume) -> None:
    """Refuse a prediction and ground truth that do not lie voxel for voxel on the same grid."""
    if pred.spatial_shape != gt.spatial_shape:
        raise InputError(
            f"pred {pred.source} has shape {pred.spatial_shape} but gt {gt.source} has shape "
            f"{gt.spatial_shape}: expected equal shapes (z y x, voxels)"
        )
    if not np.allclose(pred.voxel_size, gt.voxel_size):
        raise InputError(
            f"pred {pred.source} has voxel size {list(pred.voxel_size)} nm but gt {gt.source} has "
            f"{list(gt.voxel_size)} nm: expected equal voxel sizes (z y x)"
        )
    if not np.allclose(pred.offset, gt.offset) and not pred.attrs.get("offset_in_metadata", True):
        logger.info("pred %s carries no offset: using the gt's %s nm", pred.source, list(gt.offset))
        pred.offset = gt.offset
    if not np.allclose(pred.offset, gt.offset):
        raise InputError(
            f"pred {pred.source} has offset {list(pred.offset)} nm but gt {gt.source} has "
            f"{list(gt.offset)} nm: expected equal offsets (z y x)"
        )


def read_roi(volume: Volume, roi: Roi) -> np.ndarray:
    """The voxels of ``roi`` (inside the volume) as a numpy array, zyx."""
    return volume.read(roi.to_slices())


def sort_lut(lut: Lut) -> Lut:
    """The LUT ordered by fragment id (uint64), as :func:`apply_lut` with ``is_sorted`` wants it."""
    fragment_ids, segment_ids = (np.asarray(a, dtype=np.uint64) for a in lut)
    order = np.argsort(fragment_ids, kind="stable")
    return fragment_ids[order], segment_ids[order]


def apply_lut(fragments: np.ndarray, lut: Lut, is_sorted: bool = False) -> np.ndarray:
    """Map fragment ids to segment ids; ids missing from the LUT keep their value.

    Only the ids present in the block enter the fastremap table, so a LUT of millions of
    fragments costs a ``searchsorted`` per block, not a dict of millions of entries.

    Args:
        fragments: fragment block, zyx, integer dtype.
        lut: ``(fragment_ids, segment_ids)``, arrays of equal length.
        is_sorted: ``lut`` is already ordered by fragment id (:func:`sort_lut`).

    Returns:
        A uint64 segment block of the same shape.
    """
    fragment_ids, segment_ids = lut if is_sorted else sort_lut(lut)
    block = np.ascontiguousarray(fragments, dtype=np.uint64)
    if len(fragment_ids) == 0:
        return block.copy()
    present = fastremap.unique(block)
    position = np.minimum(np.searchsorted(fragment_ids, present), len(fragment_ids) - 1)
    found = fragment_ids[position] == present
    table = dict(zip(present[found].tolist(), segment_ids[position[found]].tolist()))
    return fastremap.remap(block, table, preserve_missing_labels=True, in_place=False).astype(np.uint64, copy=False)


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when nothing is left in it (the run's ``blocks/`` after a finished stage)."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def lut_index(run_dir: Path) -> dict:
    """The run's ``luts/index.json`` (``{}`` when the run has no LUTs)."""
    index = Path(run_dir) / "luts" / "index.json"
    return json.loads(index.read_text()) if index.exists() else {}


def read_best_threshold(run_dir: Path) -> float | None:
    """The threshold the last evaluation chose (``reports/best_threshold.json``), or None."""
    path = Path(run_dir) / BEST_THRESHOLD_FILE
    if not path.exists():
        return None
    value = json.loads(path.read_text()).get("threshold")
    return None if value is None else float(value)


def write_best_threshold(run_dir: Path, best: dict) -> Path:
    """Record the chosen row (``threshold`` and its figures) atomically; returns the path."""
    path = Path(run_dir) / BEST_THRESHOLD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(best, indent=1))
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class RunLabels:
    """What a run's segments are made of.

    Attributes:
        volume: ``segmentation`` or ``fragments`` of the run (zyx, integer).
        luts: ``{threshold: lut}`` to apply to ``fragments`` per block (sorted by fragment id
            on construction); empty when ``volume`` is the segmentation itself.
    """

    volume: Volume
    luts: dict[float, Lut] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Sorted once here, so that every block only searches the LUTs.
        object.__setattr__(self, "luts", {t: sort_lut(lut) for t, lut in self.luts.items()})

    @property
    def keys(self) -> list[float | None]:
        """One key per segmentation: the thresholds, or ``[None]`` for the plain segmentation."""
        return sorted(self.luts) if self.luts else [None]

    def read(self, roi: Roi) -> dict[float | None, np.ndarray]:
        """Every segmentation's block at ``roi``: ``{threshold or None: uint64/int labels}``."""
        block = read_roi(self.volume, roi)
        if not self.luts:
            return {None: block}
        return {threshold: apply_lut(block, self.luts[threshold], is_sorted=True) for threshold in self.keys}

    def describe(self) -> str:
        if not self.luts:
            return self.volume.source
        return f"{self.volume.source} with LUT thresholds {self.keys}"


def _open_group(store: Path, name: str) -> Volume:
    volume = open_volume(store / name)
    check_label_volume(volume, name)
    return volume


def labels_for_evaluation(run_dir: Path) -> RunLabels:
    """Fragments with every LUT of the run, or, without LUTs, the run's segmentation."""
    store = run_store(run_dir)
    if lut_index(run_dir).get("luts") and group_exists(store, "fragments"):
        return RunLabels(_open_group(store, "fragments"), read_luts(run_dir))
    if group_exists(store, "segmentation"):
        return RunLabels(_open_group(store, "segmentation"))
    raise InputError(f"{run_dir}: no segmentation and no fragments with LUTs to evaluate; run the segment stage first")


def labels_for_skeletons(run_dir: Path, threshold: float | None = None) -> tuple[RunLabels, float | None]:
    """The one segmentation to skeletonize, and the LUT threshold used (None: the segmentation).

    ``segmentation/`` is used when it exists and no ``threshold`` is asked for; else the
    fragments with the LUT of ``threshold``, of ``reports/best_threshold.json``, or the only
    LUT of the run.
    """
    store = run_store(run_dir)
    if threshold is None and group_exists(store, "segmentation"):
        return RunLabels(_open_group(store, "segmentation")), None
    if not group_exists(store, "fragments") or not lut_index(run_dir).get("luts"):
        raise InputError(f"{run_dir}: no segmentation and no fragments with LUTs to skeletonize; run the segment stage first")
    luts = read_luts(run_dir)
    chosen = threshold if threshold is not None else read_best_threshold(run_dir)
    if chosen is None:
        if len(luts) != 1:
            raise InputError(
                f"{run_dir}: {len(luts)} LUT thresholds {sorted(luts)} and no reports/best_threshold.json: "
                "run `axonseg evaluate` first or set threshold in the skeletonize config"
            )
        chosen = next(iter(luts))
    match = [t for t in luts if np.isclose(t, chosen)]
    if not match:
        raise InputError(f"threshold={chosen}: the run has LUTs only for thresholds {sorted(luts)}")
    logger.info("skeletonizing fragments with the LUT of threshold %s", match[0])
    return RunLabels(_open_group(store, "fragments"), {match[0]: luts[match[0]]}), match[0]
