"""Skeletonize a whole in-memory label volume, optionally block by block (for tests and small data).

Each block reads its write region plus context, keeps the skeleton inside its write region and
one-edge stubs across it, and :func:`join_skeletons` attaches the stubs to the neighbours.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from axonseg.errors import InputError
from axonseg.io.volume import check_voxel_size
from axonseg.skeleton.graph import AxonGraph
from axonseg.skeleton.join import join_skeletons
from axonseg.skeleton.kimimaro_backend import check_labels, check_offset, skeletonize_block
from axonseg.skeleton.params import SkeletonParams


def block_regions(
    shape: Sequence[int], block_shape: Sequence[int], context: Sequence[int]
) -> list[tuple[tuple[slice, slice, slice], tuple[slice, slice, slice]]]:
    """Tile a volume into write regions and grow each by ``context`` voxels (clipped) to read.

    Args:
        shape: volume shape in voxels, zyx.
        block_shape: write-region shape in voxels, zyx.
        context: voxels of context read on each side, zyx.

    Returns:
        One ``(read_slices, write_slices)`` pair per block in C order of the block grid:
        ``read_slices`` index the volume, ``write_slices`` index the read block.
    """
    stride = _positive_triple(block_shape, "block_shape", minimum=1)
    halo = _positive_triple(context, "context", minimum=0)
    per_axis = []
    for size, step, margin in zip(shape, stride, halo):
        axis = []
        for start in range(0, int(size), step):
            stop = min(start + step, int(size))
            read = slice(max(start - margin, 0), min(stop + margin, int(size)))
            axis.append((read, slice(start - read.start, stop - read.start)))
        per_axis.append(axis)
    return [
        (tuple(r for r, _ in combo), tuple(w for _, w in combo))  # type: ignore[misc]
        for combo in itertools.product(*per_axis)
    ]


def _positive_triple(values: Sequence[int], what: str, minimum: int) -> list[int]:
    try:
        triple = [int(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(f"{what}={values!r}: expected three integers >= {minimum} (z y x, voxels)") from None
    if len(triple) != 3 or min(triple) < minimum:
        raise InputError(f"{what}={values!r}: expected three integers >= {minimum} (z y x, voxels)")
    return triple


#: Context read on each side of a block, as a fraction of TEASAR's invalidation constant ``const``.
CONTEXT_FRACTION = 0.25


def default_context(voxel_size: Sequence[float], params: SkeletonParams) -> tuple[int, int, int]:
    """Context in voxels (zyx) that lets neighbouring blocks trace the same centre line: a
    quarter of the invalidation constant (``params.const`` nm), plus one voxel.

    With ``fix_borders`` kimimaro ends a path at the centre of every cut face, so a trace near
    a face leaves the centre line only within about a process's radius of it, not within the
    invalidation radius that this rule used to read (``const``: 51 voxels per side at 10 nm).
    Measured on the FIB-SEM medulla at 10 nm (ground truth and a model segmentation, 250³,
    64x256x256 blocks; ``benchmarks/README.md``): with const/4 (13 voxels) total length and ERL
    agree with kimimaro on the whole volume as well as with const (both within kimimaro's own
    change when the volume is mirrored), for 40-50% less time; with one voxel (igneous's
    overlap) the joins fail (twice the pieces, +2.6% length).
    """
    return tuple(int(np.ceil(CONTEXT_FRACTION * params.const / v)) + 1 for v in voxel_size)  # type: ignore[return-value]


def skeletonize(
    labels: np.ndarray,
    voxel_size: Sequence[float],
    params: SkeletonParams | None = None,
    block_shape: Sequence[int] | None = None,
    offset_nm: Sequence[float] = (0.0, 0.0, 0.0),
    context: Sequence[int] | None = None,
) -> dict[int, AxonGraph]:
    """Skeletonize every segment of a label volume held in memory.

    Args:
        labels: label volume, zyx, integer dtype, 0 = background.
        voxel_size: voxel size in nm, zyx.
        params: kimimaro settings; ``None`` gives the AxonEM defaults.
        block_shape: if given, skeletonize write regions of this shape (voxels, zyx), each
            read with ``context`` and cropped, then join them, as the blockwise pipeline does;
            ``None``: one kimimaro call over the whole volume.
        offset_nm: world position in nm (zyx) of the corner of voxel (0, 0, 0).
        context: voxels (zyx) of context per side for blockwise runs; ``None``:
            :func:`default_context`.

    Returns:
        ``{segment_id: AxonGraph}`` in world nm (zyx), sorted by segment id.
    """
    labels = check_labels(labels)
    voxel = check_voxel_size(voxel_size, "voxel_size")
    offset = check_offset(offset_nm)
    params = params or SkeletonParams()
    if block_shape is None:
        graphs = skeletonize_block(labels, voxel, offset, params)
        return dict(sorted(graphs.items()))
    context = default_context(voxel, params) if context is None else context
    per_block = []
    for read, write in block_regions(labels.shape, block_shape, context):
        block_offset = offset + np.array([s.start for s in read]) * np.asarray(voxel)
        per_block.append(skeletonize_block(labels[read], voxel, block_offset, params, write_slices=write))
    diagonal = float(np.linalg.norm(voxel))
    return join_skeletons(per_block, attach_distance_nm=2 * diagonal, bridge_distance_nm=diagonal)
