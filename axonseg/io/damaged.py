"""Name the zarr chunk a failed read could not decode: the array, the chunk key and what to run.

A truncated or corrupted chunk file fails deep inside zarr's codecs (``Zstd decompression
error``) with no file named. :func:`damaged_chunk_error` decodes the chunks of the failed region
one at a time and turns the failure into one :class:`~axonseg.errors.InputError` line.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axonseg.errors import InputError

#: At most this many chunks of a failed region are decoded one by one to find the damaged ones.
MAX_CHUNKS_CHECKED = 4096
#: Damaged chunk keys named in the message (the rest are counted).
MAX_NAMED = 3
#: A run's store and the arrays that ``axonseg segment`` writes into it (and recomputes).
RUN_STORE = "volume.zarr"
SEGMENT_OUTPUTS = ("affinities", "fragments", "segmentation")


def array_location(array: Any, fallback: str) -> str:
    """``STORE/PATH`` of a zarr array on a local store (e.g. ``RUN/volume.zarr/segmentation/s0``)."""
    root = getattr(getattr(array, "store", None), "root", None)
    path = getattr(array, "path", "")
    return str(Path(root) / path) if root is not None else fallback


def _chunk_ranges(array: Any, region: Sequence[slice]) -> list[range] | None:
    """Per axis, the storage-chunk indices ``region`` touches; None for a region that is not slices."""
    grid = getattr(array, "shards", None) or array.chunks
    ranges = []
    for item, size, step in zip(region, array.shape, grid):
        if not isinstance(item, slice):
            return None
        start, stop, stride = item.indices(size)
        if stride != 1 or stop <= start:
            return None
        ranges.append(range(start // step, (stop - 1) // step + 1))
    return ranges


def damaged_chunks(array: Any, region: Sequence[slice]) -> list[str] | None:
    """Keys (``c/0/1/2``) of the chunks of ``region`` that fail to decode on their own.

    Args:
        array: a ``zarr.Array``.
        region: one slice per axis (step 1), the read that failed.

    Returns:
        The keys of the chunks that fail, possibly empty; None when the region cannot be mapped
        to chunks (not a zarr array, a step, too many chunks to check).
    """
    encode = getattr(getattr(array, "metadata", None), "encode_chunk_key", None)
    if encode is None or len(region) != array.ndim:
        return None
    ranges = _chunk_ranges(array, region)
    if ranges is None:
        return None
    n_chunks = 1
    for axis in ranges:
        n_chunks *= len(axis)
    if n_chunks > MAX_CHUNKS_CHECKED:
        return None
    grid = getattr(array, "shards", None) or array.chunks
    bad = []
    for coords in itertools.product(*ranges):
        chunk = tuple(slice(c * s, min((c + 1) * s, n)) for c, s, n in zip(coords, grid, array.shape))
        try:
            array[chunk]
        except (MemoryError, OSError):
            raise
        except Exception:  # noqa: BLE001 - any codec failure marks this chunk as damaged
            bad.append(encode(coords))
    return bad


def recompute_hint(array: Any) -> str:
    """What brings a damaged chunk back: re-running ``segment`` for a run's own outputs (its
    block manifests notice the damaged file and recompute that block), else re-creating the array."""
    root = getattr(getattr(array, "store", None), "root", None)
    group = str(getattr(array, "path", "")).split("/")[0]
    if root is not None and Path(root).name == RUN_STORE and group in SEGMENT_OUTPUTS:
        return "re-run `axonseg segment` for this run to recompute it"
    return "restore the file, or re-create the array with the command that wrote it (e.g. `axonseg ingest`)"


def damaged_chunk_error(array: Any, region: Sequence[slice], error: BaseException, source: str,
                        hint: str | None = None) -> InputError | None:
    """One line naming the array and damaged chunk(s) of a failed read, or None if no chunk of
    ``region`` fails on its own (then the failure is something else and is raised unchanged).

    Args:
        array: the ``zarr.Array`` that was read.
        region: the slices (one per axis) of the read that failed.
        error: what the read raised.
        source: the array's address, used when the store is not a local folder.
        hint: what to run to get the chunk back; None: :func:`recompute_hint`.
    """
    keys = damaged_chunks(array, region)
    if not keys:
        return None
    named = ", ".join(keys[:MAX_NAMED]) + (f" and {len(keys) - MAX_NAMED} more" if len(keys) > MAX_NAMED else "")
    noun = "chunk" if len(keys) == 1 else "chunks"
    verb = "is" if len(keys) == 1 else "are"
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return InputError(f"{array_location(array, source)} {noun} {named} {verb} damaged ({reason}): "
                      f"{hint or recompute_hint(array)}")
