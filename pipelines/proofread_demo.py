"""A small synthetic run folder to proofread (the viewer's tests, benchmark and a quick look):
box fragments chained along x into "axons", a region graph, one agglomeration LUT, ground truth.

Some axons are broken (low-affinity contacts: split errors) and some touch a neighbour with a
high-affinity contact (merge errors), so the LUT has errors to proofread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.io.luts import write_luts
from axonseg.io.pyramid import downsample
from axonseg.segment import RegionGraph, agglomerate, graph_to_tables

THRESHOLD = 0.5


def box_fragments(shape: Sequence[int], box: Sequence[int]) -> np.ndarray:
    """(Z, Y, X) uint64 fragment ids 1..n: one id per box of ``box`` voxels (zyx)."""
    grid = [s // b for s, b in zip(shape, box)]
    index = [np.minimum(np.arange(s) // b, g - 1) for s, b, g in zip(shape, box, grid)]
    ids = (index[0][:, None, None] * grid[1] + index[1][None, :, None]) * grid[2] + index[2][None, None, :]
    return (ids + 1).astype(np.uint64)


def box_graph(shape: Sequence[int], box: Sequence[int], voxel_size: Sequence[float], seed: int = 0,
              break_rate: float = 0.05, leak_rate: float = 0.01) -> tuple[RegionGraph, np.ndarray]:
    """Region graph of :func:`box_fragments` and the true axon of each fragment.

    An axon is one row of boxes along x (same z and y box index). Contacts along x inside an
    axon have affinity ~0.9, except ``break_rate`` of them (~0.2); contacts between axons ~0.05,
    except ``leak_rate`` of them (~0.85).

    Returns:
        ``(graph, axon_of_fragment)`` with ``axon_of_fragment[i]`` for fragment id i + 1.
    """
    rng = np.random.default_rng(seed)
    grid = np.array([s // b for s, b in zip(shape, box)])
    vs = np.asarray(voxel_size, np.float64)
    ids = np.arange(1, grid.prod() + 1, dtype=np.uint64).reshape(grid)
    axon = (np.arange(grid.prod()) // grid[2]).astype(np.uint64) + 1
    u, v, aff, count, area = [], [], [], [], []
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        a, b = ids[tuple(lo)].ravel(), ids[tuple(hi)].ravel()
        faces = int(np.prod([box[i] for i in range(3) if i != axis]))
        along = axis == 2
        p = rng.random(len(a))
        value = np.where(along, np.where(p < break_rate, 0.2, 0.9), np.where(p < leak_rate, 0.85, 0.05))
        value = np.clip(value + rng.normal(0, 0.03, len(a)), 0.0, 1.0)
        u.append(a)
        v.append(b)
        aff.append(value)
        count.append(np.full(len(a), faces, np.int64))
        area.append(np.full(len(a), faces * np.prod([vs[i] for i in range(3) if i != axis])))
    u, v = np.concatenate(u), np.concatenate(v)
    aff, count = np.concatenate(aff), np.concatenate(count)
    bins = np.rint(aff * 255).astype(np.uint8)
    centre = np.stack(np.meshgrid(*[(np.arange(g) + 0.5) * b for g, b in zip(grid, box)], indexing="ij"), -1)
    graph = RegionGraph(
        node_id=ids.ravel(), node_size=np.full(ids.size, int(np.prod(box)), np.int64),
        node_centroid=centre.reshape(-1, 3) * vs, u=u, v=v, aff_sum=aff * count, count=count,
        area=np.concatenate(area), hist_ptr=np.arange(len(u) + 1, dtype=np.int64), hist_bin=bins,
        hist_count=count.astype(np.uint32),
    )
    return graph, axon


def _write_volume(store: Path, name: str, data: np.ndarray, voxel_size: Sequence[float], mode: str) -> None:
    factors = [(1, 2, 2)] if min(data.shape[1:]) >= 64 else []
    create_multiscale(store, name, data.shape, data.dtype, voxel_size, chunk_shape=(16, 128, 128),
                      factors=factors, downsampling=mode, overwrite=True)
    level = data
    for index in range(len(factors) + 1):
        write_block(open_level(store, name, index), level, (0, 0, 0))
        if index < len(factors):
            level = downsample(level, factors[index], mode)
    mark_complete(store, name)


def write_demo_run(run_dir: str | Path, shape: Sequence[int] = (16, 64, 64), box: Sequence[int] = (4, 8, 8),
                   voxel_size: Sequence[float] = (40.0, 8.0, 8.0), seed: int = 0, with_labels: bool = True) -> Path:
    """Write a run folder with raw, fragments, labels, region graph and one LUT.

    Args:
        run_dir: the folder to create.
        shape: volume shape in voxels (zyx), multiples of ``box``.
        box: fragment box shape in voxels (zyx).
        voxel_size: nm (zyx).
        seed: random seed for the affinities and the raw noise.
        with_labels: also write ground truth ``labels`` (the true axons).

    Returns:
        The run folder.
    """
    run_dir = Path(run_dir)
    store = run_dir / "volume.zarr"
    fragments = box_fragments(shape, box)
    graph, axon = box_graph(shape, box, voxel_size, seed)
    rng = np.random.default_rng(seed)
    edge = np.zeros(shape, bool)
    for axis in (1, 2):  # membranes between axons (y) and a faint one between fragments (x)
        edge |= (np.arange(shape[axis]) % box[axis] == 0).reshape([-1 if a == axis else 1 for a in range(3)])
    raw = (180 - 100 * edge + rng.integers(0, 40, shape)).astype(np.uint8)
    _write_volume(store, "raw", raw, voxel_size, "mean")
    _write_volume(store, "fragments", fragments, voxel_size, "strided")
    if with_labels:
        _write_volume(store, "labels", axon[(fragments - 1).astype(np.int64)], voxel_size, "strided")
    nodes, edges = graph_to_tables(graph)
    for name, table in (("nodes", nodes), ("edges", edges)):
        (run_dir / "graph" / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, run_dir / "graph" / name / "0.parquet")
    (run_dir / "graph" / "graph.json").write_text('{"complete": true, "config_hash": "demo"}')
    write_luts(run_dir, {THRESHOLD: agglomerate(graph, [THRESHOLD])[0].lut}, method="demo")
    return run_dir
