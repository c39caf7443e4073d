"""Skeleton tables written and read a batch of segments at a time."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from axonseg.errors import InputError
from axonseg.skeleton import AxonGraph, SkeletonStore, SkeletonTableWriter, to_tables


def _random_graphs(n_segments: int, seed: int = 0) -> dict[int, AxonGraph]:
    """Paths of 1..40 nodes with random positions (nm) and sparse, unordered ids."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(10**12, size=n_segments, replace=False)) + 1
    graphs = {}
    for segment_id in ids.tolist():
        n = int(rng.integers(1, 40))
        edges = np.column_stack([np.arange(n - 1), np.arange(1, n)]).astype(np.int64)
        graphs[segment_id] = AxonGraph(segment_id, rng.uniform(0, 5000, (n, 3)), edges,
                                       rng.uniform(20, 200, n).astype(np.float32))
    return graphs


def _same(a: AxonGraph, b: AxonGraph) -> bool:
    return (a.segment_id == b.segment_id and np.array_equal(a.nodes_nm, b.nodes_nm)
            and np.array_equal(a.edges, b.edges) and np.array_equal(a.radii_nm, b.radii_nm))


def test_batches_round_trip_and_random_access(tmp_path):
    graphs = _random_graphs(120)
    with SkeletonTableWriter(tmp_path, batch_nodes=300) as writer:
        items = list(graphs.items())
        for start in range(0, len(items), 7):  # many small writes, batches cut at 300 nodes
            writer.write(dict(items[start:start + 7]))
    total_nodes = sum(g.n_nodes for g in graphs.values())
    assert writer.n_segments == 120 and writer.n_nodes == total_nodes
    assert writer.total_length_nm == pytest.approx(sum(g.path_length_nm for g in graphs.values()))
    nodes_file, edges_file = pq.ParquetFile(tmp_path / "nodes.parquet"), pq.ParquetFile(tmp_path / "edges.parquet")
    assert nodes_file.num_row_groups == edges_file.num_row_groups > total_nodes // 340
    sizes = [nodes_file.metadata.row_group(g).num_rows for g in range(nodes_file.num_row_groups)]
    assert max(sizes[:-1]) < 300 + 40 and min(sizes[:-1]) >= 300  # a segment is never split
    assert not list(tmp_path.glob("*.tmp"))

    store = SkeletonStore(tmp_path)
    assert store.n_batches == nodes_file.num_row_groups
    assert len(store) == 120 and list(store) == list(graphs)
    ids = list(graphs)
    rng = np.random.default_rng(1)
    for segment_id in rng.permutation(ids)[:30].tolist():  # any order works, ascending reads each batch once
        assert _same(store[segment_id], graphs[segment_id])
    assert ids[0] - 1 not in store and ids[5] + 1 not in store and "x" not in store
    with pytest.raises(KeyError):
        store[ids[-1] + 1]
    batch_ids = [list(batch) for batch in store.batches()]
    assert sum(batch_ids, []) == ids and all(len(b) < 40 for b in batch_ids)


def test_writer_refuses_descending_ids_and_abort_keeps_old_tables(tmp_path):
    graphs = _random_graphs(10, seed=2)
    with SkeletonTableWriter(tmp_path) as writer:
        writer.write(graphs)
    before = (tmp_path / "nodes.parquet").read_bytes()
    ids = list(graphs)
    with pytest.raises(InputError, match="ascending"):
        with SkeletonTableWriter(tmp_path, batch_nodes=5) as writer:
            writer.write({ids[5]: graphs[ids[5]]})  # flushed: its temp file exists
            writer.write({ids[2]: graphs[ids[2]]})
    assert (tmp_path / "nodes.parquet").read_bytes() == before and not list(tmp_path.glob("*.tmp"))


def test_single_row_group_tables_and_empty_tables_read(tmp_path):
    graphs = _random_graphs(15, seed=3)
    nodes, edges = to_tables(graphs)
    nodes.to_parquet(tmp_path / "nodes.parquet", index=False)  # an older run's layout: one row group
    edges.to_parquet(tmp_path / "edges.parquet", index=False)
    store = SkeletonStore(tmp_path)
    assert store.n_batches == 1 and all(_same(store[i], g) for i, g in graphs.items())

    empty = tmp_path / "empty"
    with SkeletonTableWriter(empty) as writer:
        writer.write({})
    assert len(SkeletonStore(empty)) == 0 and list(SkeletonStore(empty)) == []
    with pytest.raises(InputError, match="missing"):
        SkeletonStore(tmp_path / "nothing")
