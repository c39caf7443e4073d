"""Fragment -> segment lookup tables of a run: one small ``.npz`` per agglomeration threshold.

Layout: ``RUN/luts/index.json`` lists the thresholds and the file of each; each file holds
``fragment_ids`` and ``segment_ids`` (uint64, same length). Writes are atomic (temp + rename)
and the index is written last, so a LUT listed in the index is always complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from axonseg.errors import InputError

Lut = tuple[np.ndarray, np.ndarray]


def _name(threshold: float) -> str:
    return f"threshold_{threshold:.4f}.npz"


def write_luts(run_dir: Path, luts: dict[float, Lut], method: str = "agglomeration") -> Path:
    """Write one LUT per threshold into ``run_dir/luts`` and the index that lists them.

    Args:
        run_dir: the run folder.
        luts: ``{threshold: (fragment_ids, segment_ids)}``.
        method: what made them (recorded in the index).
    """
    folder = Path(run_dir) / "luts"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for threshold in sorted(luts):
        fragment_ids, segment_ids = (np.asarray(a, dtype=np.uint64) for a in luts[threshold])
        if fragment_ids.shape != segment_ids.shape:
            raise InputError(f"LUT at threshold {threshold}: {len(fragment_ids)} fragment ids but {len(segment_ids)} segment ids")
        target = folder / _name(threshold)
        tmp = target.with_name(target.name + ".tmp.npz")
        np.savez(tmp, fragment_ids=fragment_ids, segment_ids=segment_ids)
        os.replace(tmp, target)
        entries.append({"threshold": float(threshold), "file": target.name})
    index = folder / "index.json"
    tmp_index = index.with_suffix(".json.tmp")
    tmp_index.write_text(json.dumps({"method": method, "luts": entries}, indent=1))
    os.replace(tmp_index, index)
    return index


def read_luts(run_dir: Path) -> dict[float, Lut]:
    """Read every LUT of a run: ``{threshold: (fragment_ids, segment_ids)}``."""
    index = Path(run_dir) / "luts" / "index.json"
    if not index.exists():
        raise InputError(f"{run_dir}: no lookup tables (luts/index.json); run the agglomeration stage first")
    listing = json.loads(index.read_text())
    result: dict[float, Lut] = {}
    for entry in listing["luts"]:
        with np.load(index.parent / entry["file"]) as data:
            result[float(entry["threshold"])] = (data["fragment_ids"], data["segment_ids"])
    return result
