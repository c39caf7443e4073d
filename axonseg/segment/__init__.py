"""Segmentation algorithms: watershed fragments, region graph, agglomeration, LUTs and relabelling.

Pure numpy-in, numpy-out functions; blocks, files and dask live in axonseg.blockwise/pipelines.
"""

from axonseg.segment.affinities import NEAREST_NEIGHBOUR_OFFSETS, check_affinities
from axonseg.segment.agglomerate import ThresholdLut, agglomerate
from axonseg.segment.fragments import boundary_map, watershed_fragments
from axonseg.segment.graph_tables import graph_from_tables, graph_to_tables
from axonseg.segment.lut import Lut, apply_lut
from axonseg.segment.mutex import mutex_watershed
from axonseg.segment.region_graph import RegionGraph, block_region_graph, empty_graph, merge_block_graphs
from axonseg.segment.relabel import relabel
from axonseg.segment.scores import edge_scores

__all__ = [
    "NEAREST_NEIGHBOUR_OFFSETS",
    "Lut",
    "RegionGraph",
    "ThresholdLut",
    "agglomerate",
    "apply_lut",
    "block_region_graph",
    "boundary_map",
    "check_affinities",
    "edge_scores",
    "empty_graph",
    "graph_from_tables",
    "graph_to_tables",
    "merge_block_graphs",
    "mutex_watershed",
    "relabel",
    "watershed_fragments",
]
