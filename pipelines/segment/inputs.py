"""Everything ``axonseg segment`` is given, checked before its first stage (raw, model, ground
truth, synapses, scheduler), and the record of it that the run folder keeps (``inputs.json``).

Reads only metadata and the model file: a bad input costs seconds, not the hours of predict.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from axonseg.blockwise import parse_scheduler
from axonseg.errors import InputError
from axonseg.io import Volume, open_volume
from axonseg.model import load_model
from axonseg.pipelines.labels import check_label_volume, check_not_intensity
from axonseg.pipelines.segment.predict import check_model_fits, default_model_path
from axonseg.pipelines.synth import store_synapses

logger = logging.getLogger(__name__)

__all__ = ["SegmentInputs", "check_segment_inputs", "open_raw", "resolved_address"]

#: The recorded inputs whose change makes another run (the others only change what is derived).
COMPARED = ("raw", "model")


def resolved_address(address: str | Path) -> str:
    """An array address with its file part made absolute, so that a run started from another
    folder is recognised as the same run."""
    text = str(address)
    path = Path(text)
    if path.exists():
        return str(path.resolve())
    head, sep, tail = text.rpartition(":")
    if sep and Path(head).exists():
        return f"{Path(head).resolve()}:{tail}"
    return text


def _open(address: str | Path, what: str, voxel_size: Sequence[float] | None) -> Volume:
    """Open an array; ``voxel_size`` (nm, zyx) only where its file carries none."""
    try:
        volume = open_volume(address)
    except InputError as err:
        if voxel_size is None:
            message = str(err)
            raise InputError(message if message.startswith(f"{what} ") else f"{what} {message}") from None
        return open_volume(address, voxel_size=voxel_size)  # re-raises errors other than a missing size
    if voxel_size is not None and not np.allclose(volume.voxel_size, voxel_size):
        raise InputError(
            f"{what} {volume.source} has voxel size {list(volume.voxel_size)} nm in its metadata but --voxel-size "
            f"is {[float(v) for v in voxel_size]}: expected them to agree"
        )
    return volume


def open_raw(address: str | Path, voxel_size: Sequence[float] | None = None) -> Volume:
    """The raw EM array, with ``voxel_size`` (nm, zyx) used only where its file carries none.

    Raises:
        InputError: unreadable, no voxel size anywhere, or one that contradicts ``voxel_size``.
    """
    return _open(address, "raw", voxel_size)


def _check_gt(address: str | Path, raw: Volume, voxel_size: Sequence[float] | None) -> Volume:
    """The ground truth, refused unless it lies voxel for voxel on the raw's grid."""
    gt = _open(address, "gt", voxel_size)
    check_label_volume(gt, "gt")
    check_not_intensity(gt, "gt")  # raw EM given as --gt would only be found out at evaluate, hours later
    if gt.spatial_shape != raw.spatial_shape:
        raise InputError(
            f"gt {gt.source} has shape {gt.spatial_shape} but raw {raw.source} has {raw.spatial_shape} (z y x, voxels): "
            "expected the ground truth of the same volume"
        )
    if not np.allclose(gt.voxel_size, raw.voxel_size):
        raise InputError(
            f"gt {gt.source} has voxel size {list(gt.voxel_size)} nm but raw {raw.source} has "
            f"{list(raw.voxel_size)} nm (z y x): expected the ground truth of the same volume"
        )
    both_placed = gt.attrs.get("offset_in_metadata", True) and raw.attrs.get("offset_in_metadata", True)
    if both_placed and not np.allclose(gt.offset, raw.offset):
        raise InputError(
            f"gt {gt.source} has offset {list(gt.offset)} nm but raw {raw.source} has {list(raw.offset)} nm "
            "(z y x): expected the ground truth of the same volume"
        )
    return gt


def _check_synapses(synapses: str | Path | None, raw_address: str | Path) -> str | None:
    if synapses is None:
        return store_synapses(raw_address)
    text = str(synapses)
    if not Path(text).exists():
        raise InputError(f"--synapses {text}: no such file or folder")
    return resolved_address(text)


@dataclass(frozen=True)
class SegmentInputs:
    """The checked inputs of one ``segment`` call.

    Attributes:
        raw: the opened raw (voxel size and offset in nm, zyx).
        raw_address: the raw's address as given.
        model: ``--model`` as given (None: the shipped default); model_path: the file used.
        gt: the ground-truth address, or None.
        voxel_size: ``--voxel-size`` (nm, zyx), or None.
        synapses: the synapse table or store for the export (the raw's synth store when none
            was given and it has ground-truth synapses), or None for the contact proxy.
    """

    raw: Volume
    raw_address: str | Path
    model: str | Path | None
    model_path: Path
    gt: str | Path | None
    voxel_size: tuple[float, float, float] | None
    synapses: str | None

    def record(self) -> dict:
        """``inputs.json``: every input of the run (addresses absolute)."""
        return {
            "raw": {"address": resolved_address(self.raw_address), "shape": list(self.raw.shape),
                    "voxel_size": list(self.raw.voxel_size)},
            "model": resolved_address(self.model) if self.model is not None else "default",
            "gt": resolved_address(self.gt) if self.gt is not None else None,
            "voxel_size": list(self.voxel_size) if self.voxel_size is not None else None,
            "synapses": self.synapses,
        }

    def compared(self) -> dict:
        """The part of :meth:`record` that makes another run when it changes."""
        record = self.record()
        return {key: record[key] for key in COMPARED}


def check_segment_inputs(
    raw: str | Path,
    model: str | Path | None = None,
    gt: str | Path | None = None,
    synapses: str | Path | None = None,
    voxel_size: Sequence[float] | None = None,
    scheduler: str = "threads",
) -> SegmentInputs:
    """Check every input of ``segment`` before anything is written.

    Args:
        raw: the raw EM array address.
        model: the model file; None: the shipped model for the raw's voxel size.
        gt: ground-truth labels address, or None.
        synapses: synapse table (CSV/parquet) or synth store, or None.
        voxel_size: nm (zyx), for a raw or gt whose file carries none.
        scheduler: the dask scheduler spec.

    Raises:
        InputError: an unreadable raw or gt, a missing voxel size, a model file that is not a
            model or does not fit the raw, a gt not on the raw's grid, a missing synapse table.
        ConfigError: a bad scheduler spec.
        StageError: no model given and none shipped for the raw's voxel size.
    """
    parse_scheduler(scheduler)
    size = None if voxel_size is None else tuple(float(v) for v in voxel_size)
    volume = open_raw(raw, size)
    model_path = Path(model) if model is not None else default_model_path(volume.voxel_size)
    check_model_fits(load_model(model_path), volume, model_path)
    if gt is not None:
        _check_gt(gt, volume, size)
    found = _check_synapses(synapses, raw)
    return SegmentInputs(volume, raw, model, model_path, gt, size, found)  # type: ignore[arg-type]
