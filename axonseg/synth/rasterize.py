"""Neurite centerlines (nm) to a dense instance label volume (voxels), one component per id.

Each voxel goes to the tube whose axis is nearest relative to its radius (a weighted Voronoi
partition restricted to the tubes), so a thin axon keeps its axis next to a thick dendrite.
"""

from __future__ import annotations

import cc3d
import numpy as np

from axonseg.synth.geometry import Neurite
from axonseg.synth.kernels import paint_normalised


def _chords(points: np.ndarray, radii: np.ndarray, spine: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th centerline point, k chosen so chords stay short against the radius.

    A chord of length c on a curve of curvature radius >= 1 um departs from it by c^2 / 8 um,
    a few nm for c ~ the tube radius, while fewer (bigger) segments paint much faster.
    """
    if spine or len(points) < 3:
        return points, radii
    step = max(1, int(np.median(radii) / 40.0))
    keep = np.unique(np.r_[np.arange(0, len(points), step), len(points) - 1])
    return points[keep], radii[keep]


def tube_segments(neurites: list[Neurite]) -> tuple[np.ndarray, ...]:
    """All tube segments of all neurites: starts, ends (S, 3) nm, r0, r1 (S,) nm, index (S,) int32.

    The index is the position of the neurite in ``neurites`` (not its id).
    """
    starts, ends, r0, r1, index = [], [], [], [], []
    for i, neurite in enumerate(neurites):
        for branch in neurite.branches:
            points, radii = _chords(branch.points, branch.radii, branch.spine)
            if len(points) < 2:
                points, radii = np.repeat(points, 2, axis=0), np.repeat(radii, 2)
            starts.append(points[:-1])
            ends.append(points[1:])
            r0.append(radii[:-1])
            r1.append(radii[1:])
            index.append(np.full(len(points) - 1, i, dtype=np.int32))
    if not starts:
        empty = np.zeros((0, 3))
        return empty, empty, np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int32)
    return (np.ascontiguousarray(np.concatenate(starts)), np.ascontiguousarray(np.concatenate(ends)),
            np.concatenate(r0), np.concatenate(r1), np.concatenate(index))


def assign_voxels(neurites: list[Neurite], shape: tuple[int, int, int],
                  voxel_size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Paint all tubes: per voxel the winning neurite's id and its normalised axis distance.

    Args:
        neurites: the scene (nm).
        shape: volume shape in voxels, zyx.
        voxel_size: voxel size in nm, zyx; voxel i spans [i, i + 1) * voxel_size.

    Returns:
        labels: uint64 ids (0 where no tube reaches), zyx.
        score: float32 distance to the winner's axis divided by its radius (inf where 0).
    """
    score = np.full(shape, np.inf, dtype=np.float32)
    owner = np.full(shape, -1, dtype=np.int32)
    starts, ends, r0, r1, index = tube_segments(neurites)
    paint_normalised(score, owner, starts, ends, r0, r1, index,
                     np.asarray(voxel_size, dtype=np.float64), np.zeros(3), 1.0)
    ids = np.array([n.id for n in neurites] + [0], dtype=np.uint64)
    return ids[owner], score  # owner -1 picks the trailing 0


def carve_gaps(labels: np.ndarray, score: np.ndarray, voxel_size: tuple[float, float, float]) -> np.ndarray:
    """Set to 0 one voxel of every touching pair of different neurites: a thin extracellular gap.

    Of each pair the voxel farther (relative to the radius) from its own axis is removed, so
    thin axons keep their core. Only axes whose voxel size is near the finest one get a gap
    (in 30x8x8 nm data a 30 nm gap along z would be far too wide).
    """
    out = labels.copy()
    finest = min(voxel_size)
    for axis in range(3):
        if voxel_size[axis] > 1.5 * finest:
            continue
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        a, b = labels[tuple(lo)], labels[tuple(hi)]
        touching = (a != b) & (a != 0) & (b != 0)
        drop_a = touching & (score[tuple(lo)] >= score[tuple(hi)])
        drop_b = touching & ~drop_a
        out[tuple(lo)][drop_a] = 0
        out[tuple(hi)][drop_b] = 0
    return out


def keep_largest_components(labels: np.ndarray, min_voxels: int = 1) -> np.ndarray:
    """Keep only each id's largest 6-connected component (and only if >= ``min_voxels``).

    Args:
        labels: uint64 instance labels, zyx.
        min_voxels: smaller objects are removed entirely.

    Returns:
        A copy where every nonzero id is one 6-connected component; removed voxels are 0.
    """
    components = cc3d.connected_components(labels, connectivity=6)
    n = int(components.max())
    if n == 0:
        return labels.copy()
    flat_components = components.ravel()
    sizes = np.bincount(flat_components, minlength=n + 1)
    owner_of = np.zeros(n + 1, dtype=labels.dtype)
    owner_of[flat_components] = labels.ravel()
    comps = np.arange(1, n + 1)
    # Sort components by owner id, biggest first, and keep the first of each owner.
    order = np.lexsort((-sizes[1:], owner_of[1:]))
    first = np.ones(n, dtype=bool)
    first[1:] = owner_of[1:][order][1:] != owner_of[1:][order][:-1]
    keep = np.zeros(n + 1, dtype=bool)
    keep[comps[order][first]] = True
    keep &= sizes >= min_voxels
    keep[0] = False
    return np.where(keep[components], labels, 0).astype(labels.dtype)


def rasterize(neurites: list[Neurite], shape: tuple[int, int, int], voxel_size: tuple[float, float, float],
              gap: bool = True, min_volume_nm3: float = 1.0e6) -> tuple[np.ndarray, np.ndarray]:
    """Dense neurite labels of the scene: one 6-connected component per id, ECS = 0.

    Args:
        neurites: the scene (nm).
        shape: volume shape in voxels, zyx.
        voxel_size: voxel size in nm, zyx.
        gap: carve a one-voxel extracellular gap between touching neurites.
        min_volume_nm3: objects smaller than this (for example tips grazing a face) are dropped.

    Returns:
        labels: uint64 neurite ids, zyx.
        score: float32 normalised distance of each voxel to its neurite's axis (for rendering).
    """
    labels, score = assign_voxels(neurites, shape, voxel_size)
    if gap:
        labels = carve_gaps(labels, score, voxel_size)
    min_voxels = max(1, int(min_volume_nm3 / float(np.prod(voxel_size))))
    return keep_largest_components(labels, min_voxels), score
