"""NIR files: write and read a ``nir.NIRGraph`` (HDF5, through the ``nir`` package)."""

from __future__ import annotations

from pathlib import Path

from axonseg.errors import InputError


def write_nir(path: Path, graph) -> Path:  # noqa: ANN001 (nir.NIRGraph; nir is imported lazily)
    """Write ``graph`` to ``path`` (``.nir``, HDF5, gzip)."""
    import nir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(path, graph)
    return path


def read_nir(path: Path):  # noqa: ANN201
    """Read a NIR graph file."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise InputError(f"NIR file {path}: not found; run `axonseg export RUN_DIR --format nir` first")
    return nir.read(path)
