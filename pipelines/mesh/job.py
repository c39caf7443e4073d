"""``axonseg mesh``: a surface mesh of every segment of a run, blockwise and resumable, written
as a neuroglancer precomputed legacy mesh folder.

Reads the labels the run folder shows (its one rule for the threshold, as skeletonize does),
meshes them block by block (:mod:`.blocks`), joins the pieces per segment (:mod:`.join`) and
writes ``RUN/meshes/``: ``info`` (``{"@type": "neuroglancer_legacy_mesh"}``), per segment the
fragment ``<id>`` (vertices in nm, **x y z** as neuroglancer wants them) and the manifest
``<id>:0``, plus ``config.yaml`` and the state ``mesh.json``. Per-block pieces live in
``RUN/meshes/blocks/`` while the job runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from axonseg.blockwise import Roi
from axonseg.blockwise.stage import digest
from axonseg.config import ShapeTriple, load_config, save_resolved
from axonseg.errors import InputError
from axonseg.io.precomputed import legacy_mesh_ids, read_legacy_mesh, write_mesh_info
from axonseg.mesh import Mesh, MeshParams
from axonseg.pipelines.mesh.blocks import mesh_blocks
from axonseg.pipelines.mesh.join import join_to_disk
from axonseg.pipelines.run_folder import RunFolder, remove_if_empty
from axonseg.pipelines.run_lock import run_lock

logger = logging.getLogger(__name__)

STAGE = "mesh"
MESH_DIR = "meshes"
STATE_FILE = "mesh.json"


class MeshConfig(MeshParams):
    """How ``axonseg mesh`` runs (one flat YAML, ``configs/mesh.yaml``): the meshing settings of
    :class:`axonseg.mesh.MeshParams` plus the block shape, the threshold and the join batch."""

    block_shape: ShapeTriple = Field((64, 256, 256), description="write block shape in voxels (z, y, x)")
    threshold: float | None = Field(
        None, description="LUT threshold to mesh; default: the run folder's rule (evaluated best, else median)"
    )
    join_batch_vertices: int = Field(
        2_000_000, ge=10_000, description="piece vertices joined at once (bounds the join's memory)"
    )

    def params(self) -> MeshParams:
        """The meshing settings alone."""
        return MeshParams(**self.model_dump(include=set(MeshParams.model_fields)))


def load_mesh_config(path: str | Path | None = None) -> MeshConfig:
    """The config from a YAML file, or the defaults when ``path`` is None.

    Raises:
        ConfigError: the file is missing, not YAML, or has an unknown or bad key.
    """
    return MeshConfig() if path is None else load_config(path, MeshConfig)


@dataclass(frozen=True)
class MeshResult:
    """What the mesh job wrote.

    Attributes:
        mesh_dir: ``RUN/meshes`` (a neuroglancer legacy mesh folder).
        n_segments: segments with a mesh.
        n_faces: triangles of all meshes.
        total_area_nm2: summed surface area, nm².
        not_watertight: meshes with an edge not shared by exactly two faces.
        threshold: the LUT threshold meshed (None: a ``segmentation/`` of a run without LUTs).
        config_hash: hash of the resolved config and the labels' source.
        up_to_date: the meshes were complete for this config already; nothing ran.
    """

    mesh_dir: Path
    n_segments: int
    n_faces: int
    total_area_nm2: float
    not_watertight: int
    threshold: float | None
    config_hash: str
    up_to_date: bool = False


def _read_state(mesh_dir: Path) -> dict[str, Any] | None:
    path = mesh_dir / STATE_FILE
    try:
        return json.loads(path.read_text()) if path.exists() else None
    except json.JSONDecodeError:
        return None  # a torn state file is an unfinished run


def _write_state(mesh_dir: Path, state: dict[str, Any]) -> None:
    mesh_dir.mkdir(parents=True, exist_ok=True)
    tmp = mesh_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, mesh_dir / STATE_FILE)


def _clear_meshes(mesh_dir: Path) -> None:
    """Remove an earlier run's segment files (everything but the state and the block pieces)."""
    for entry in os.scandir(mesh_dir):
        if entry.name not in (STATE_FILE, "blocks") and entry.is_file():
            os.unlink(entry.path)


def _result(mesh_dir: Path, state: dict[str, Any], up_to_date: bool) -> MeshResult:
    return MeshResult(mesh_dir, int(state["n_segments"]), int(state["n_faces"]), float(state["total_area_nm2"]),
                      int(state["not_watertight"]), state["threshold"], state["config_hash"], up_to_date)


def run_mesh(
    run_dir: str | Path,
    config: MeshConfig | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> MeshResult:
    """Mesh the run's segments blockwise and write ``RUN/meshes`` (neuroglancer legacy meshes).

    Args:
        run_dir: the run folder.
        config: block shape, threshold, simplification and smoothing; defaults when None.
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]`` or ``tcp://host:port``.
        restart: drop the done markers of an interrupted run with another config and start
            again; also re-mesh when the meshes are up to date.
        show_progress: draw a progress bar.

    Returns:
        A :class:`MeshResult`.

    Raises:
        InputError: not a run folder, or the run has no segmentation or fragments with LUTs,
            or no LUT for the configured threshold.
        StageError: an interrupted run used another config and ``restart`` is False.
        RunLockedError: another process writes into ``run_dir``.
    """
    run_dir = Path(run_dir)
    config = config or MeshConfig()
    labels = RunFolder(run_dir).labels(config.threshold)  # raises before anything is written
    volume, key = labels.volume, labels.keys[0]
    resolved = config.model_copy(update={"threshold": labels.threshold})
    marker_config = {**resolved.model_dump(mode="json"), "source": labels.describe()}
    config_hash = digest(marker_config)
    mesh_dir = run_dir / MESH_DIR
    state = _read_state(mesh_dir)
    if not restart and state and state.get("complete") and state.get("config_hash") == config_hash:
        logger.info("mesh: up to date (config %s) in %s", config_hash, mesh_dir)
        return _result(mesh_dir, state, up_to_date=True)

    def read_labels(roi: Roi) -> np.ndarray:
        return labels.read(roi)[key]

    with run_lock(run_dir, STAGE):
        block_ids = mesh_blocks(
            read_labels, volume.spatial_shape, volume.voxel_size, volume.offset, resolved.params(),
            resolved.block_shape, mesh_dir / "blocks", run_dir, marker_config, name=STAGE, scheduler=scheduler,
            restart=restart, show_progress=show_progress,
        )
        _write_state(mesh_dir, {"complete": False, "config_hash": config_hash})
        _clear_meshes(mesh_dir)
        joined = join_to_disk(mesh_dir / "blocks", block_ids, mesh_dir, volume.voxel_size, resolved.params(),
                              resolved.join_batch_vertices)
        write_mesh_info(mesh_dir)
        save_resolved(resolved, mesh_dir / "config.yaml", job=STAGE)
        state = {"complete": True, "config_hash": config_hash, "threshold": labels.threshold,
                 "source": labels.describe(), "voxel_size": list(volume.voxel_size), "n_segments": joined.n_segments,
                 "n_faces": joined.n_faces, "total_area_nm2": joined.total_area_nm2,
                 "not_watertight": len(joined.not_watertight), "not_watertight_ids": joined.not_watertight[:100],
                 "blocks": len(block_ids)}
        _write_state(mesh_dir, state)
        # the per-segment files are the job's output; block pieces were only for resuming
        shutil.rmtree(mesh_dir / "blocks", ignore_errors=True)
        remove_if_empty(run_dir / "blocks")
    logger.info("mesh: %d segments, %d triangles from %d blocks (joined in %d batch(es)) in %s",
                joined.n_segments, joined.n_faces, len(block_ids), joined.n_batches, mesh_dir)
    return _result(mesh_dir, state, up_to_date=False)


def _finished_state(run_dir: Path) -> dict[str, Any]:
    state = _read_state(run_dir / MESH_DIR)
    if not state or not state.get("complete"):
        raise InputError(f"{run_dir}: no finished meshes in {run_dir / MESH_DIR}; run `axonseg mesh {run_dir}` first")
    return state


def mesh_ids(run_dir: str | Path) -> np.ndarray:
    """Sorted uint64 ids of the segments with a mesh in ``RUN/meshes``.

    Raises:
        InputError: the run has no finished meshes.
    """
    run_dir = Path(run_dir)
    _finished_state(run_dir)
    return legacy_mesh_ids(run_dir / MESH_DIR)


def read_mesh(run_dir: str | Path, segment_id: int) -> Mesh:
    """One segment's mesh from ``RUN/meshes``, back in our convention (world nm, **zyx**).

    Raises:
        InputError: the run has no finished meshes, or none for this segment (e.g. a segment
            that a proofreading edit made after the meshes were written), or a damaged file.
    """
    run_dir = Path(run_dir)
    state = _finished_state(run_dir)
    mesh_dir = run_dir / MESH_DIR
    segment = int(segment_id)
    if segment > 0 and not (mesh_dir / f"{segment}:0").is_file():
        threshold = state.get("threshold")
        at = f" at threshold {threshold}" if threshold is not None else ""
        raise InputError(f"{mesh_dir}: no mesh for segment {segment}: the meshes{at} hold {state.get('n_segments')} "
                         f"segments; a segment made by a later edit has none until `axonseg mesh {run_dir}` runs again")
    vertices, faces = read_legacy_mesh(mesh_dir, segment)
    return Mesh(vertices, faces)
