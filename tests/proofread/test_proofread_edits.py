"""Merge, split, undo, redo, lock and flag on a box graph whose true axons are known."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.proofread import EditRefused, ProofreadSession


def _unbroken_neighbours(graph, axon):
    """Two y-adjacent axons (same z) whose x contacts all have affinity > 0.5."""
    mean = graph.mean_affinity
    along_x = axon[graph.u.astype(np.int64) - 1] == axon[graph.v.astype(np.int64) - 1]
    broken = set(axon[graph.u[along_x & (mean < 0.5)].astype(np.int64) - 1].tolist())
    for a in range(1, 8):  # axons 1..8 are the first z layer, y rows 0..7
        if a not in broken and a + 1 not in broken:
            return a, a + 1
    raise AssertionError("no unbroken neighbour axons in the fixture")


def test_merge_moves_smaller_segment_and_logs_it(box_setup, tmp_path):
    graph, _, lut = box_setup
    session = ProofreadSession(tmp_path / "edits.sqlite", lut, graph, user="ana")
    ids, counts = np.unique(lut[1], return_counts=True)
    big, small = int(ids[np.argmax(counts)]), int(ids[np.argmin(counts)])
    before = {big: len(session.fragments_of(big)), small: len(session.fragments_of(small))}
    record = session.merge([small, big], points_nm=[[10.0, 20.0, 30.0]])
    assert record.op_id == 1 and record.operation == "merge" and record.user == "ana"
    assert record.parents == tuple(sorted((big, small))) and record.children == (big,)
    assert np.array_equal(np.sort(record.moves[0].fragments), np.sort(lut[0][lut[1] == small]))
    assert len(session.fragments_of(big)) == before[big] + before[small]
    assert len(session.fragments_of(small)) == 0
    assert session.segment_size(big) == (before[big] + before[small]) * 256  # 4*8*8 voxels per fragment
    assert record.seeds_nm.tolist() == [[0.0, 10.0, 20.0, 30.0]]
    with pytest.raises(EditRefused, match="does not exist"):
        session.merge([small, big])
    with pytest.raises(InputError, match="at least two"):
        session.merge([big, big])


def test_split_min_cut_recovers_true_axons(box_setup, tmp_path):
    graph, axon, _ = box_setup
    truth = (graph.node_id.copy(), axon.copy())
    session = ProofreadSession(tmp_path / "edits.sqlite", truth, graph, user="ana")
    a, b = _unbroken_neighbours(graph, axon)
    session.merge([a, b])
    merged = session.segment_of(graph.node_id[axon == a][0])[0]
    centroid = dict(zip(graph.node_id.tolist(), graph.node_centroid))
    ends = lambda k: [centroid[int(f)] for f in graph.node_id[axon == k][[0, -1]]]  # noqa: E731
    preview = session.preview_split(merged, ends(a), ends(b))
    assert session.version == 1  # a preview commits nothing
    sides = {frozenset(preview.keep_fragments.tolist()), frozenset(preview.new_fragments.tolist())}
    assert sides == {frozenset(graph.node_id[axon == a].tolist()), frozenset(graph.node_id[axon == b].tolist())}
    # the cut runs through the 8 weak contacts between the axons (aff ~0.05 x 32 faces), not along x
    assert preview.cut_capacity < 8 * 32 * 0.3
    record = session.split(merged, ends(a), ends(b))
    new_id = record.children[1]
    assert new_id > int(max(graph.node_id.max(), axon.max()))
    assert set(session.fragments_of(new_id).tolist()) == set(preview.new_fragments.tolist())
    assert record.seeds_nm[:, 0].tolist() == [0, 0, 1, 1]
    with pytest.raises(InputError, match="expected every seed inside segment"):
        session.preview_split(merged, ends(a), [centroid[int(graph.node_id[axon == 20][0])]])


def test_undo_redo_append_inverse_rows(box_setup, tmp_path):
    graph, _, lut = box_setup
    session = ProofreadSession(tmp_path / "edits.sqlite", lut, graph, user="ana")
    base = session.current_lut()[1]
    ids = np.unique(lut[1])[:3]
    session.merge(ids[:2])
    session.merge([ids[0], ids[2]] if len(session.fragments_of(ids[0])) else ids[1:])
    after_two = session.current_lut()[1]
    undo = session.undo()
    assert undo.operation == "undo" and undo.target_op == 2
    undo = session.undo()
    assert np.array_equal(session.current_lut()[1], base)
    with pytest.raises(EditRefused, match="nothing to undo"):
        session.undo()
    session.redo()
    session.redo()
    assert np.array_equal(session.current_lut()[1], after_two)
    assert [r.operation for r in session.log.read()] == ["merge", "merge", "undo", "undo", "redo", "redo"]
    with pytest.raises(EditRefused, match="nothing to redo"):
        session.redo()


def test_lock_refuses_edits_and_flag_is_kept(box_setup, tmp_path):
    graph, _, lut = box_setup
    ana = ProofreadSession(tmp_path / "edits.sqlite", lut, graph, user="ana")
    ids = [int(i) for i in np.unique(lut[1])[:2]]
    ana.lock(ids[0], note="done")
    bob = ProofreadSession(tmp_path / "edits.sqlite", lut, graph, user="bob")
    with pytest.raises(EditRefused, match=f"segment {ids[0]} is locked by ana"):
        bob.merge(ids)
    with pytest.raises(EditRefused, match="locked"):
        ana.merge(ids)
    ana.unlock(ids[0])
    bob.merge(ids)
    bob.flag([100.0, 200.0, 300.0], "check this branch")
    reopened = ProofreadSession(tmp_path / "edits.sqlite", lut, graph, user="cy")
    assert [(f.user, f.point_nm, f.note) for f in reopened.flags] == [("bob", (100.0, 200.0, 300.0), "check this branch")]
    assert reopened.locked == {}
    assert [r.operation for r in reopened.history(ids[0])] == ["lock", "unlock", "merge"]


def test_log_refuses_another_base_lut(box_setup, tmp_path):
    graph, axon, lut = box_setup
    ProofreadSession(tmp_path / "edits.sqlite", lut, graph, user="ana").merge(np.unique(lut[1])[:2])
    with pytest.raises(InputError, match="base LUT"):
        ProofreadSession(tmp_path / "edits.sqlite", (graph.node_id, axon), graph, user="ana")


def test_touched_segments_lists_current_and_removed(box_setup, tmp_path):
    graph, _, lut = box_setup
    session = ProofreadSession(tmp_path / "edits.sqlite", lut, graph, user="ana")
    a, b, c = (int(i) for i in np.unique(lut[1])[:3])
    session.merge([a, b])
    keep = session.state.segment_of_fragments(lut[0][lut[1] == a][:1])[0]
    current, removed = session.touched_segments()
    assert current == {int(keep)} and removed == {a, b} - {int(keep)}
    session.lock(c)
    assert session.touched_segments(since_op=1) == (set(), set())
