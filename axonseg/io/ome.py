"""Build and read OME-Zarr (NGFF 0.5) multiscale metadata: axes, scale and translation in nm."""

from __future__ import annotations

from typing import Any, Sequence

NGFF_VERSION = "0.5"


def axes_for(ndim: int) -> list[dict[str, str]]:
    """NGFF axes for a ``zyx`` (3D) or ``czyx`` (4D, channels first) array, in nanometers."""
    spatial = [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"]
    if ndim == 3:
        return spatial
    if ndim == 4:
        return [{"name": "c", "type": "channel"}, *spatial]
    raise ValueError(f"OME-Zarr axes: expected 3 or 4 dimensions, got {ndim}")


def multiscales_attrs(
    name: str,
    ndim: int,
    levels: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    downsampling: str = "mean",
) -> dict[str, Any]:
    """The ``ome`` group attribute for a multiscale image.

    Args:
        name: the image's name.
        ndim: 3 (zyx) or 4 (czyx).
        levels: per level ``(path, voxel_size_nm_zyx, offset_nm_zyx)``, finest first.
        downsampling: how coarser levels were made ("mean", "mode" or "strided").
    """
    pad = [1.0] if ndim == 4 else []
    pad_offset = [0.0] if ndim == 4 else []
    datasets = [
        {
            "path": path,
            "coordinateTransformations": [
                {"type": "scale", "scale": pad + [float(v) for v in voxel_size]},
                {"type": "translation", "translation": pad_offset + [float(o) for o in offset]},
            ],
        }
        for path, voxel_size, offset in levels
    ]
    return {
        "version": NGFF_VERSION,
        "multiscales": [
            {
                "version": NGFF_VERSION,
                "name": name,
                "axes": axes_for(ndim),
                "datasets": datasets,
                "type": downsampling,
            }
        ],
    }


def read_multiscales(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """Return the first multiscales entry of a group's attributes (NGFF 0.4 or 0.5), or None."""
    if "ome" in attrs and isinstance(attrs["ome"], dict):
        attrs = attrs["ome"]
    multiscales = attrs.get("multiscales")
    if isinstance(multiscales, list) and multiscales:
        return multiscales[0]
    return None


def level_geometry(multiscales: dict[str, Any], path: str) -> tuple[list[float], list[float]] | None:
    """Voxel size and offset (nm, zyx, spatial axes only) of the level stored at ``path``."""
    for dataset in multiscales.get("datasets", []):
        if dataset.get("path") != path:
            continue
        scale: list[float] | None = None
        translation: list[float] | None = None
        for transform in dataset.get("coordinateTransformations", []):
            if transform.get("type") == "scale":
                scale = [float(v) for v in transform["scale"]]
            elif transform.get("type") == "translation":
                translation = [float(v) for v in transform["translation"]]
        if scale is None:
            return None
        translation = translation or [0.0] * len(scale)
        return scale[-3:], translation[-3:]
    return None
