"""Open any supported array as a lazy :class:`Volume` with voxel size and offset in nm (zyx)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

import dask.array as da
import numpy as np

from axonseg.errors import InputError
from axonseg.io.address import Address, parse_address
from axonseg.io.ome import level_geometry, read_multiscales
from axonseg.io.volume import Volume, check_voxel_size

logger = logging.getLogger(__name__)

#: AxonEM training volumes: ``im_*.h5`` / ``seg_*.h5`` with key ``main``; voxel size by species.
AXONEM_VOXEL_SIZES = {"human": (30.0, 8.0, 8.0), "mouse": (40.0, 8.0, 8.0)}
_VOXEL_KEYS = ("voxel_size", "resolution", "resolution_nm_zyx", "voxel_size_nm")


def open_volume(
    address: str | Path,
    voxel_size: Sequence[float] | None = None,
    offset: Sequence[float] | None = None,
    dataset: str | None = None,
    chunks: Sequence[int] | None = None,
) -> Volume:
    """Open an array lazily.

    Args:
        address: ``store.zarr/dataset``, ``file.h5:dataset``, a tif file or folder, a ``.npy``
            or ``store.n5/dataset``. A multiscale OME-Zarr group opens its finest level.
        voxel_size: nm, zyx; overrides the file's metadata. Required when the file has none.
        offset: nm, zyx; overrides the file's metadata (default: metadata or 0).
        dataset: the dataset inside a container, if not in ``address``.
        chunks: dask chunk shape in voxels for formats without chunks (tif, npy, h5).

    Returns:
        A :class:`Volume` whose ``data`` is a dask array (zyx or czyx).

    Raises:
        InputError: missing file or dataset, not 3D/4D, missing or invalid voxel size.
    """
    parsed = parse_address(address, dataset)
    if not parsed.path.exists():
        raise InputError(f"{parsed.path}: no such file or folder")
    opener = {"zarr": _open_zarr, "n5": _open_n5, "h5": _open_h5, "tif": _open_tif, "npy": _open_npy}
    data, meta = opener[parsed.kind](parsed, chunks)
    if data.ndim not in (3, 4):
        raise InputError(f"{parsed}: array has shape {tuple(data.shape)}: expected a 3D (z, y, x) volume")
    if meta.get("incomplete"):
        raise InputError(f"{parsed}: the array is incomplete (an interrupted write); re-run the command that made it")
    size = voxel_size if voxel_size is not None else meta.get("voxel_size")
    if size is None:
        raise InputError(f"{parsed}: voxel size is missing; pass --voxel-size Z Y X (nm)")
    checked = check_voxel_size(size, "voxel_size" if voxel_size is not None else f"voxel size of {parsed}")
    origin = offset if offset is not None else meta.get("offset", (0.0, 0.0, 0.0))
    origin = tuple(float(o) for o in origin)
    if len(origin) != 3:
        raise InputError(f"offset={list(origin)}: expected three numbers in nm (z y x)")
    attrs = dict(meta.get("attrs", {}))
    # formats without geometry (npy, tif) get offset 0; callers may align them to a partner array
    attrs["offset_in_metadata"] = offset is not None or "offset" in meta
    return Volume(data, checked, origin, str(parsed), attrs, meta.get("store_array"))  # type: ignore[arg-type]


def _default_chunks(shape: Sequence[int], chunks: Sequence[int] | None) -> tuple[int, ...]:
    spatial = tuple(chunks) if chunks is not None else (64, 64, 64)
    return tuple(shape[:-3]) + tuple(min(c, s) for c, s in zip(spatial, shape[-3:]))


def _voxel_from_attrs(attrs: dict[str, Any]) -> tuple[Any, Any]:
    size = next((attrs[k] for k in _VOXEL_KEYS if k in attrs), None)
    offset = attrs.get("offset")
    if size is not None:
        size = [float(v) for v in np.asarray(size).ravel()][-3:]
    if offset is not None:
        offset = [float(v) for v in np.asarray(offset).ravel()][-3:]
    return size, offset


def _open_zarr(address: Address, chunks: Sequence[int] | None) -> tuple[da.Array, dict[str, Any]]:
    import zarr

    try:
        node = zarr.open(store=str(address.path), path=address.dataset or None, mode="r")
    except (FileNotFoundError, KeyError, ValueError, zarr.errors.NodeTypeValidationError) as err:
        raise InputError(f"{address}: no array or group '{address.dataset}' in {address.path} ({err})") from None
    group_attrs: dict[str, Any] = {}
    level_path = None
    if isinstance(node, zarr.Group):
        multiscales = read_multiscales(dict(node.attrs))
        if multiscales is None:
            names = sorted(node.array_keys())
            raise InputError(f"{address}: is a group, not an array; expected one of its arrays: {names}")
        level_path = multiscales["datasets"][0]["path"]
        group_attrs = dict(node.attrs)
        array = node[level_path]
    else:
        array = node
        parent_path, _, level_path = (address.dataset or "").rpartition("/")
        try:
            parent = zarr.open_group(store=str(address.path), path=parent_path or None, mode="r")
            group_attrs = dict(parent.attrs)
        except Exception:  # noqa: BLE001 - a bare array without a parent group is fine
            group_attrs = {}
    attrs = dict(array.attrs)
    meta: dict[str, Any] = {"attrs": {**group_attrs.get("axonseg", {}), **attrs.get("axonseg", {})}}
    meta["incomplete"] = meta["attrs"].get("complete") is False
    multiscales = read_multiscales(group_attrs)
    geometry = level_geometry(multiscales, level_path) if multiscales and level_path else None
    if geometry is not None:
        meta["voxel_size"], meta["offset"] = geometry
    else:
        size, offset = _voxel_from_attrs(attrs)
        if size is not None:
            meta["voxel_size"] = size
        if offset is not None:
            meta["offset"] = offset
    meta["store_array"] = array
    return da.from_zarr(array), meta


def _open_n5(address: Address, chunks: Sequence[int] | None) -> tuple[da.Array, dict[str, Any]]:
    """N5 (zarr-python 3 has no N5 store) through tensorstore; N5 stores axes as xyz."""
    try:
        import tensorstore as ts
    except ImportError:
        raise InputError(f"{address}: reading N5 needs tensorstore (pip install tensorstore)") from None
    import json

    attrs_file = address.path / address.dataset / "attributes.json"
    if not attrs_file.exists():
        raise InputError(f"{address}: no N5 dataset '{address.dataset}' in {address.path}")
    attrs = json.loads(attrs_file.read_text())
    if "dimensions" not in attrs:
        raise InputError(f"{address}: is an N5 group, not a dataset")
    spec = {"driver": "n5", "kvstore": {"driver": "file", "path": str(address.path / address.dataset)}}
    store = ts.open(spec, read=True).result()
    ndim = store.rank
    # tensorstore indexes N5 in its stored (xyz) order; transpose lazily to zyx.
    zyx = store.transpose(list(range(ndim))[::-1]) if hasattr(store, "transpose") else store.T
    data = da.from_array(_TensorstoreArray(zyx), chunks=_default_chunks(zyx.shape, chunks or attrs.get("blockSize", [64] * 3)[::-1]))
    meta: dict[str, Any] = {"attrs": {}}
    size = attrs.get("resolution") or attrs.get("pixelResolution", {}).get("dimensions")
    if size is not None:
        meta["voxel_size"] = [float(v) for v in size][::-1]
    if "offset" in attrs:
        meta["offset"] = [float(v) for v in attrs["offset"]][::-1]
    return data, meta


class _TensorstoreArray:
    """The numpy-style read interface dask needs over a tensorstore handle."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.shape = tuple(int(s) for s in store.shape)
        self.dtype = np.dtype(store.dtype.numpy_dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self._store[key].read().result())


def _axonem_voxel_size(path: Path) -> tuple[float, float, float] | None:
    """AxonEM layout: ``im_*.h5`` or ``seg_*.h5``; species from the path (human 30x8x8, mouse 40x8x8)."""
    if not re.match(r"^(im|seg)_.*\.h5$", path.name, flags=re.IGNORECASE):
        return None
    text = str(path).lower()
    if "human" in text or re.search(r"(^|[-_/])h([-_/]|$)", text):
        return AXONEM_VOXEL_SIZES["human"]
    if "mouse" in text or re.search(r"(^|[-_/])m([-_/]|$)", text):
        return AXONEM_VOXEL_SIZES["mouse"]
    return None


def _open_h5(address: Address, chunks: Sequence[int] | None) -> tuple[da.Array, dict[str, Any]]:
    import h5py

    try:
        handle = h5py.File(address.path, "r")
    except OSError as err:
        raise InputError(f"{address.path}: cannot be read as HDF5 ({err})") from None
    key = address.dataset
    if not key:
        names: list[str] = []
        handle.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        if "main" in names:
            key = "main"
        elif len(names) == 1:
            key = names[0]
        else:
            raise InputError(f"{address.path}: name a dataset as file.h5:DATASET; it holds {names}")
    if key not in handle or not isinstance(handle[key], h5py.Dataset):
        raise InputError(f"{address.path}: no dataset '{key}' in the file")
    dataset = handle[key]
    lazy = _H5Array(address.path, key, dataset.shape, dataset.dtype)
    data = da.from_array(lazy, chunks=_default_chunks(dataset.shape, dataset.chunks[-3:] if dataset.chunks and chunks is None else chunks))
    meta: dict[str, Any] = {"attrs": {}, "store_array": lazy}
    size, offset = _voxel_from_attrs({**dict(handle.attrs), **dict(dataset.attrs)})
    if size is None:
        size = _axonem_voxel_size(address.path)
        if size is not None:
            logger.info("%s: AxonEM layout, voxel size %s nm (zyx) from the file name", address, size)
    if size is not None:
        meta["voxel_size"] = size
    if offset is not None:
        meta["offset"] = offset
    return data, meta


class _H5Array:
    """Read access to one h5 dataset that pickles as (path, key), so process workers can use it.

    The file is opened on first read in each process and kept open for later reads.
    """

    def __init__(self, path: Path, key: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.key = Path(path), key
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)
        self._dataset: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dataset": None}

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._dataset is None:
            import h5py

            self._dataset = h5py.File(self.path, "r")[self.key]
        return self._dataset[key]


def _open_tif(address: Address, chunks: Sequence[int] | None) -> tuple[da.Array, dict[str, Any]]:
    import tifffile

    if address.path.is_file():
        data = tifffile.memmap(address.path, mode="r") if _tif_is_memmappable(address.path) else tifffile.imread(address.path)
        return da.from_array(data, chunks=_default_chunks(data.shape, chunks)), {"attrs": {}}
    files = sorted(p for p in address.path.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
    if not files:
        raise InputError(f"{address.path}: folder holds no .tif slices")
    shapes = []
    for file in files:
        with tifffile.TiffFile(file) as tif:
            page = tif.pages[0]
            shapes.append((tuple(page.shape), np.dtype(page.dtype)))
    first_shape, first_dtype = shapes[0]
    for file, (shape, dtype) in zip(files, shapes):
        if shape != first_shape or dtype != first_dtype:
            raise InputError(
                f"{file}: slice has shape {shape} {dtype}, but {files[0].name} has {first_shape} {first_dtype}; "
                "every slice of a tif stack must match"
            )
    if len(first_shape) != 2:
        raise InputError(f"{files[0]}: slice has shape {first_shape}: expected 2D slices (y, x)")
    from dask import delayed

    slices = [da.from_delayed(delayed(tifffile.imread)(f), shape=first_shape, dtype=first_dtype) for f in files]
    stack = da.stack(slices, axis=0)
    return stack.rechunk(_default_chunks(stack.shape, chunks)), {"attrs": {}}


def _tif_is_memmappable(path: Path) -> bool:
    import tifffile

    try:
        tifffile.memmap(path, mode="r")
        return True
    except ValueError:
        return False


def _open_npy(address: Address, chunks: Sequence[int] | None) -> tuple[da.Array, dict[str, Any]]:
    try:
        data = np.load(address.path, mmap_mode="r")
    except ValueError as err:
        raise InputError(f"{address.path}: not a readable .npy file ({err})") from None
    return da.from_array(data, chunks=_default_chunks(data.shape, chunks)), {"attrs": {}, "store_array": data}
