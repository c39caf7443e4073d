"""Fragment -> segment lookup tables of a run: one small ``.npz`` per agglomeration threshold.

Layout: ``RUN/luts/index.json`` lists the thresholds and the file of each; each file holds
``fragment_ids`` and ``segment_ids`` (uint64, same length). Writes are atomic (temp + rename)
and the index is written last, so a LUT listed in the index is always complete. In memory a
LUT is a :class:`Lut` (a plain value type; ``axonseg.segment.apply_lut`` applies it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from axonseg.errors import InputError

def _ids(values: np.ndarray, name: str) -> np.ndarray:
    ids = np.asarray(values)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"LUT {name} have dtype {ids.dtype}: expected integer ids")
    if ids.dtype.kind == "i" and ids.size and ids.min() < 0:
        raise InputError(f"LUT {name} hold negative values: expected ids >= 0")
    return ids.astype(np.uint64, copy=False)


@dataclass(frozen=True)
class Lut:
    """Fragment id -> segment id, sorted by fragment id on construction.

    Attributes:
        fragment_ids: (N,) uint64 fragment ids, ascending.
        segment_ids: (N,) uint64 segment id of each fragment.

    Raises:
        InputError: the two arrays are not 1-D, differ in length, or are not integer ids.
    """

    fragment_ids: np.ndarray
    segment_ids: np.ndarray

    def __post_init__(self) -> None:
        fragment_ids = _ids(self.fragment_ids, "fragment ids")
        segment_ids = _ids(self.segment_ids, "segment ids")
        if fragment_ids.ndim != 1 or fragment_ids.shape != segment_ids.shape:
            raise InputError(
                f"LUT has {fragment_ids.size} fragment ids but {segment_ids.size} segment ids "
                f"(shapes {fragment_ids.shape} and {segment_ids.shape}): expected two 1-D arrays of equal length"
            )
        # A LUT read from disk or from an edit session is sorted already: checking is O(N), sorting is not.
        if len(fragment_ids) > 1 and not bool(np.all(fragment_ids[1:] >= fragment_ids[:-1])):
            order = np.argsort(fragment_ids, kind="stable")
            fragment_ids, segment_ids = fragment_ids[order], segment_ids[order]
        object.__setattr__(self, "fragment_ids", fragment_ids)
        object.__setattr__(self, "segment_ids", segment_ids)

    @classmethod
    def of(cls, value: Lut | tuple[np.ndarray, np.ndarray]) -> Lut:
        """``value`` itself, or the LUT of a ``(fragment_ids, segment_ids)`` pair."""
        if isinstance(value, Lut):
            return value
        fragment_ids, segment_ids = value
        return cls(fragment_ids, segment_ids)

    def digest(self) -> str:
        """A short sha256 of the content (sorted ids), naming this LUT in caches such as
        ``segmentation/``."""
        # fed in place (no tobytes copies: a LUT of millions of fragments is tens of MB)
        digest = hashlib.sha256()
        for ids in (self.fragment_ids, self.segment_ids):
            digest.update(memoryview(np.ascontiguousarray(ids)).cast("B"))
        return digest.hexdigest()[:16]


INDEX = Path("luts") / "index.json"


def _name(threshold: float) -> str:
    return f"threshold_{threshold:.4f}.npz"


def write_luts(run_dir: Path, luts: Mapping[float, Lut | tuple[np.ndarray, np.ndarray]],
               method: str = "agglomeration") -> Path:
    """Write one LUT per threshold into ``run_dir/luts`` and the index that lists them.

    Args:
        run_dir: the run folder.
        luts: ``{threshold: Lut}`` (or ``(fragment_ids, segment_ids)`` pairs).
        method: what made them (recorded in the index).

    Returns:
        The path of ``luts/index.json``.

    Raises:
        InputError: a LUT whose fragment and segment ids differ in length.
    """
    folder = Path(run_dir) / "luts"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for threshold in sorted(luts):
        try:
            lut = Lut.of(luts[threshold])
        except InputError as error:
            raise InputError(f"LUT at threshold {threshold}: {error}") from None
        target = folder / _name(threshold)
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez(tmp, fragment_ids=lut.fragment_ids, segment_ids=lut.segment_ids)
        os.replace(tmp, target)
        entries.append({"threshold": float(threshold), "file": target.name})
    index = folder / "index.json"
    tmp_index = index.with_suffix(".json.tmp")
    tmp_index.write_text(json.dumps({"method": method, "luts": entries}, indent=1))
    os.replace(tmp_index, index)
    return index


def read_lut_index(run_dir: Path) -> dict:
    """The run's ``luts/index.json`` (``{"method": ..., "luts": [{"threshold", "file"}, ...]}``),
    or ``{}`` when the run has no LUTs."""
    index = Path(run_dir) / INDEX
    return json.loads(index.read_text()) if index.exists() else {}


def read_lut(run_dir: Path, file_name: str) -> Lut:
    """One LUT file of the run, ``luts/<file_name>`` (as the index names it).

    Raises:
        InputError: the file is missing or lacks ``fragment_ids`` / ``segment_ids``.
    """
    path = Path(run_dir) / "luts" / file_name
    if not path.exists():
        raise InputError(f"{path}: LUT file listed in luts/index.json is missing; run the agglomerate stage again")
    with np.load(path) as data:
        if not {"fragment_ids", "segment_ids"} <= set(data.files):
            raise InputError(f"{path} holds {sorted(data.files)}: expected fragment_ids and segment_ids")
        return Lut(data["fragment_ids"], data["segment_ids"])


def read_luts(run_dir: Path) -> dict[float, Lut]:
    """Read every LUT of a run: ``{threshold: Lut}``.

    Raises:
        InputError: the run has no ``luts/index.json``.
    """
    listing = read_lut_index(run_dir)
    if not listing:
        raise InputError(f"{run_dir}: no lookup tables (luts/index.json); run the agglomeration stage first")
    return {float(entry["threshold"]): read_lut(run_dir, entry["file"]) for entry in listing["luts"]}
