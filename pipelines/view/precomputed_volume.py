"""A volume written blockwise as a neuroglancer precomputed multiscale folder (unsharded; raw
encoding for images, compressed_segmentation for labels), through tensorstore. Each coarser
scale is downsampled from the scale before it, one block at a time, so memory stays at a block.

Our arrays are zyx; precomputed files are x, y, z (+ channel): the writer transposes each block.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from axonseg.errors import InputError

logger = logging.getLogger(__name__)

DATA_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "float32")
#: chunk shape in voxels, zyx: about 1 um in each axis at 30 x 8 x 8 nm
CHUNK_SHAPE = (32, 128, 128)
#: voxels read and written at once, zyx (a multiple of CHUNK_SHAPE): 16 MB of uint64 labels
BLOCK_SHAPE = (32, 256, 256)
MAX_SCALES = 8

Reader = Callable[[tuple[slice, ...]], np.ndarray]


@dataclass(frozen=True)
class PrecomputedVolume:
    """What :func:`write_precomputed_volume` wrote.

    Attributes:
        folder: the precomputed folder (``info`` and one folder per scale).
        kind: ``image`` or ``segmentation``.
        scales: voxel size of every scale in nm, zyx, finest first.
    """

    folder: Path
    kind: str
    scales: list[tuple[float, float, float]]


def check_data_type(dtype: Any, what: str) -> str:
    """``dtype``'s name when the precomputed format has it.

    Raises:
        InputError: it has not (naming ``what``, the array).
    """
    name = np.dtype(dtype).name
    if name not in DATA_TYPES:
        raise InputError(f"{what}: dtype {name}: expected one of {', '.join(DATA_TYPES)} for neuroglancer")
    return name


def downsample_factors(voxel_size: Sequence[float]) -> tuple[int, int, int]:
    """The next scale's factors (zyx): 2 along the axes finer than the coarsest, 2 everywhere
    when the voxels are isotropic, so the scales approach isotropic voxels."""
    coarsest = max(voxel_size)
    if all(np.isclose(v, coarsest) for v in voxel_size):
        return (2, 2, 2)
    factors = tuple(2 if v < coarsest and not np.isclose(v, coarsest) else 1 for v in voxel_size)
    return factors  # type: ignore[return-value]


def _blocks(begin: Sequence[int], end: Sequence[int], block: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    """zyx slices (absolute voxel coordinates) tiling ``[begin, end)`` with ``block``-sized pieces."""
    starts = [range(b, e, s) for b, e, s in zip(begin, end, block)]
    for corner in itertools.product(*starts):
        yield tuple(slice(c, min(c + s, e)) for c, s, e in zip(corner, block, end))


def _spec(folder: Path, kind: str, dtype: str, key: str, shape: Sequence[int], voxel_size: Sequence[float],
          voxel_offset: Sequence[int], chunk: Sequence[int]) -> dict[str, Any]:
    scale: dict[str, Any] = {
        "key": key, "size": [int(v) for v in shape[::-1]], "resolution": [float(v) for v in voxel_size[::-1]],
        "voxel_offset": [int(v) for v in voxel_offset[::-1]], "chunk_size": [int(v) for v in chunk[::-1]],
        "encoding": "compressed_segmentation" if kind == "segmentation" else "raw",
    }
    if kind == "segmentation":
        scale["compressed_segmentation_block_size"] = [8, 8, 8]
    return {"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(folder)},
            "multiscale_metadata": {"type": kind, "data_type": dtype, "num_channels": 1},
            "scale_metadata": scale, "open": True, "create": True}


def _write(store: Any, region: tuple[slice, ...], block: np.ndarray) -> None:
    z, y, x = region
    xyz = np.ascontiguousarray(block.transpose(2, 1, 0))
    store[x.start:x.stop, y.start:y.stop, z.start:z.stop, 0].write(xyz).result()


def write_precomputed_volume(folder: str | Path, read: Reader, shape: Sequence[int], dtype: Any,
                             voxel_size: Sequence[float], voxel_offset: Sequence[int], kind: str,
                             chunk_shape: Sequence[int] = CHUNK_SHAPE, block_shape: Sequence[int] = BLOCK_SHAPE,
                             max_scales: int = MAX_SCALES, progress: Callable[[int], None] | None = None
                             ) -> PrecomputedVolume:
    """Write a volume and its coarser scales as a precomputed folder.

    Args:
        folder: the folder to write (created; an existing one is added to).
        read: returns the voxels of a zyx region (slices relative to voxel 0 of the volume).
        shape: voxels, zyx.
        dtype: one of :data:`DATA_TYPES`.
        voxel_size: nm, zyx.
        voxel_offset: the volume's first voxel in voxels, zyx (world offset / voxel size).
        kind: ``image`` (coarser scales by mean) or ``segmentation`` (by mode).
        chunk_shape: chunk shape in voxels, zyx (cut to the volume's shape).
        block_shape: voxels read and written at once, zyx (rounded up to whole chunks).
        max_scales: at most this many scales; coarsening stops once a scale fits one chunk in y-x.
        progress: called with the number of voxels after each block (all scales).

    Raises:
        InputError: ``dtype`` is not a precomputed data type.
    """
    import tensorstore as ts

    folder = Path(folder)
    dtype_name = check_data_type(dtype, folder.name)
    if kind not in ("image", "segmentation"):
        raise InputError(f"kind={kind!r}: expected image or segmentation")
    shape = tuple(int(s) for s in shape)
    chunk = tuple(min(int(c), s) for c, s in zip(chunk_shape, shape))
    block = tuple(-(-max(int(b), c) // c) * c for b, c in zip(block_shape, chunk))
    voxel = tuple(float(v) for v in voxel_size)
    offset = tuple(int(v) for v in voxel_offset)
    store = ts.open(_spec(folder, kind, dtype_name, "s0", shape, voxel, offset, chunk)).result()
    for region in _blocks(offset, tuple(o + s for o, s in zip(offset, shape)), block):
        local = tuple(slice(r.start - o, r.stop - o) for r, o in zip(region, offset))
        _write(store, region, np.asarray(read(local)).astype(dtype_name, copy=False))
        if progress is not None:
            progress(int(np.prod([r.stop - r.start for r in region])))
    scales = [voxel]
    method = "mode" if kind == "segmentation" else "mean"
    while len(scales) < max_scales and max(shape[1:]) > max(chunk[1:]):
        factors = downsample_factors(voxel)
        coarse = ts.downsample(store, [factors[2], factors[1], factors[0], 1], method)
        begin = tuple(int(v) for v in coarse.domain.origin[:3][::-1])
        end = tuple(int(v) for v in coarse.domain.exclusive_max[:3][::-1])
        shape = tuple(e - b for b, e in zip(begin, end))
        voxel = tuple(v * f for v, f in zip(voxel, factors))
        chunk = tuple(min(c, s) for c, s in zip(chunk, shape))
        store = ts.open(_spec(folder, kind, dtype_name, f"s{len(scales)}", shape, voxel, begin, chunk)).result()
        for region in _blocks(begin, end, block):
            z, y, x = region
            values = coarse[x.start:x.stop, y.start:y.stop, z.start:z.stop, 0].read().result()
            _write(store, region, np.asarray(values).transpose(2, 1, 0))
            if progress is not None:
                progress(int(np.prod([r.stop - r.start for r in region])))
        scales.append(voxel)
    logger.info("precomputed %s: %d scale(s) in %s", kind, len(scales), folder)
    return PrecomputedVolume(folder, kind, scales)
