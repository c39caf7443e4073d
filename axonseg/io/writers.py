"""Create zarr v3 multiscale arrays with OME-Zarr (NGFF 0.5) metadata, and write blocks into them.

Chunk writes are atomic: zarr's LocalStore writes each chunk to a temporary file and renames
it into place, so a killed writer leaves either the old or the new chunk, never a torn one.
An array group carries ``axonseg.complete``; it is False until the writer calls
:func:`mark_complete`, and readers refuse an incomplete array.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import zarr
from zarr.codecs import ZstdCodec

from axonseg.errors import OutputExistsError
from axonseg.io.ome import multiscales_attrs

Triple = tuple[float, float, float]


def level_geometry_for(
    voxel_size: Sequence[float], offset: Sequence[float], factors: Sequence[Sequence[int]]
) -> list[tuple[Triple, Triple]]:
    """Voxel size and offset (nm, zyx) of each pyramid level.

    Args:
        voxel_size: finest level's voxel size (nm, zyx).
        offset: finest level's offset (nm, zyx).
        factors: per coarser level, its downsampling factor relative to the previous level.

    Returns:
        ``[(voxel_size, offset), ...]`` for s0, s1, ...; a coarse voxel's position is the
        centre of the fine voxels it summarises.
    """
    levels = [(tuple(map(float, voxel_size)), tuple(map(float, offset)))]
    for factor in factors:
        size, origin = levels[-1]
        new_size = tuple(s * f for s, f in zip(size, factor))
        new_origin = tuple(o + (f - 1) * s / 2 for o, s, f in zip(origin, size, factor))
        levels.append((new_size, new_origin))
    return levels  # type: ignore[return-value]


def level_shapes(shape: Sequence[int], factors: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """Spatial shapes (voxels, zyx) of s0, s1, ...; each coarser level rounds up."""
    shapes = [tuple(int(s) for s in shape)]
    for factor in factors:
        shapes.append(tuple(-(-s // f) for s, f in zip(shapes[-1], factor)))
    return shapes


def group_exists(store: Path, name: str) -> bool:
    return (Path(store) / name / "zarr.json").exists()


def group_state(store: Path, name: str) -> dict[str, Any] | None:
    """The ``axonseg`` attrs of ``store/name`` (``complete``, ``config_hash``, ...), or None
    when the group does not exist."""
    return group_attrs(store, name) if group_exists(store, name) else None


def create_multiscale(
    store: Path,
    name: str,
    shape: Sequence[int],
    dtype: Any,
    voxel_size: Sequence[float],
    offset: Sequence[float] = (0.0, 0.0, 0.0),
    chunk_shape: Sequence[int] = (64, 64, 64),
    factors: Sequence[Sequence[int]] = (),
    channels: int | None = None,
    downsampling: str = "mean",
    attrs: dict[str, Any] | None = None,
    overwrite: bool = False,
    zstd_level: int | None = None,
) -> zarr.Group:
    """Create ``store/name`` as an OME-Zarr multiscale group with arrays ``s0..sN``.

    Args:
        store: the ``.zarr`` folder (created if missing, as a zarr v3 group).
        name: the image's group name, e.g. ``raw``.
        shape: spatial shape of s0 in voxels (zyx).
        dtype: the array dtype.
        voxel_size: s0 voxel size in nm (zyx).
        offset: s0 offset in nm (zyx).
        chunk_shape: spatial chunk shape in voxels (zyx), clamped to each level's shape.
        factors: downsampling factor per coarser level (zyx), e.g. ``[(1, 2, 2), (2, 2, 2)]``.
        channels: number of channels for a ``czyx`` array (e.g. affinities); None for zyx.
        downsampling: how coarser levels are made, recorded in the metadata.
        attrs: extra ``axonseg`` attributes (for example the config and its hash).
        overwrite: replace an existing group; otherwise an existing one is an error.
        zstd_level: the chunks' zstd level; None: zarr's default (zstd at its default level).

    Returns:
        The group, marked incomplete until :func:`mark_complete`.
    """
    store = Path(store)
    if group_exists(store, name):
        if not overwrite:
            raise OutputExistsError(f"{store / name} exists already; pass --overwrite to replace it")
        shutil.rmtree(store / name)
    root = zarr.open_group(store=str(store), mode="a", zarr_format=3)
    group = root.create_group(name, overwrite=True)
    geometry = level_geometry_for(voxel_size, offset, factors)
    lead = (channels,) if channels is not None else ()
    for level, (level_shape, _) in enumerate(zip(level_shapes(shape, factors), geometry)):
        chunks = lead + tuple(min(c, s) for c, s in zip(chunk_shape, level_shape))
        group.create_array(
            f"s{level}",
            shape=lead + tuple(level_shape),
            chunks=chunks,
            dtype=dtype,
            fill_value=0,
            dimension_names=(["c"] if channels is not None else []) + ["z", "y", "x"],
            **({"compressors": [ZstdCodec(level=zstd_level)]} if zstd_level is not None else {}),
        )
    ndim = 4 if channels is not None else 3
    levels = [(f"s{i}", size, origin) for i, (size, origin) in enumerate(geometry)]
    group.attrs.update(
        {
            "ome": multiscales_attrs(name, ndim, levels, downsampling),
            "axonseg": {"complete": False, **(attrs or {})},
        }
    )
    return group


def open_level(store: Path, name: str, level: int = 0, mode: str = "r+") -> zarr.Array:
    """The array of pyramid level ``level`` of ``store/name``."""
    return zarr.open_array(store=str(store), path=f"{name}/s{level}", mode=mode)


def write_block(array: zarr.Array, data: np.ndarray, offset: Sequence[int]) -> None:
    """Write ``data`` (zyx or czyx) at spatial ``offset`` (voxels, zyx) of ``array``."""
    lead = (slice(None),) * (array.ndim - 3)
    region = tuple(slice(o, o + s) for o, s in zip(offset, data.shape[-3:]))
    array[lead + region] = data


def group_attrs(store: Path, name: str) -> dict[str, Any]:
    """The ``axonseg`` attributes of ``store/name``."""
    return dict(zarr.open_group(store=str(store), path=name, mode="r").attrs).get("axonseg", {})


def mark_complete(store: Path, name: str, **extra: Any) -> None:
    """Flag ``store/name`` as completely written; readers refuse it before this."""
    group = zarr.open_group(store=str(store), path=name, mode="r+")
    info = dict(group.attrs.get("axonseg", {}))
    info.update(extra)
    info["complete"] = True
    group.attrs["axonseg"] = info


def write_array(store: Path, name: str, data: np.ndarray, voxel_size: Sequence[float],
                offset: Sequence[float] = (0.0, 0.0, 0.0), attrs: dict[str, Any] | None = None) -> str:
    """Write ``data`` (zyx, or czyx such as affinities; voxel size and offset in nm) whole as a
    complete one-level OME-Zarr group, with extra ``axonseg`` ``attrs`` (e.g. affinity offsets).

    For small in-memory volumes (crops, held-out slabs); chunks are at most 128 voxels per axis.
    Returns the array's address, ``store/name``.
    """
    shape = data.shape[-3:]
    chunks = tuple(min(s, 128) for s in shape)
    create_multiscale(store, name, shape, data.dtype, tuple(voxel_size), tuple(offset), chunks,
                      channels=data.shape[0] if data.ndim == 4 else None, attrs=attrs)
    write_block(open_level(store, name), data, (0, 0, 0))
    mark_complete(store, name)
    return f"{store}/{name}"
