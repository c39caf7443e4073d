"""Segmentation algorithms: watershed fragments, region graph, agglomeration, LUTs and relabelling.

Pure numpy-in, numpy-out functions; blocks, files and dask live in axonseg.blockwise/pipelines.

The names below are imported on first use (PEP 562), so that importing one submodule, e.g.
``axonseg.segment.lut`` for the ``Lut`` type, does not import every numba kernel: a process
that only reads a finished segmentation (skeletonize, mesh, the viewer) stays ~50 MB smaller.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "NEAREST_NEIGHBOUR_OFFSETS": "affinities",
    "check_affinities": "affinities",
    "ThresholdLut": "agglomeration",
    "agglomerate": "agglomeration",
    "boundary_map": "fragments",
    "watershed_fragments": "fragments",
    "graph_from_tables": "graph_tables",
    "graph_to_tables": "graph_tables",
    "Lut": "lut",
    "apply_lut": "lut",
    "mutex_watershed": "mutex",
    "RegionGraph": "region_graph",
    "block_region_graph": "region_graph",
    "empty_graph": "region_graph",
    "merge_block_graphs": "region_graph",
    "edge_scores": "scores",
}

__all__ = sorted([*_EXPORTS, "relabel"])

# A name that is also a submodule's name must be bound here: importing the submodule would
# otherwise set the package attribute to the module. relabel.py imports numpy only.
from axonseg.segment.relabel import relabel  # noqa: E402

if TYPE_CHECKING:
    from axonseg.segment.affinities import NEAREST_NEIGHBOUR_OFFSETS, check_affinities
    from axonseg.segment.agglomeration import ThresholdLut, agglomerate
    from axonseg.segment.fragments import boundary_map, watershed_fragments
    from axonseg.segment.graph_tables import graph_from_tables, graph_to_tables
    from axonseg.segment.lut import Lut, apply_lut
    from axonseg.segment.mutex import mutex_watershed
    from axonseg.segment.region_graph import RegionGraph, block_region_graph, empty_graph, merge_block_graphs
    from axonseg.segment.scores import edge_scores


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'axonseg.segment' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"axonseg.segment.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
