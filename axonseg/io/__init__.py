"""Storage layer: open, create and write arrays. Nothing above this layer touches file formats."""

from axonseg.io.address import Address, parse_address
from axonseg.io.readers import AXONEM_VOXEL_SIZES, open_volume
from axonseg.io.levels import open_levels
from axonseg.io.volume import Volume, check_voxel_size
from axonseg.io.writers import (
    create_multiscale,
    group_attrs,
    group_state,
    group_exists,
    level_geometry_for,
    level_shapes,
    mark_complete,
    open_level,
    write_array,
    write_block,
)
from axonseg.io.zarr_config import limit_chunk_concurrency

limit_chunk_concurrency()  # every process that touches our arrays, dask workers included

__all__ = [
    "AXONEM_VOXEL_SIZES",
    "Address",
    "Volume",
    "check_voxel_size",
    "create_multiscale",
    "group_attrs",
    "group_state",
    "group_exists",
    "level_geometry_for",
    "level_shapes",
    "mark_complete",
    "open_level",
    "open_levels",
    "open_volume",
    "parse_address",
    "write_array",
    "write_block",
    "limit_chunk_concurrency",
]
