"""A lazy 3D array that knows where it sits in the world: voxel size and offset in nm, zyx."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np

from axonseg.errors import AxonsegError, InputError
from axonseg.io.border import Border, read_with_border
from axonseg.io.damaged import damaged_chunk_error
from axonseg.io.roi import Roi

Triple = tuple[float, float, float]


def check_voxel_size(voxel_size: Any, what: str = "voxel_size") -> Triple:
    """Return ``voxel_size`` as a float zyx triple in nm, or raise naming ``what``.

    Args:
        voxel_size: three positive numbers (nm, zyx).
        what: the parameter name used in the error message.
    """
    if voxel_size is None:
        raise InputError(f"{what} is missing: expected three positive numbers in nm (z y x)")
    try:
        values = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise InputError(f"{what}={voxel_size!r}: expected three positive numbers in nm (z y x)") from None
    if len(values) != 3:
        raise InputError(f"{what}={list(values)} has {len(values)} values: expected three (z y x, nm)")
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(f"{what}={list(values)}: every value must be a positive number of nm")
    return values  # type: ignore[return-value]


@dataclass
class Volume:
    """A 3D (or channel + 3D) lazy array with its world geometry.

    Attributes:
        data: dask array, axis order ``zyx`` or ``czyx`` (channels first).
        voxel_size: voxel size in nm, zyx.
        offset: world position of voxel (0, 0, 0) in nm, zyx.
        source: where the data came from (path and dataset), for messages.
        attrs: free-form metadata read with the array (for example affinity offsets).
        store_array: the array-like under ``data`` (zarr array, h5 dataset, memmap), for
            direct reads of small regions without building a dask graph; None for
            computed arrays.
    """

    data: da.Array
    voxel_size: Triple
    offset: Triple = (0.0, 0.0, 0.0)
    source: str = "<memory>"
    attrs: dict[str, Any] = field(default_factory=dict)
    store_array: Any = field(default=None, repr=False, compare=False)

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """The voxels at ``region`` (slices over all axes, or the last three) as numpy.

        Reads the store directly when it can: for one block a dask graph costs more than the read.
        """
        if len(region) < self.data.ndim:
            region = (slice(None),) * (self.data.ndim - len(region)) + tuple(region)
        if self.store_array is not None:
            try:
                block = np.asarray(self.store_array[region])
            except (MemoryError, OSError, AxonsegError):
                raise
            except Exception as err:  # a codec error names no file: find and name the damaged chunk
                damaged = damaged_chunk_error(self.store_array, region, err, self.source)
                if damaged is None:
                    raise
                raise damaged from err
            # memmap slices are read-only views; callers (fastremap, in-place ops) need a copy
            return block if block.flags.writeable else block.copy()
        return np.asarray(self.data[region].compute(scheduler="synchronous"))

    def read_roi(self, roi: Roi, border: Border = "clip") -> np.ndarray:
        """The voxels of ``roi`` (voxels, zyx, relative to voxel 0; may reach outside the
        volume), filled outside by ``border`` (``clip`` returns only the part inside)."""
        values, _ = read_with_border(lambda inside: self.read(inside.to_slices()), roi, self.spatial_shape, border)
        return values

    def roi_of(self, begin_nm: Sequence[float], end_nm: Sequence[float]) -> Roi:
        """The voxel ROI of a world box ``[begin_nm, end_nm)`` (nm, zyx).

        Raises:
            InputError: the box does not lie on this volume's voxel grid (within 1% of a voxel).
        """
        size = np.asarray(self.voxel_size, dtype=np.float64)
        begin = (np.asarray(begin_nm, dtype=np.float64) - np.asarray(self.offset)) / size
        end = (np.asarray(end_nm, dtype=np.float64) - np.asarray(self.offset)) / size
        for name, value in (("begin", begin), ("end", end)):
            if np.abs(value - np.round(value)).max() > 0.01:
                raise InputError(
                    f"{self.source}: world {name} {list(map(float, begin_nm if name == 'begin' else end_nm))} nm "
                    f"is not on the voxel grid (voxel size {list(self.voxel_size)} nm, offset {list(self.offset)} nm)"
                )
        start = np.round(begin).astype(int)
        return Roi.of(start, np.round(end).astype(int) - start)

    def read_nm(self, begin_nm: Sequence[float], end_nm: Sequence[float], border: Border = "zero") -> np.ndarray:
        """The voxels of the world box ``[begin_nm, end_nm)`` (nm, zyx), filled outside the volume
        by ``border`` (``zero``, ``mirror`` or ``clip``): nobody converts nm to voxels by hand."""
        return self.read_roi(self.roi_of(begin_nm, end_nm), border)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape in voxels (``zyx`` or ``czyx``)."""
        return tuple(int(s) for s in self.data.shape)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The last three axes' shape in voxels (zyx)."""
        return tuple(int(s) for s in self.data.shape[-3:])  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def extent_nm(self) -> Triple:
        """Size of the volume in nm, zyx."""
        return tuple(s * v for s, v in zip(self.spatial_shape, self.voxel_size))  # type: ignore[return-value]

    def to_voxel(self, points_nm: np.ndarray) -> np.ndarray:
        """Convert world points ``(N, 3)`` in nm (zyx) into integer voxel indices of this array."""
        points = np.asarray(points_nm, dtype=np.float64)
        return np.floor((points - np.asarray(self.offset)) / np.asarray(self.voxel_size)).astype(np.int64)


def check_labels(labels: np.ndarray, what: str = "labels") -> np.ndarray:
    """``labels`` if it is a 3D non-negative integer numpy array (zyx, 0 = background), else an
    InputError naming ``what`` (the skeleton and mesh algorithms take their blocks through this)."""
    if not isinstance(labels, np.ndarray):
        raise InputError(f"{what} is a {type(labels).__name__}: expected a numpy array (z y x)")
    if labels.ndim != 3:
        raise InputError(f"{what} has {labels.ndim} dimensions (shape {labels.shape}): expected 3 (z y x)")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{what} has dtype {labels.dtype}: expected an integer dtype")
    if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
        raise InputError(f"{what} has negative values: expected labels >= 0 (0 = background)")
    return labels
