"""RegionGraph <-> two Arrow tables (nodes, edges), the form the pipeline writes as parquet.

Histograms become list columns (sparse bins + counts per edge), so a table row is a
complete, mergeable edge. No file I/O here: the caller writes with pyarrow.parquet.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from axonseg.errors import InputError
from axonseg.segment.region_graph import RegionGraph

NODE_COLUMNS = ("id", "size", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm")
#: Prefix of the optional node columns that hold ``RegionGraph.node_sums`` (``sum_raw``, ...).
SUM_PREFIX = "sum_"
EDGE_COLUMNS = ("u", "v", "aff_sum", "count", "area_nm2", "hist_bin", "hist_count")


def graph_to_tables(graph: RegionGraph) -> tuple[pa.Table, pa.Table]:
    """Return (nodes, edges) Arrow tables with the columns NODE_COLUMNS (plus ``sum_<name>``
    for each of the graph's node sums) and EDGE_COLUMNS."""
    nodes = pa.table({
        "id": pa.array(graph.node_id, pa.uint64()),
        "size": pa.array(graph.node_size, pa.int64()),
        "centroid_z_nm": graph.node_centroid[:, 0],
        "centroid_y_nm": graph.node_centroid[:, 1],
        "centroid_x_nm": graph.node_centroid[:, 2],
        **{SUM_PREFIX + name: pa.array(values, pa.float64()) for name, values in graph.node_sums.items()},
    })
    offsets = pa.array(graph.hist_ptr.astype(np.int32 if graph.hist_ptr[-1] < 2**31 else np.int64))
    list_type = pa.ListArray if offsets.type == pa.int32() else pa.LargeListArray
    edges = pa.table({
        "u": pa.array(graph.u, pa.uint64()),
        "v": pa.array(graph.v, pa.uint64()),
        "aff_sum": pa.array(graph.aff_sum, pa.float64()),
        "count": pa.array(graph.count, pa.int64()),
        "area_nm2": pa.array(graph.area, pa.float64()),
        "hist_bin": list_type.from_arrays(offsets, pa.array(graph.hist_bin, pa.uint8())),
        "hist_count": list_type.from_arrays(offsets, pa.array(graph.hist_count, pa.uint32())),
    })
    return nodes, edges


def graph_from_tables(nodes: pa.Table, edges: pa.Table) -> RegionGraph:
    """Inverse of graph_to_tables (tables may be concatenations of several blocks)."""
    for name, table, columns in (("nodes", nodes, NODE_COLUMNS), ("edges", edges, EDGE_COLUMNS)):
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise InputError(f"{name} table lacks columns {missing}: expected {list(columns)}")

    def column(table: pa.Table, name: str) -> np.ndarray:
        return table.column(name).to_numpy()

    hist_bin = edges.column("hist_bin").combine_chunks()
    hist_count = edges.column("hist_count").combine_chunks()
    lengths = hist_bin.value_lengths().to_numpy(zero_copy_only=False)
    hist_ptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=hist_ptr[1:])
    return RegionGraph(
        node_id=column(nodes, "id").astype(np.uint64),
        node_size=column(nodes, "size").astype(np.int64),
        node_centroid=np.stack(
            [column(nodes, c) for c in NODE_COLUMNS[2:]], axis=1
        ).astype(np.float64).reshape(-1, 3),
        u=column(edges, "u").astype(np.uint64),
        v=column(edges, "v").astype(np.uint64),
        aff_sum=column(edges, "aff_sum").astype(np.float64),
        count=column(edges, "count").astype(np.int64),
        area=column(edges, "area_nm2").astype(np.float64),
        hist_ptr=hist_ptr,
        hist_bin=hist_bin.flatten().to_numpy().astype(np.uint8),
        hist_count=hist_count.flatten().to_numpy().astype(np.uint32),
        node_sums={name[len(SUM_PREFIX):]: nodes.column(name).fill_null(0.0).to_numpy().astype(np.float64)
                   for name in nodes.column_names if name.startswith(SUM_PREFIX)},
    )
