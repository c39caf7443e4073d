"""Everything the proofreading viewer reads from a run folder, and the session it edits with.

The base LUT is the one every job uses, by the run folder's one rule
(:meth:`axonseg.pipelines.RunFolder.default_threshold`): the evaluated best, else the median
threshold. The session's ``locate`` reads the fragments volume. The raw EM is read lazily
where the run recorded it (``RUN/inputs.json``; all levels of an OME-Zarr pyramid), never
copied into the run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from axonseg.errors import InputError
from axonseg.io import Volume, group_exists, open_levels, open_volume, parse_address
from axonseg.pipelines.run_folder import Lut, RunFolder
from axonseg.proofread import ProofreadSession
from axonseg.proofread.candidates import Candidates, dangling_ends, uncertain_merges

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    """A run opened for proofreading (volumes are lazy).

    Attributes:
        run_dir: the run folder.
        raw: raw EM levels s0..sN (finest first).
        fragments: fragment levels s0..sN.
        labels: ground truth s0 or None.
        threshold: the base LUT's threshold.
        base_lut: the LUT of ``threshold``, which the session edits.
        graph: the region graph (or None when the run has none).
        evaluation: ``reports/evaluation.json`` or None.
        skeletons: ``{segment_id: AxonGraph}`` from ``RUN/skeletons`` (may be empty).
        synapse_counts: ``{segment_id: synapses as pre or post}`` from the last export (may be empty).
    """

    run_dir: Path
    raw: list[Volume]
    fragments: list[Volume]
    labels: Volume | None
    threshold: float
    base_lut: Lut
    graph: object | None
    evaluation: dict | None = None
    skeletons: dict = field(default_factory=dict)
    synapse_counts: dict = field(default_factory=dict)

    @property
    def voxel_size(self) -> np.ndarray:
        return np.asarray(self.fragments[0].voxel_size, np.float64)

    @property
    def offset(self) -> np.ndarray:
        return np.asarray(self.fragments[0].offset, np.float64)

    def fragment_at(self, points_nm: np.ndarray) -> np.ndarray:
        """Fragment id under each (z, y, x) nm point (0 outside the volume)."""
        points = np.asarray(points_nm, np.float64).reshape(-1, 3)
        voxels = np.floor((points - self.offset) / self.voxel_size).astype(np.int64)
        shape = np.asarray(self.fragments[0].spatial_shape)
        inside = ((voxels >= 0) & (voxels < shape)).all(axis=1)
        ids = np.zeros(len(points), np.uint64)
        data = self.fragments[0].data
        for i in np.flatnonzero(inside):
            ids[i] = np.asarray(data[tuple(voxels[i])])
        return ids

    def open_session(self, user: str | None = None) -> ProofreadSession:
        """The edit session over ``RUN/edits.sqlite``, seeds located in the fragments volume."""
        base = (self.base_lut.fragment_ids, self.base_lut.segment_ids)
        return ProofreadSession(self.run_dir / "edits.sqlite", base, self.graph, user=user,
                                locate=self.fragment_at, base_id=f"threshold={self.threshold}")

    def candidates(self, session: ProofreadSession) -> Candidates:
        """Ranked error locations: the evaluation's split and merge lists when there is ground
        truth, else the least certain merges and short dangling skeleton ends."""
        if self.evaluation and (self.evaluation.get("splits") or self.evaluation.get("merges")):
            rows = [("split", r["location_nm"], r["segment_ids"], -r.get("erl_gain_nm", 0.0))
                    for r in self.evaluation.get("splits", [])]
            rows += [("merge", r["location_nm"], [r["segment_id"], 0], -r.get("erl_loss_nm", 0.0))
                     for r in self.evaluation.get("merges", [])]
            rows.sort(key=lambda r: r[3])  # largest ERL effect first
            return Candidates(np.array([r[1] for r in rows], np.float64).reshape(-1, 3), np.array([r[0] for r in rows]),
                              np.array([r[2] for r in rows], np.uint64).reshape(-1, 2), np.array([r[3] for r in rows]))
        parts = []
        if self.graph is not None:
            parts.append(uncertain_merges(self.graph, self.base_lut.fragment_ids, self.base_lut.segment_ids,
                                          self.threshold))
        if self.skeletons:
            shape_nm = np.asarray(self.fragments[0].spatial_shape) * self.voxel_size
            parts.append(dangling_ends(self.skeletons, (self.offset, self.offset + shape_nm)))
        parts = [p for p in parts if len(p)]
        if not parts:
            return Candidates(np.zeros((0, 3)), np.zeros(0, "<U5"), np.zeros((0, 2), np.uint64), np.zeros(0))
        # interleave the two kinds by rank, so "next error" alternates between them
        order = np.argsort(np.concatenate([np.arange(len(p)) for p in parts]), kind="stable")
        return Candidates(*(np.concatenate([getattr(p, f) for p in parts])[order]
                            for f in ("location_nm", "kind", "segment_ids", "score")))


def _synapse_counts(folder: Path) -> dict[int, int]:
    """Synapses per segment (as pre or post) from an export's synapse table, when there is one."""
    for path in sorted(folder.rglob("synapses.parquet")) + sorted(folder.rglob("synapses.csv")):
        if path.exists():
            import pandas as pd

            table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
            if {"pre_id", "post_id"} <= set(table.columns):
                ids, counts = np.unique(np.concatenate([table["pre_id"], table["post_id"]]), return_counts=True)
                return dict(zip(ids.tolist(), counts.tolist()))
    return {}


def _missing_path(address: str | Path) -> Path | None:
    """The file or folder of ``address`` when it does not exist, else None."""
    try:
        path = parse_address(address).path
    except InputError:  # not even a recognisable address: a path that is not there
        return Path(str(address))
    return None if path.exists() else path


def _check_aligned(raw: Volume, fragments: Volume) -> None:
    """Raw must cover the fragments' grid: same voxel size, offset and shape (nm, zyx)."""
    same = (np.allclose(raw.voxel_size, fragments.voxel_size) and np.allclose(raw.offset, fragments.offset)
            and tuple(raw.spatial_shape) == tuple(fragments.spatial_shape))
    if not same:
        raise InputError(
            f"raw {raw.source}: {tuple(raw.spatial_shape)} voxels of {tuple(raw.voxel_size)} nm at offset "
            f"{tuple(raw.offset)} nm, but the run's fragments are {tuple(fragments.spatial_shape)} voxels of "
            f"{tuple(fragments.voxel_size)} nm at {tuple(fragments.offset)} nm: expected the raw the run was made from"
        )


def raw_levels(run: RunFolder, fragments: Volume, raw: str | Path | None = None) -> list[Volume]:
    """The raw EM levels to show with a run, opened lazily where they are (never copied).

    Args:
        run: the run folder.
        fragments: the run's fragments (s0): their voxel size serves a raw file that has none.
        raw: an address to use instead of the recorded one (the raw has moved).

    Returns:
        ``raw``'s levels; else ``volume.zarr/raw`` when the run holds one (a proofreading
        demo run); else the raw the run was made from, as :meth:`RunFolder.raw_address`
        recorded it (an OME-Zarr group gives all its levels; HDF5, tif, npy, n5 one).

    Raises:
        InputError: the recorded raw is missing (naming the path and ``--raw``), or no raw
            is recorded.
    """
    if raw is not None:
        missing = _missing_path(raw)
        if missing is not None:
            raise InputError(f"{missing}: no such file or folder (--raw): expected the raw EM the run was made from")
        return open_levels(raw, fragments.voxel_size)
    if group_exists(run.store, "raw"):
        return open_levels(run.store / "raw")
    address = run.raw_address()
    if address is None:
        raise InputError(f"{run.path}: the run records no raw EM (no inputs.json, no volume.zarr/raw); "
                         "pass --raw ADDRESS (the raw EM the run was made from)")
    missing = _missing_path(address)
    if missing is not None:
        raise InputError(f"{missing}: the run's raw EM (recorded in {run.path / 'inputs.json'}) is missing: moved or "
                         "deleted? pass --raw ADDRESS to point to where it is now")
    return open_levels(address, fragments.voxel_size)


def load_run(run_dir: str | Path, raw: str | Path | None = None) -> RunData:
    """Open a run for proofreading.

    Args:
        run_dir: the run folder.
        raw: the raw EM address when it is not where the run recorded it (see :func:`raw_levels`).

    Raises:
        InputError: no volume.zarr, no fragments, no LUTs, or raw missing or on another grid
            than the fragments.
    """
    run_dir = Path(run_dir)
    run = RunFolder(run_dir)
    store = run.store
    if not group_exists(store, "fragments"):
        raise InputError(f"{store / 'fragments'}: missing; proofreading needs the fragments: run axonseg segment first")
    fragments = open_levels(store / "fragments")
    raw_volumes = raw_levels(run, fragments[0], raw)
    _check_aligned(raw_volumes[0], fragments[0])
    threshold = run.default_threshold()
    graph = None
    if (run.graph_dir / "graph.json").exists():
        from axonseg.pipelines.segment.graph import read_graph  # pulls the blockwise stage code only when needed
        graph = read_graph(run_dir)
    evaluation_path = run.reports_dir / "evaluation.json"
    evaluation = json.loads(evaluation_path.read_text()) if evaluation_path.exists() else None
    skeletons = {}
    if (run.skeletons_dir / "nodes.parquet").exists():
        from axonseg.pipelines.skeletonize import read_run_skeletons
        skeletons = read_run_skeletons(run_dir)
    labels = open_volume(store / "labels") if group_exists(store, "labels") else None
    synapse_counts = _synapse_counts(run_dir / "connectome")
    logger.info("proofreading %s (raw %s) with the LUT of threshold %s", run_dir, raw_volumes[0].source, threshold)
    return RunData(run_dir, raw_volumes, fragments, labels, threshold, run.lut(threshold),
                   graph, evaluation, skeletons, synapse_counts)
