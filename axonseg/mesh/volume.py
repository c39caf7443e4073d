"""Mesh a whole in-memory label volume, optionally block by block (tests, small data and the
benchmark's reference): the same per-block meshing and join as the blockwise stage.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from axonseg.errors import InputError
from axonseg.mesh.block import MeshPiece, check_labels, mesh_block
from axonseg.mesh.geometry import Mesh
from axonseg.mesh.join import finish_mesh
from axonseg.mesh.params import MeshParams


def block_grid(shape: Sequence[int], block_shape: Sequence[int]) -> list[tuple[tuple[int, int], ...]]:
    """Write regions ``((z0, z1), (y0, y1), (x0, x1))`` (voxels) tiling ``shape``, C order."""
    try:
        steps = [int(b) for b in block_shape]
    except (TypeError, ValueError):
        raise InputError(f"block_shape={block_shape!r}: expected three positive integers (z y x, voxels)") from None
    if len(steps) != 3 or min(steps) < 1:
        raise InputError(f"block_shape={block_shape!r}: expected three positive integers (z y x, voxels)")
    axes = [[(start, min(start + step, int(size))) for start in range(0, int(size), step)]
            for size, step in zip(shape, steps)]
    return list(itertools.product(*axes))


def mesh_labels(
    labels: np.ndarray,
    voxel_size: Sequence[float],
    offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
    params: MeshParams | None = None,
    block_shape: Sequence[int] | None = None,
) -> dict[int, Mesh]:
    """One finished mesh per segment of ``labels``, meshed block by block and joined.

    Args:
        labels: label volume, zyx, integers, 0 = background.
        voxel_size: nm, zyx.
        offset_nm: world position of voxel ``(0, 0, 0)``'s corner (nm, zyx).
        params: simplification and smoothing.
        block_shape: write-block shape in voxels (zyx); None meshes the volume as one block.

    Returns:
        ``{segment_id: Mesh}`` in world nm (zyx), closed at the volume border.
    """
    labels = check_labels(labels)
    params = params or MeshParams()
    shape = labels.shape
    pieces: dict[int, list[MeshPiece]] = defaultdict(list)
    for region in block_grid(shape, block_shape or shape):
        read = tuple(slice(begin, min(end + 1, size)) for (begin, end), size in zip(region, shape))
        closed = (tuple(begin == 0 for begin, _ in region), tuple(end == size for (_, end), size in zip(region, shape)))
        block = mesh_block(labels[read], voxel_size, offset_nm, [begin for begin, _ in region], params, closed)
        for segment_id, piece in block.items():
            pieces[segment_id].append(piece)
    return {segment_id: finish_mesh(pieces[segment_id], voxel_size, params) for segment_id in sorted(pieces)}
