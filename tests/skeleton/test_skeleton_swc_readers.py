"""Our SWC files loaded by the tools people use: MorphIO, NeuroM and navis read µm and axon types.

Each test writes SWC with :func:`to_swc` and checks the coordinates the outside reader reports
against our nm / 1000, plus the warnings it raises.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from axonseg.skeleton import AxonGraph, skeletonize, to_swc
from axonseg.skeleton.swc import SWC_AXON, SWC_SOMA


def _y_graph(radii=(5, 6, 7, 8, 9)) -> AxonGraph:
    """A Y: stem 0-1-2 along z (100 nm steps), branches 2-3 (+y 30 nm) and 2-4 (+x 40 nm)."""
    nodes = [[0, 0, 0], [100, 0, 0], [200, 0, 0], [200, 30, 0], [200, 0, 40]]
    return AxonGraph(11, nodes, [[0, 1], [1, 2], [2, 3], [2, 4]], list(radii))


def _real_graph() -> AxonGraph:
    labels = np.zeros((16, 40, 40), np.uint32)
    labels[2:14, 10:16, 5:35] = 4
    labels[8:12, 14:36, 18:24] = 4  # a side branch
    return skeletonize(labels, (30.0, 8.0, 8.0))[4]


def _write(tmp_path, graph: AxonGraph, name: str = "a.swc"):
    path = tmp_path / name
    path.write_text(to_swc(graph))
    return path


def _morphio_load(path):
    morphio = pytest.importorskip("morphio")
    collector = morphio.WarningHandlerCollector()
    morphology = morphio.Morphology(str(path), warning_handler=collector)
    return morphology, sorted({type(e.warning).__name__ for e in collector.get_all()})


def _xyz_um(graph: AxonGraph) -> np.ndarray:
    return graph.nodes_nm[:, ::-1] / 1000.0


def _sorted_rows(points: np.ndarray) -> np.ndarray:
    unique = np.unique(np.round(points, 6), axis=0)
    return unique[np.lexsort(unique.T[::-1])]


def test_morphio_reads_micrometres_and_axon_type(tmp_path):
    graph = _y_graph()
    morphology, warned = _morphio_load(_write(tmp_path, graph))
    # MorphIO repeats a branch point at the start of each child section: compare the point sets
    np.testing.assert_allclose(_sorted_rows(morphology.points), _sorted_rows(_xyz_um(graph)), atol=1e-6)
    assert morphology.points[:, 2].max() == pytest.approx(0.2)  # 200 nm is 0.2 µm, not 200 µm
    np.testing.assert_allclose(sorted(set(np.round(morphology.diameters, 6))), [0.010, 0.012, 0.014, 0.016, 0.018])
    assert {int(t) for t in morphology.section_types} == {SWC_AXON}  # no type 0 (undefined)
    # A soma-less axon piece: MorphIO says so, and nothing else (no type or unit warnings)
    assert warned == ["DisconnectedNeurite", "NoSomaFound"]


def test_morphio_and_neurom_read_a_thick_node_as_the_soma(tmp_path):
    neurom = pytest.importorskip("neurom")
    graph = _y_graph(radii=(5, 1600, 7, 8, 9))  # node 1 (z = 100 nm) is soma-thick
    path = _write(tmp_path, graph)
    rows = np.loadtxt(path, comments="#")
    assert rows[0, 1] == SWC_SOMA and rows[0, 6] == -1 and np.sum(rows[:, 1] == SWC_SOMA) == 1
    morphology, warned = _morphio_load(path)
    assert warned == []  # one tree hanging off a soma: a clean file
    np.testing.assert_allclose(morphology.soma.points, [[0, 0, 0.1]])
    loaded = neurom.load_morphology(path)
    assert loaded.soma.radius == pytest.approx(1.6)
    np.testing.assert_allclose(loaded.soma.center, [0, 0, 0.1])
    assert [n.type for n in loaded.neurites] == [neurom.NeuriteType.axon] * 2


def test_neurom_length_is_our_path_length_in_um(tmp_path):
    neurom = pytest.importorskip("neurom")
    graph = _real_graph()
    assert graph.n_nodes > 10 and graph.radii_nm.max() < 1500  # no soma: every edge is in a neurite
    loaded = neurom.load_morphology(_write(tmp_path, graph))
    assert neurom.features.get("total_length", loaded) == pytest.approx(graph.path_length_nm / 1000.0, rel=1e-5)
    # the box of the points in µm is our box in nm / 1000
    np.testing.assert_allclose(loaded.points[:, :3].min(axis=0), _xyz_um(graph).min(axis=0), atol=1e-6)
    np.testing.assert_allclose(loaded.points[:, :3].max(axis=0), _xyz_um(graph).max(axis=0), atol=1e-6)


def test_navis_reads_micrometer_units_and_cable_length(tmp_path):
    navis = pytest.importorskip("navis")
    graph = _real_graph()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        neuron = navis.read_swc(str(_write(tmp_path, graph)))
    assert str(neuron.units) == "1 micrometer"  # from the '# Meta:' header; not dimensionless
    assert neuron.id == 4 and neuron.n_nodes == graph.n_nodes
    assert float(neuron.cable_length) == pytest.approx(graph.path_length_nm / 1000.0, rel=1e-5)
    nodes = neuron.nodes.sort_values("node_id")
    np.testing.assert_allclose(nodes[["x", "y", "z"]].max().to_numpy(), _xyz_um(graph).max(axis=0), atol=1e-5)
    assert set(nodes["label"]) == {SWC_AXON}
    assert not [w for w in caught if "unit" in str(w.message).lower()]
