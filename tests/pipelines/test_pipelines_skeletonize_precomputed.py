"""A run's skeleton tables -> neuroglancer precomputed skeletons (nm, radius attribute), round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.io.precomputed import read_skeleton
from axonseg.pipelines.skeletonize.blocks import write_skeletons
from axonseg.pipelines.skeletonize.precomputed import write_precomputed_skeletons
from axonseg.skeleton import AxonGraph


def test_run_skeletons_round_trip_through_precomputed(tmp_path):
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    graphs = {
        3: AxonGraph(3, rng.uniform(0, 5000, (5, 3)), [[0, 1], [1, 2], [2, 3], [1, 4]], rng.uniform(20, 90, 5)),
        2**40 + 1: AxonGraph(2**40 + 1, [[30.0, 8.0, 8.0], [60.0, 8.0, 16.0]], [[0, 1]], [40.0, 41.5]),
        9: AxonGraph.empty(9),  # too small to skeletonize: no file
    }
    write_skeletons(graphs, run / "skeletons", swc=False)
    result = write_precomputed_skeletons(run)
    assert result.folder == run / "skeletons" / "precomputed" and result.n_segments == 2
    assert sorted(p.name for p in result.folder.iterdir()) == sorted(["info", "3", str(2**40 + 1)])
    info = json.loads((result.folder / "info").read_text())
    assert info["@type"] == "neuroglancer_skeletons" and info["vertex_attributes"][0]["id"] == "radius"
    for segment_id in (3, 2**40 + 1):
        nodes, edges, radii = read_skeleton(result.folder, segment_id)
        graph = graphs[segment_id]
        assert np.allclose(nodes, graph.nodes_nm, atol=1e-3)  # float32 nm, zyx again
        assert np.array_equal(np.sort(edges, axis=1), np.sort(graph.edges, axis=1))
        assert np.allclose(radii, graph.radii_nm)
    # x y z in the file itself
    payload = (result.folder / "3").read_bytes()
    assert np.allclose(np.frombuffer(payload, "<f4", count=15, offset=8).reshape(5, 3), graphs[3].nodes_nm[:, ::-1])
    # writing again replaces the folder whole
    write_skeletons({3: graphs[3]}, run / "skeletons", swc=False)
    assert write_precomputed_skeletons(run).n_segments == 1
    assert not (result.folder / str(2**40 + 1)).exists()


def test_run_without_skeletons_is_refused(tmp_path):
    with pytest.raises(InputError, match="missing; run `axonseg skeletonize` first"):
        write_precomputed_skeletons(tmp_path / "run")
    assert not (tmp_path / "run").exists()
