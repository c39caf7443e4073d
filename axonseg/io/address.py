"""Parse an array address (``store.zarr/dataset``, ``file.h5:dataset``, tif, npy, n5) into parts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from axonseg.errors import InputError

Kind = Literal["zarr", "n5", "h5", "tif", "npy"]

_H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
_TIF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class Address:
    """Where an array lives.

    Attributes:
        kind: storage format.
        path: the file, folder or store root on disk.
        dataset: the array's path inside the container ("" for a plain file).
    """

    kind: Kind
    path: Path
    dataset: str = ""

    def __str__(self) -> str:
        if self.kind == "h5":
            return f"{self.path}:{self.dataset}" if self.dataset else str(self.path)
        return str(self.path / self.dataset) if self.dataset else str(self.path)


def _split_container(text: str, suffix: str) -> tuple[str, str] | None:
    """Split ``a/b.zarr/c/d`` at the container component that ends with ``suffix``."""
    parts = Path(text).parts
    for i, part in enumerate(parts):
        if part.lower().endswith(suffix):
            root = str(Path(*parts[: i + 1]))
            return root, "/".join(parts[i + 1 :])
    return None


def parse_address(address: str | Path, dataset: str | None = None) -> Address:
    """Turn an address into an :class:`Address`.

    Args:
        address: ``store.zarr/dataset``, ``store.n5/dataset``, ``file.h5:dataset`` (or
            ``file.h5`` with ``dataset`` given), a ``.tif`` file or a folder of tifs, or a ``.npy``.
        dataset: the dataset inside a container, when it is not part of ``address``.

    Raises:
        InputError: the format cannot be recognised.
    """
    text = str(address)
    for suffix, kind in ((".zarr", "zarr"), (".n5", "n5")):
        split = _split_container(text, suffix)
        if split is not None:
            root, inner = split
            inner = "/".join(p for p in (inner, dataset or "") if p)
            return Address(kind, Path(root), inner.strip("/"))  # type: ignore[arg-type]
    lowered = text.lower()
    for suffix in _H5_SUFFIXES:
        marker = suffix + ":"
        if marker in lowered:
            cut = lowered.index(marker) + len(suffix)
            return Address("h5", Path(text[:cut]), (dataset or text[cut + 1 :]).strip("/"))
        if lowered.endswith(suffix):
            return Address("h5", Path(text), (dataset or "").strip("/"))
    if lowered.endswith(_TIF_SUFFIXES):
        return Address("tif", Path(text))
    if lowered.endswith(".npy"):
        return Address("npy", Path(text))
    path = Path(text)
    if path.is_dir():
        if any(p.suffix.lower() in _TIF_SUFFIXES for p in path.iterdir()):
            return Address("tif", path)
        if (path / "zarr.json").exists() or (path / ".zarray").exists() or (path / ".zgroup").exists():
            return Address("zarr", path, (dataset or "").strip("/"))
        if (path / "attributes.json").exists():
            return Address("n5", path, (dataset or "").strip("/"))
    if not path.exists():
        raise InputError(f"{text}: no such file or folder")
    raise InputError(
        f"{text}: unrecognised array address; expected store.zarr/dataset, file.h5:dataset, "
        "a .tif file or folder of tifs, a .npy file or store.n5/dataset"
    )
