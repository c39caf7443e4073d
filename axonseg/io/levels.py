"""Open every resolution level of an image (an OME-Zarr multiscale group or one array) lazily,
each level a :class:`Volume` with its own voxel size and offset in nm (zyx)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from axonseg.errors import InputError
from axonseg.io.address import parse_address
from axonseg.io.ome import read_multiscales
from axonseg.io.readers import open_volume
from axonseg.io.volume import Volume


def _multiscale_paths(root: Path, group_path: str) -> list[str] | None:
    """The dataset paths of the multiscale group at ``root/group_path``, finest first, or None."""
    import zarr

    try:
        group = zarr.open_group(store=str(root), path=group_path or None, mode="r")
    except Exception:  # noqa: BLE001 - not a group (an array, or nothing): no levels to list
        return None
    multiscales = read_multiscales(dict(group.attrs))
    if multiscales is None:
        return None
    return [str(dataset["path"]) for dataset in multiscales.get("datasets", []) if "path" in dataset]


def _open_one(address: str | Path, voxel_size: Sequence[float] | None) -> Volume:
    """One array; ``voxel_size`` only where its file carries none (npy, tif without metadata)."""
    try:
        return open_volume(address)
    except InputError:
        if voxel_size is None:
            raise
        return open_volume(address, voxel_size=voxel_size)  # re-raises errors other than a missing size


def open_levels(address: str | Path, voxel_size: Sequence[float] | None = None) -> list[Volume]:
    """Open an image with all its resolution levels, finest first, without reading voxels.

    Args:
        address: a multiscale OME-Zarr group (``store.zarr/raw``: every level), one level of
            it (``store.zarr/raw/s0``: that level and the coarser ones), or any single array
            :func:`open_volume` takes (``file.h5:raw``, tif, npy, n5: one level).
        voxel_size: nm (zyx) for a single array whose file carries no voxel size.

    Returns:
        The levels as lazy :class:`Volume` objects; each carries the voxel size and offset (nm,
        zyx) its metadata gives, so all levels line up in world coordinates.

    Raises:
        InputError: the address is missing or unreadable (see :func:`open_volume`).
    """
    parsed = parse_address(address)
    if parsed.kind != "zarr" or not parsed.path.exists():
        return [_open_one(address, voxel_size)]
    paths = _multiscale_paths(parsed.path, parsed.dataset)
    if paths:
        group = parsed.path / parsed.dataset if parsed.dataset else parsed.path
        return [open_volume(group / path) for path in paths]
    parent, _, name = parsed.dataset.rpartition("/")
    siblings = _multiscale_paths(parsed.path, parent) if name else None
    if siblings and name in siblings:
        group = parsed.path / parent if parent else parsed.path
        return [open_volume(group / path) for path in siblings[siblings.index(name):]]
    return [_open_one(address, voxel_size)]


__all__ = ["open_levels"]
