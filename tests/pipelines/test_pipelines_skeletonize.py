"""Skeletonize stage: a run's zarr segmentation (or fragments + LUT) -> joined skeletons on disk."""

from __future__ import annotations

import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from axonseg.errors import InputError, StageError
from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.io.luts import write_luts
from axonseg.pipelines.skeletonize import job as skeletonize_module
from axonseg.pipelines.skeletonize import SkeletonizeConfig, load_skeletonize_config, read_run_skeletons, run_skeletonize
from axonseg.skeleton import SkeletonParams, from_swc

VOXEL = (30.0, 8.0, 8.0)
# A small invalidation constant lets TEASAR trace inside small test blocks (and keeps context small).
SMALL = SkeletonParams(const=100.0)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def make_tube(shape, voxel_size, start, end, radius_nm, label=1, labels=None):
    """Paint a capsule of ``radius_nm`` between two voxel positions (zyx); returns labels and axis length (nm)."""
    voxel = np.asarray(voxel_size, dtype=np.float64)
    labels = np.zeros(shape, dtype=np.uint64) if labels is None else labels
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1) * voxel
    a, b = np.asarray(start) * voxel, np.asarray(end) * voxel
    axis = b - a
    t = np.clip(((grid - a) @ axis) / (axis @ axis), 0.0, 1.0)
    labels[np.linalg.norm(grid - (a + t[..., None] * axis), axis=-1) <= radius_nm] = label
    return labels, float(np.linalg.norm(axis))


def write_run_array(run: Path, name: str, data: np.ndarray, voxel=VOXEL, offset=(0.0, 0.0, 0.0), chunks=(10, 32, 32)):
    """Write ``data`` as ``run/volume.zarr/name`` (one level, written in two halves) and mark it complete."""
    store = run / "volume.zarr"
    create_multiscale(store, name, data.shape, data.dtype, voxel, offset, chunk_shape=chunks)
    array = open_level(store, name, 0)
    half = data.shape[0] // 2
    write_block(array, data[:half], (0, 0, 0))
    write_block(array, data[half:], (half, 0, 0))
    mark_complete(store, name)


@pytest.fixture
def tube_run(tmp_path: Path):
    labels, axis_nm = make_tube((20, 96, 96), VOXEL, (3, 6, 6), (16, 90, 90), 40.0, label=7)
    labels, _ = make_tube((20, 96, 96), VOXEL, (10, 80, 10), (10, 80, 40), 40.0, label=9, labels=labels)
    run = tmp_path / "run"
    write_run_array(run, "segmentation", labels, offset=(300.0, 80.0, 0.0))
    return run, labels, axis_nm


def test_tube_through_blocks_is_one_connected_skeleton(tube_run):
    run, labels, axis_nm = tube_run
    config = SkeletonizeConfig(block_shape=(8, 32, 32), skeleton=SMALL)
    result = run_skeletonize(run, config, show_progress=False)
    assert result.n_segments == 2 and result.threshold is None
    graphs = read_run_skeletons(run)
    tube = graphs[7]
    assert nx.number_connected_components(tube.to_networkx()) == 1
    assert axis_nm * 0.95 < tube.path_length_nm < (axis_nm + 80.0) * 1.3
    # nodes are world nm: the array offset is added, and every node lies inside its tube
    voxels = np.floor((tube.nodes_nm - np.array([300.0, 80.0, 0.0])) / np.asarray(VOXEL)).astype(int)
    assert np.all(labels[tuple(voxels.T)] == 7)
    assert result.total_length_nm == pytest.approx(sum(g.path_length_nm for g in graphs.values()))
    # the tables, the SWC files and the resolved config are on disk; block pieces and markers are gone
    nodes = pd.read_parquet(run / "skeletons" / "nodes.parquet")
    assert set(nodes["segment_id"].unique().tolist()) == {7, 9}
    swc = from_swc((run / "skeletons" / "swc" / "7.swc").read_text())
    assert swc.segment_id == 7 and swc.path_length_nm == pytest.approx(tube.path_length_nm, rel=1e-6)
    assert (run / "skeletons" / "config.yaml").exists()
    assert not (run / "skeletons" / "blocks").exists() and not (run / "blocks").exists()


def test_downsampled_tracing_follows_the_tube_on_the_coarse_grid(tube_run):
    """``downsample`` traces the labels at a coarser level (as igneous traces a mip): the tube is
    still one skeleton of about its length, inside the tube, with nodes at the centres of the
    coarse (30x16x16 nm) voxels, and fewer nodes than at full resolution."""
    run, labels, axis_nm = tube_run
    full = run_skeletonize(run, SkeletonizeConfig(block_shape=(8, 32, 32), skeleton=SMALL), show_progress=False)
    full_nodes = read_run_skeletons(run)[7].n_nodes
    config = SkeletonizeConfig(block_shape=(8, 32, 32), downsample=(1, 2, 2), skeleton=SMALL)
    result = run_skeletonize(run, config, show_progress=False)
    assert result.n_segments == full.n_segments == 2
    tube = read_run_skeletons(run)[7]
    assert nx.number_connected_components(tube.to_networkx()) == 1
    assert axis_nm * 0.95 < tube.path_length_nm < (axis_nm + 80.0) * 1.3
    assert tube.n_nodes < 0.75 * full_nodes
    fine = (tube.nodes_nm - np.array([300.0, 80.0, 0.0])) / np.asarray(VOXEL)  # in full-resolution voxels
    # coarse voxel j spans fine voxels 2j and 2j + 1: its centre is fine position 2j + 1 (y and x)
    np.testing.assert_allclose(fine[:, 1:] % 2, 1.0, atol=1e-6)
    np.testing.assert_allclose(fine[:, 0] % 1, 0.5, atol=1e-6)
    # every node's coarse window (1x2x2 full-resolution voxels) holds the tube
    z, y, x = np.floor(fine[:, 0]).astype(int), np.rint(fine[:, 1] - 1).astype(int), np.rint(fine[:, 2] - 1).astype(int)
    window = [labels[z, y + dy, x + dx] for dy in (0, 1) for dx in (0, 1)]
    assert np.all(np.any(np.stack(window) == 7, axis=0))


def test_downsample_must_tile_the_blocks():
    with pytest.raises(ValueError, match=r"block_shape \[8, 31, 32\] must be a multiple of downsample \[1, 2, 2\]"):
        SkeletonizeConfig(block_shape=(8, 31, 32), downsample=(1, 2, 2))
    with pytest.raises(ValueError, match="downsample"):
        SkeletonizeConfig(downsample=(0, 2, 2))
    from axonseg.pipelines.skeletonize.blocks import coarse_params

    assert coarse_params(SkeletonParams(dust_threshold=100), (2, 2, 2)).dust_threshold == 13  # voxels, rounded up
    assert coarse_params(SkeletonParams(dust_threshold=100), (1, 1, 1)).dust_threshold == 100


def test_result_does_not_depend_on_block_shape(tube_run):
    run, _, _ = tube_run
    # Tube 9 runs along a y face and a z face of the (10, 40, 24) blocks. The default context is
    # const / 4 (+1 voxel), which has to exceed the radius of a process lying along a face: with
    # const 100 (25 nm, (2, 5, 5) voxels) the 40 nm tube grazes the read region's faces, kimimaro's
    # fix_borders pulls both blocks' traces onto the neighbour's side and the tube was lost (8 nm
    # of 336). const 200 reads (3, 8, 8) voxels (50 nm), as the shipped const 500 reads 125 nm.
    params = SkeletonParams(const=200.0)
    run_skeletonize(run, SkeletonizeConfig(block_shape=(20, 96, 96), skeleton=params), show_progress=False)
    whole = read_run_skeletons(run)
    run_skeletonize(run, SkeletonizeConfig(block_shape=(10, 40, 24), skeleton=params), show_progress=False)
    blocks = read_run_skeletons(run)
    assert set(whole) == set(blocks) == {7, 9}
    for segment_id in whole:
        assert blocks[segment_id].n_components() == 1
        assert blocks[segment_id].path_length_nm == pytest.approx(whole[segment_id].path_length_nm, rel=0.07)


def test_fragments_with_lut_and_resume_after_a_failed_block(tmp_path, monkeypatch):
    labels, axis_nm = make_tube((12, 64, 96), VOXEL, (6, 32, 4), (6, 32, 92), 40.0, label=1)
    fragments = labels.copy()
    fragments[:, :, 48:][fragments[:, :, 48:] == 1] = 2  # the tube is two fragments
    run = tmp_path / "run"
    write_run_array(run, "fragments", fragments)
    write_luts(run, {0.3: (np.array([1, 2]), np.array([1, 2])), 0.7: (np.array([1, 2]), np.array([5, 5]))})
    config = SkeletonizeConfig(block_shape=(12, 32, 32), skeleton=SMALL)
    # two LUTs and no evaluation: the run folder's one rule takes the median (the lower middle one)
    assert run_skeletonize(run, config, show_progress=False).threshold == 0.3
    assert sorted(read_run_skeletons(run)) == [1, 2]

    real = skeletonize_module.skeletonize_blocks.__globals__["skeletonize_block"]
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setitem(skeletonize_module.skeletonize_blocks.__globals__, "skeletonize_block", failing)
    merged = config.model_copy(update={"threshold": 0.7})
    with pytest.raises(RuntimeError, match="killed"):
        run_skeletonize(run, merged, scheduler="synchronous", show_progress=False)
    assert len(calls) == 4
    with pytest.raises(StageError, match="changed: .*threshold"):  # resuming with another LUT is refused
        run_skeletonize(run, config.model_copy(update={"threshold": 0.3}), scheduler="synchronous", show_progress=False)
    result = run_skeletonize(run, merged, scheduler="synchronous", show_progress=False)
    assert len(calls) == 4 + 6 - 3  # 6 blocks: the 3 finished ones are not redone
    graphs = read_run_skeletons(run)
    assert result.threshold == 0.7 and list(graphs) == [5]
    assert graphs[5].n_components() == 1
    assert axis_nm * 0.95 < graphs[5].path_length_nm < axis_nm + 100.0
    split = run_skeletonize(run, config.model_copy(update={"threshold": 0.3}), restart=True, show_progress=False)
    assert split.n_segments == 2 and sorted(read_run_skeletons(run)) == [1, 2]
    assert not (run / "skeletons" / "swc" / "5.swc").exists()  # stale SWC files are gone


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        run_skeletonize(tmp_path, show_progress=False)
    run = tmp_path / "run"
    write_run_array(run, "segmentation", np.zeros((4, 8, 8), dtype=np.float32))
    with pytest.raises(InputError, match="dtype float32: expected an integer"):
        run_skeletonize(run, show_progress=False)


def test_shipped_config_loads():
    config = load_skeletonize_config(CONFIGS / "skeletonize.yaml")
    assert config.skeleton == SkeletonParams()  # AxonEM defaults
    assert load_skeletonize_config(None) == SkeletonizeConfig()


def test_apply_lut_maps_listed_ids_and_keeps_the_rest():
    from axonseg.segment import Lut, apply_lut

    fragments = np.array([[[0, 3, 2**40], [7, 3, 9]]], dtype=np.uint64)
    lut = Lut(np.array([2**40, 3, 0], dtype=np.uint64), np.array([5, 2**35, 0], dtype=np.uint64))  # unsorted
    expected = np.array([[[0, 2**35, 5], [7, 2**35, 9]]], dtype=np.uint64)
    np.testing.assert_array_equal(apply_lut(fragments, lut), expected)
    np.testing.assert_array_equal(apply_lut(fragments.astype(np.uint32) % 100, Lut(np.array([3]), np.array([4]))),
                                  np.array([[[0, 4, 0], [7, 4, 9]]], dtype=np.uint64))
    np.testing.assert_array_equal(apply_lut(fragments, Lut(np.zeros(0), np.zeros(0))), fragments)


def test_join_in_id_range_batches_equals_the_join_in_memory(tmp_path):
    """The stage joins a batch of segments at a time (bounded memory); the result must not change."""
    from axonseg.pipelines.skeletonize.blocks import join_distances, read_block_graphs, skeletonize_blocks
    from axonseg.pipelines.skeletonize.join import join_to_disk
    from axonseg.skeleton import SkeletonStore, join_skeletons

    shape = (20, 96, 96)
    labels = np.zeros(shape, dtype=np.uint64)
    ids = [3, 40, 41, 9000, 123456789, 2**40 + 5]  # sparse ids: the buckets are cut by node count, not id
    for i, label in enumerate(ids):
        make_tube(shape, VOXEL, (3 + 2 * i, 6 + 14 * i, 4), (5 + 2 * i, 8 + 14 * i, 90), 30.0, label=label, labels=labels)
    work = tmp_path / "blocks"
    block_ids = skeletonize_blocks(lambda roi: labels[roi.to_slices()], shape, VOXEL, (0.0, 0.0, 0.0), SMALL,
                                   (8, 32, 32), work, tmp_path / "run", {"test": 1}, scheduler="synchronous",
                                   show_progress=False)
    attach, bridge = join_distances(VOXEL, None, None)
    expected = join_skeletons([read_block_graphs(work, b) for b in block_ids], attach_distance_nm=attach,
                              bridge_distance_nm=bridge)
    assert sorted(expected) == ids
    summary = join_to_disk(work, block_ids, tmp_path / "batched", attach, bridge, swc=True, batch_nodes=40)
    assert summary.n_buckets >= 3 and summary.n_segments == len(ids)
    assert not (tmp_path / "batched" / "join.tmp").exists()
    store = SkeletonStore(tmp_path / "batched")
    assert store.n_batches >= 3 and list(store) == ids
    for label in ids:
        got, want = store[label], expected[label]
        assert np.allclose(got.nodes_nm, want.nodes_nm) and np.array_equal(got.edges, want.edges)
        assert got.n_components() == 1
        assert (tmp_path / "batched" / "swc" / f"{label}.swc").exists()
    assert summary.total_length_nm == pytest.approx(sum(g.path_length_nm for g in expected.values()))


def _recording(monkeypatch, log: Path):
    """Replace the stage's ``skeletonize_block`` with one that appends ``pid start end`` to ``log``
    (a file, so forked workers can write it too) and sleeps long enough to overlap."""
    import os
    import time

    real = skeletonize_module.skeletonize_blocks.__globals__["skeletonize_block"]

    def recording(*args, **kwargs):
        started = time.perf_counter()
        time.sleep(0.1)
        try:
            return real(*args, **kwargs)
        finally:
            with open(log, "a") as handle:
                handle.write(f"{os.getpid()} {started} {time.perf_counter()}\n")

    monkeypatch.setitem(skeletonize_module.skeletonize_blocks.__globals__, "skeletonize_block", recording)


def _most_at_once(rows: list[list[float]]) -> int:
    events = sorted([(start, 1) for _, start, _ in rows] + [(end, -1) for _, _, end in rows], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork pool is Linux-only")
def test_threads_trace_blocks_in_forked_workers_at_once(tube_run, monkeypatch, tmp_path):
    """kimimaro holds the GIL: under ``threads:2`` each thread hands its block to one of two forked
    worker processes, so two blocks trace at once; ``synchronous`` traces them in this process,
    one at a time, and both give the same skeletons."""
    import os

    run, _, _ = tube_run
    config = SkeletonizeConfig(block_shape=(8, 32, 32), skeleton=SMALL)
    skeletons, rows = {}, {}
    for scheduler in ("threads:2", "synchronous"):
        log = tmp_path / f"{scheduler}.log"
        _recording(monkeypatch, log)
        result = run_skeletonize(run, config, scheduler=scheduler, restart=True, show_progress=False)
        assert result.n_segments == 2
        skeletons[scheduler] = read_run_skeletons(run)
        rows[scheduler] = [[float(v) for v in line.split()] for line in log.read_text().splitlines()]
        assert len(rows[scheduler]) == 27  # every block traced once
    pids = {int(row[0]) for row in rows["threads:2"]}
    assert len(pids) == 2 and os.getpid() not in pids
    assert _most_at_once(rows["threads:2"]) == 2
    assert {int(row[0]) for row in rows["synchronous"]} == {os.getpid()}
    assert _most_at_once(rows["synchronous"]) == 1
    for segment_id, graph in skeletons["synchronous"].items():
        np.testing.assert_array_equal(skeletons["threads:2"][segment_id].nodes_nm, graph.nodes_nm)
        np.testing.assert_array_equal(skeletons["threads:2"][segment_id].edges, graph.edges)


def test_pool_workers_follow_the_scheduler():
    from axonseg.blockwise.forkpool import available_cores, can_fork, pool_workers

    if can_fork():
        assert pool_workers("threads") == available_cores() and pool_workers("threads:3") == 3
    else:
        assert pool_workers("threads") == pool_workers("threads:3") == 0
    # synchronous runs in this process; dask's distributed workers are processes already
    for spec in ("synchronous", "local:2", "tcp://host:8786"):
        assert pool_workers(spec) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork pool is Linux-only")
def test_a_worker_that_dies_is_one_error_and_the_run_resumes(tube_run, monkeypatch):
    import os


    run, _, _ = tube_run
    real = skeletonize_module.skeletonize_blocks.__globals__["skeletonize_block"]
    parent = os.getpid()

    def dying(*args, **kwargs):
        if os.getpid() != parent:
            os._exit(9)  # as the OOM killer would
        return real(*args, **kwargs)

    config = SkeletonizeConfig(block_shape=(8, 32, 32), skeleton=SMALL)
    monkeypatch.setitem(skeletonize_module.skeletonize_blocks.__globals__, "skeletonize_block", dying)
    with pytest.raises(StageError, match=r"skeletonize: a worker process died while processing block .*re-run the same command"):
        run_skeletonize(run, config, scheduler="threads:2", restart=True, show_progress=False)
    monkeypatch.setitem(skeletonize_module.skeletonize_blocks.__globals__, "skeletonize_block", real)
    assert run_skeletonize(run, config, scheduler="threads:2", show_progress=False).n_segments == 2


def test_kimimaros_own_pool_keeps_the_blocks_in_the_main_thread():
    from axonseg.pipelines.skeletonize.blocks import kimimaro_pool_scheduler

    assert kimimaro_pool_scheduler(SkeletonParams()) is None  # parallel=1: the stage's fork pool (gil_bound)
    # kimimaro's own pool installs signal handlers, which only the main thread may do
    choose = kimimaro_pool_scheduler(SkeletonParams(parallel=2))
    assert choose("threads") == choose("threads:2") == choose("synchronous") == "synchronous"
    assert choose("local:2") == "local:2" and choose("tcp://h:1") == "tcp://h:1"


def test_kimimaro_pool_runs_on_the_default_scheduler(tube_run):
    run, _, _ = tube_run
    config = SkeletonizeConfig(block_shape=(10, 48, 48), skeleton=SkeletonParams(const=100.0, parallel=2))
    result = run_skeletonize(run, config, show_progress=False)  # failed on a dask thread before
    assert result.n_segments == 2
