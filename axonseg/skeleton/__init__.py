"""Skeletons of segments: kimimaro (TEASAR) graphs in nm (zyx), blockwise joining, SWC and tables.

Example::

    from axonseg.skeleton import skeletonize
    graphs = skeletonize(labels, voxel_size=(30, 8, 8))      # {segment_id: AxonGraph}
    graphs[7].path_length_nm
"""

from axonseg.skeleton.blocks import block_regions, default_context, skeletonize
from axonseg.skeleton.graph import (
    AxonGraph,
    branch_points,
    endpoints,
    nearest_node,
    nearest_nodes,
    path_lengths_from,
)
from axonseg.skeleton.join import bridge_pieces, join_skeletons, merge_graphs
from axonseg.skeleton.kimimaro_backend import (
    check_labels,
    compact_labels,
    crop_to_write_region,
    keep_owned_components,
    remove_interior_dust,
    skeletonize_block,
)
from axonseg.skeleton.params import SkeletonParams
from axonseg.skeleton.store import SkeletonStore, SkeletonTableWriter
from axonseg.skeleton.swc import from_swc, to_swc
from axonseg.skeleton.tables import EDGE_COLUMNS, NODE_COLUMNS, from_tables, to_tables

__all__ = [
    "EDGE_COLUMNS",
    "NODE_COLUMNS",
    "AxonGraph",
    "SkeletonParams",
    "SkeletonStore",
    "SkeletonTableWriter",
    "block_regions",
    "default_context",
    "branch_points",
    "bridge_pieces",
    "check_labels",
    "compact_labels",
    "crop_to_write_region",
    "endpoints",
    "from_swc",
    "from_tables",
    "join_skeletons",
    "keep_owned_components",
    "merge_graphs",
    "nearest_node",
    "nearest_nodes",
    "path_lengths_from",
    "remove_interior_dust",
    "skeletonize",
    "skeletonize_block",
    "to_swc",
    "to_tables",
]
