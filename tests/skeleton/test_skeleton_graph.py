"""Graph queries (path lengths, endpoints, nearest nodes), SWC and table round trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from axonseg.errors import InputError
from axonseg.skeleton import (
    AxonGraph,
    branch_points,
    endpoints,
    from_swc,
    from_tables,
    nearest_node,
    nearest_nodes,
    path_lengths_from,
    skeletonize,
    to_swc,
    to_tables,
)


def _y_graph() -> AxonGraph:
    """A Y: stem 0-1-2 along z (100 nm steps), branches 2-3 (+y 30 nm) and 2-4 (+x 40 nm)."""
    nodes = [[0, 0, 0], [100, 0, 0], [200, 0, 0], [200, 30, 0], [200, 0, 40]]
    return AxonGraph(11, nodes, [[0, 1], [1, 2], [2, 3], [2, 4]], [5, 6, 7, 8, 9])


def test_path_length_and_queries():
    graph = _y_graph()
    assert graph.path_length_nm == pytest.approx(270.0)
    np.testing.assert_allclose(path_lengths_from(graph, 3), [230, 130, 30, 0, 70])
    np.testing.assert_array_equal(endpoints(graph), [0, 3, 4])
    np.testing.assert_array_equal(branch_points(graph), [2])
    index, distance = nearest_node(graph, [190.0, 0.0, 35.0])
    assert index == 4 and distance == pytest.approx(np.hypot(10, 5))
    indices, distances = nearest_nodes(graph, np.array([[0, 0, 1], [120, 0, 0]]))
    np.testing.assert_array_equal(indices, [0, 1])
    np.testing.assert_allclose(distances, [1, 20])
    with pytest.raises(InputError, match="root_index"):
        path_lengths_from(graph, 5)
    with pytest.raises(InputError, match="point_nm"):
        nearest_node(graph, [1.0, 2.0])


def test_path_lengths_are_inf_across_pieces_and_networkx_matches():
    graph = AxonGraph(1, [[0, 0, 0], [0, 0, 10], [0, 0, 50]], [[0, 1]], [1, 1, 1])
    distances = path_lengths_from(graph, 0)
    assert distances[1] == pytest.approx(10) and np.isinf(distances[2])
    nxg = graph.to_networkx()
    assert nxg.graph["segment_id"] == 1 and nxg.number_of_nodes() == 3
    assert nxg.edges[0, 1]["length_nm"] == pytest.approx(10.0)
    assert nxg.nodes[2]["pos_nm"] == (0.0, 0.0, 50.0)


def test_axon_graph_validates_shapes():
    with pytest.raises(InputError, match="radii_nm"):
        AxonGraph(1, [[0, 0, 0]], np.zeros((0, 2)), [1, 2])
    with pytest.raises(InputError, match="edges"):
        AxonGraph(1, [[0, 0, 0]], [[0, 1]], [1])


def _same_graph(a: AxonGraph, b: AxonGraph, atol: float = 1e-3) -> None:
    """Equal up to node order: same positions, radii and edges between positions."""
    order_a, order_b = np.lexsort(a.nodes_nm.T[::-1]), np.lexsort(b.nodes_nm.T[::-1])
    np.testing.assert_allclose(a.nodes_nm[order_a], b.nodes_nm[order_b], atol=atol)
    np.testing.assert_allclose(a.radii_nm[order_a], b.radii_nm[order_b], atol=atol)
    rank_a, rank_b = np.argsort(order_a), np.argsort(order_b)
    edges_a = np.unique(np.sort(rank_a[a.edges], axis=1), axis=0)
    edges_b = np.unique(np.sort(rank_b[b.edges], axis=1), axis=0)
    np.testing.assert_array_equal(edges_a, edges_b)


def test_swc_is_xyz_with_parents_first_and_round_trips():
    graph = _y_graph()
    text = to_swc(graph, node_type=2)
    rows = np.loadtxt(text.splitlines(), comments="#")
    assert rows.shape == (5, 7)
    assert rows[0, 6] == -1 and np.all(rows[1:, 6] < rows[1:, 0])  # one root, parents first
    root = rows[0]
    np.testing.assert_allclose(root[2:5], [0, 0, 0])  # root is endpoint 0 (lowest index)
    # SWC is in µm: columns x y z radius hold our nm / 1000
    by_z = rows[np.argmax(rows[:, 4])]  # SWC column z holds our z
    assert by_z[4] == pytest.approx(0.2)
    tip_x = rows[np.argmax(rows[:, 2])]
    np.testing.assert_allclose(tip_x[2:6], [0.040, 0, 0.200, 0.009])  # x y z radius of node 4
    assert set(rows[:, 1]) == {2}  # every node an axon, no soma this thin
    assert "# units um" in text
    back = from_swc(text)  # back in nm
    assert back.segment_id == 11
    _same_graph(graph, back)


def test_swc_handles_forests_and_cycles():
    square = [[0, 0, 0], [0, 0, 10], [0, 10, 10], [0, 10, 0]]
    nodes = square + [[500, 0, 0], [500, 0, 10]]
    edges = [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5]]
    graph = AxonGraph(3, nodes, edges, np.ones(6))
    rows = np.loadtxt(to_swc(graph).splitlines(), comments="#")
    assert np.sum(rows[:, 6] == -1) == 2  # one root per piece
    back = from_swc(to_swc(graph))
    assert back.n_edges == 4 and back.n_components() == 2  # the cycle's closing edge is dropped
    assert back.path_length_nm == pytest.approx(40.0)


def test_swc_of_real_skeleton_round_trips():
    labels = np.zeros((16, 40, 40), np.uint32)
    labels[2:14, 10:16, 5:35] = 4
    labels[8:12, 14:36, 18:24] = 4  # a side branch
    graph = skeletonize(labels, (30.0, 8.0, 8.0))[4]
    _same_graph(graph, from_swc(to_swc(graph)))
    assert from_swc(to_swc(graph)).path_length_nm == pytest.approx(graph.path_length_nm, rel=1e-6)


def test_from_swc_reads_um_by_default_and_older_nm_files():
    # axonseg wrote nm (with a '# units nm' header) before it switched to the SWC convention, µm
    older = "# units nm, columns: index type x y z radius parent\n1 0 10 20 30 5 -1\n2 0 10 20 130 5 1\n"
    plain = "1 2 0.01 0.02 0.03 0.005 -1\n2 2 0.01 0.02 0.13 0.005 1\n"  # no header: µm
    for text in (older, plain):
        graph = from_swc(text)
        np.testing.assert_allclose(graph.nodes_nm, [[30, 20, 10], [130, 20, 10]])
        np.testing.assert_allclose(graph.radii_nm, [5, 5])
        assert graph.path_length_nm == pytest.approx(100.0)


def test_from_swc_rejects_bad_text():
    with pytest.raises(InputError, match="columns"):
        from_swc("1 0 1 2 3\n")
    with pytest.raises(InputError, match="parent 9"):
        from_swc("1 0 0 0 0 1 -1\n2 0 1 0 0 1 9\n")
    with pytest.raises(InputError, match=r"'# units furlong': expected one of"):
        from_swc("# units furlong\n1 0 0 0 0 1 -1\n")


def test_tables_round_trip_and_columns():
    graphs = {11: _y_graph(), 2**40: AxonGraph(2**40, [[1, 2, 3], [4, 5, 6]], [[0, 1]], [1, 2]), 7: AxonGraph.empty(7)}
    nodes, edges = to_tables(graphs)
    assert list(nodes.columns) == ["segment_id", "node_id", "z_nm", "y_nm", "x_nm", "radius_nm"]
    assert list(edges.columns) == ["segment_id", "u", "v", "length_nm"]
    assert len(nodes) == 7 and len(edges) == 5
    assert nodes["segment_id"].dtype == np.uint64
    assert edges.loc[edges.segment_id == 2**40, "length_nm"].item() == pytest.approx(np.sqrt(27))
    back = from_tables(nodes.sample(frac=1.0, random_state=0), edges.sample(frac=1.0, random_state=1))
    assert sorted(back) == [11, 2**40]  # an empty graph has no rows
    _same_graph(graphs[11], back[11])
    np.testing.assert_array_equal(back[11].nodes_nm, graphs[11].nodes_nm)  # node_id order kept
    _same_graph(graphs[2**40], back[2**40])


def test_from_tables_rejects_bad_tables():
    nodes, edges = to_tables([_y_graph()])
    with pytest.raises(InputError, match="radius_nm"):
        from_tables(nodes.drop(columns="radius_nm"), edges)
    broken = edges.copy()
    broken.loc[0, "v"] = 99
    with pytest.raises(InputError, match="missing"):
        from_tables(nodes, broken)
    assert from_tables(nodes.iloc[:0], edges.iloc[:0]) == {}
    assert isinstance(to_tables({})[0], pd.DataFrame) and len(to_tables({})[1]) == 0
