"""Roots and path lengths along presynaptic skeletons, and delays in ms."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.connectome import RootRule, choose_roots, delays_ms, path_lengths_from_roots, synapse_path_lengths
from axonseg.errors import InputError
from axonseg.skeleton import AxonGraph

BOX = RootRule((0.0, 0.0, 0.0), (1000.0, 10000.0, 10000.0), (30.0, 30.0, 30.0))


def line(segment_id=1, n=11, step=1000.0, radii=None, y=500.0):
    """A straight skeleton along x at z=500, from x=0 (on the volume face) to x=(n-1)*step."""
    nodes = np.column_stack([np.full(n, 500.0), np.full(n, y), np.arange(n) * step])
    edges = np.column_stack([np.arange(n - 1), np.arange(1, n)])
    return AxonGraph(segment_id, nodes, edges, np.full(n, 50.0) if radii is None else radii)


def test_boundary_endpoint_with_largest_radius_is_the_root():
    radii = np.full(11, 50.0)
    radii[10] = 80.0  # the far end (x = 10000 nm, on the face) is thicker
    roots, methods = choose_roots(line(radii=radii), BOX)
    assert roots.tolist() == [10] and methods == ["boundary_endpoint"]
    lengths = path_lengths_from_roots(line(radii=radii), roots)
    np.testing.assert_allclose(lengths, (10 - np.arange(11)) * 1000.0)


def test_soma_then_point_rules():
    radii = np.full(11, 50.0)
    radii[4] = 2000.0
    roots, methods = choose_roots(line(radii=radii), BOX)
    assert roots.tolist() == [4] and methods == ["soma"]
    near_end = RootRule(BOX.volume_begin_nm, BOX.volume_end_nm, BOX.boundary_tolerance_nm, root_point_nm=(500, 500, 9000))
    roots, methods = choose_roots(line(), near_end)
    assert roots.tolist() == [10] and methods == ["nearest_to_point"]
    # no endpoint near a face: the thickest endpoint
    inner = line(n=5, step=1000.0, y=5000.0)
    inner.nodes_nm[:, 2] += 2000.0
    inner.radii_nm[0] = 90.0
    assert choose_roots(inner, BOX)[1] == ["largest_endpoint"] and choose_roots(inner, BOX)[0].tolist() == [0]


def test_each_piece_gets_its_own_root():
    a, b = line(n=3), line(n=3, y=4000.0)
    both = AxonGraph(1, np.concatenate([a.nodes_nm, b.nodes_nm]), np.concatenate([a.edges, b.edges + 3]),
                     np.full(6, 50.0))
    roots, _ = choose_roots(both, BOX)
    assert len(roots) == 2
    assert np.all(np.isfinite(path_lengths_from_roots(both, roots)))


def test_synapse_path_lengths_and_delays():
    radii = np.full(11, 50.0)
    radii[0] = 90.0  # root at x = 0
    graphs = {7: line(7, radii=radii)}
    points = np.array([[520.0, 510.0, 3100.0], [500.0, 500.0, 9900.0], [0.0, 0.0, 0.0]])
    result = synapse_path_lengths(graphs, np.array([7, 7, 8]), points, BOX)
    np.testing.assert_allclose(result.path_length_um[:2], [3.0, 10.0])
    assert np.isnan(result.path_length_um[2]) and result.n_without_skeleton == 1
    assert result.root_methods == {"boundary_endpoint": 1}
    # 300 um at 0.3 m/s is 1 ms; plus the 0.5 ms synaptic delay; no skeleton: synaptic delay only
    np.testing.assert_allclose(delays_ms(np.array([300.0, 0.0, np.nan])), [1.5, 0.5, 0.5])
    np.testing.assert_allclose(delays_ms(np.array([300.0]), 1.0, 3.0), [1.1])
    with pytest.raises(InputError, match="conduction_velocity"):
        delays_ms(np.array([1.0]), 0.5, 0.0)
