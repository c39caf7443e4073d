"""Segment stages over zarr: fragments -> graph -> agglomerate -> relabel on runs whose
affinities are made from ground-truth labels (+ noise): quality, block invariance, resume,
masks, bad input, and two touching cubes kept apart or merged by their contact's affinity.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import ndimage
from skimage.metrics import variation_of_information

from axonseg.blockwise import DoneMarkers
from axonseg.config import load_config, validate_config
from axonseg.errors import ConfigError, InputError, StageError
from axonseg.io import create_multiscale, group_attrs, mark_complete, open_level, open_volume, write_block
from axonseg.io.luts import read_luts
from axonseg.pipelines.segment import fragments as fragments_stage
from axonseg.pipelines.segment.agglomerate import run_agglomerate
from axonseg.pipelines.segment.config import SegmentConfig, load_segment_config
from axonseg.pipelines.segment.fragments import run_fragments
from axonseg.pipelines.segment.graph import read_graph, run_graph
from axonseg.pipelines.segment.relabel import run_relabel
from axonseg.pipelines.segment.stages import run_segment_stages
from axonseg.segment import relabel

NN = [[-1, 0, 0], [0, -1, 0], [0, 0, -1]]
VOXEL = (10.0, 10.0, 10.0)
REPO = Path(__file__).resolve().parents[2]
HELDOUT = REPO / "data" / "fib_medulla_heldout.h5"


def affinities_from_labels(labels: np.ndarray, offsets, noise: float, seed: int) -> np.ndarray:
    """(C, Z, Y, X) uint8: 255 where p and p + offset carry the same non-zero label, plus noise."""
    affinities = np.zeros((len(offsets),) + labels.shape, dtype=np.float32)
    for channel, offset in enumerate(offsets):
        here = tuple(slice(max(-o, 0), s - max(o, 0)) for o, s in zip(offset, labels.shape))
        there = tuple(slice(max(o, 0), s - max(-o, 0)) for o, s in zip(offset, labels.shape))
        affinities[(channel,) + here] = (labels[here] == labels[there]) & (labels[here] != 0)
    affinities += np.random.default_rng(seed).normal(0.0, noise, affinities.shape).astype(np.float32)
    return np.rint(np.clip(affinities, 0.0, 1.0) * 255).astype(np.uint8)


def write_group(store: Path, name: str, data: np.ndarray, attrs: dict | None = None) -> None:
    channels = data.shape[0] if data.ndim == 4 else None
    create_multiscale(store, name, data.shape[-3:], data.dtype, VOXEL, (0.0, 0.0, 0.0),
                      chunk_shape=(16, 64, 64), channels=channels, attrs=attrs)
    write_block(open_level(store, name, 0), data, (0, 0, 0))
    mark_complete(store, name)


def make_run(run: Path, affinities: np.ndarray, offsets=NN, mask: np.ndarray | None = None) -> Path:
    """A run folder with ``volume.zarr/affinities`` (offsets in the group's attrs) and a mask."""
    attrs = None if offsets is None else {"offsets": offsets}
    write_group(run / "volume.zarr", "affinities", affinities, attrs)
    if mask is not None:
        write_group(run / "volume.zarr", "mask", mask.astype(np.uint8))
    return run


def voronoi_labels(shape, n_cells: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.zeros(shape, dtype=np.int64)
    centres[tuple(rng.integers(0, s, n_cells) for s in shape)] = np.arange(1, n_cells + 1)
    _, nearest = ndimage.distance_transform_edt(centres == 0, return_indices=True)
    return centres[tuple(nearest)]


def read(run: Path, name: str) -> np.ndarray:
    return open_level(run / "volume.zarr", name, 0, mode="r")[:]


def voi(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    """VOI split + merge (nats), over ``where`` only when given."""
    if where is not None:
        a, b = a[where], b[where]
    return float(sum(variation_of_information(a.astype(np.int64), b.astype(np.int64))))


def config_for(block_shape, **agglomerate) -> SegmentConfig:
    data = {"block_shape": block_shape, "agglomerate": {"thresholds": [0.3, 0.5, 0.7], **agglomerate}}
    return validate_config(SegmentConfig, data)


def segmentations(run: Path) -> dict[float, np.ndarray]:
    fragments = read(run, "fragments")
    return {t: relabel(fragments, lut.fragment_ids, lut.segment_ids) for t, lut in read_luts(run).items()}


@pytest.fixture(scope="module")
def real_labels() -> np.ndarray:
    """A 32 x 96 x 96 crop (10 nm) of the held-out FIB-SEM ground truth shipped in data/."""
    if not HELDOUT.exists():
        pytest.skip(f"{HELDOUT} is absent")
    h5py = pytest.importorskip("h5py")
    with h5py.File(HELDOUT, "r") as f:
        return np.asarray(f["labels"][20:52, 80:176, 80:176]).astype(np.int64)


@pytest.fixture(scope="module")
def real_runs(real_labels, tmp_path_factory):
    """The real crop segmented with two block shapes: {block_shape: run folder}."""
    affinities = affinities_from_labels(real_labels, NN, noise=0.2, seed=3)
    runs = {}
    for block_shape in ((16, 48, 48), (12, 40, 56)):
        run = make_run(tmp_path_factory.mktemp("real") / "run", affinities)
        run_segment_stages(run, config_for(block_shape), show_progress=False)
        runs[block_shape] = run
    return runs


def test_chained_stages_give_low_voi_on_real_labels(real_runs, real_labels):
    run = real_runs[(16, 48, 48)]
    labelled = real_labels != 0
    scores = {t: voi(real_labels, seg, labelled) for t, seg in segmentations(run).items()}
    assert min(scores.values()) < 0.15, scores  # measured 0.075
    # relabel wrote the median LUT into segmentation/ and recorded which one
    attrs = group_attrs(run / "volume.zarr", "segmentation")
    assert attrs["complete"] and attrs["threshold"] == 0.5 and attrs["lut_file"] == "luts/threshold_0.5000.npz"
    np.testing.assert_array_equal(read(run, "segmentation"), segmentations(run)[0.5])
    state = json.loads((run / "luts" / "agglomerate.json").read_text())
    assert state["n_nodes"] > 100 and state["n_edges"] > state["n_nodes"]
    # ids are unique per block: block (i, j, k) holds only ids of its own range
    fragments = read(run, "fragments")
    stride = 16 * 48 * 48
    linear = np.ravel_multi_index(np.indices((2, 2, 2)).reshape(3, -1), (2, 2, 2))
    for index, (z, y, x) in zip(linear, np.indices((2, 2, 2)).reshape(3, -1).T):
        ids = fragments[z * 16:(z + 1) * 16, y * 48:(y + 1) * 48, x * 48:(x + 1) * 48]
        ids = ids[ids > 0]
        assert ids.min() > index * stride and ids.max() <= (index + 1) * stride
    assert not (run / "blocks").exists()  # markers are cleared once every stage completed


def test_two_block_shapes_agree(real_runs, real_labels):
    first, second = (segmentations(run) for run in real_runs.values())
    assert first.keys() == second.keys()
    for threshold in first:
        assert voi(first[threshold], second[threshold]) <= 0.01, threshold


def test_stages_up_to_date_skip_and_relabel_threshold_choice(real_runs):
    run = real_runs[(12, 40, 56)]
    again = run_segment_stages(run, config_for((12, 40, 56)), show_progress=False)
    assert all(result.up_to_date for result in again.values())
    (run / "reports").mkdir(exist_ok=True)
    (run / "reports" / "best_threshold.json").write_text(json.dumps({"threshold": 0.3}))
    assert run_relabel(run, config_for((12, 40, 56)), show_progress=False).details["threshold"] == 0.3
    chosen = run_relabel(run, config_for((12, 40, 56)), threshold=0.7, show_progress=False)
    assert chosen.details["threshold"] == 0.7 and not chosen.up_to_date
    assert group_attrs(run / "volume.zarr", "segmentation")["threshold"] == 0.7
    np.testing.assert_array_equal(read(run, "segmentation"), segmentations(run)[0.7])


@pytest.fixture
def small_affinities() -> tuple[np.ndarray, np.ndarray]:
    labels = voronoi_labels((16, 64, 64), 25, seed=0)
    return labels, affinities_from_labels(labels, NN, noise=0.15, seed=1)


def edge_rows(run: Path) -> tuple[int, np.ndarray]:
    """Number of edge rows over all block files, and the (u, v) pairs of all rows."""
    tables = [pq.read_table(path) for path in sorted((run / "graph" / "edges").glob("*.parquet"))]
    pairs = np.concatenate([np.stack([t.column("u").to_numpy(), t.column("v").to_numpy()], 1) for t in tables])
    return len(pairs), pairs


def test_rerun_block_replaces_its_rows(tmp_path, small_affinities, monkeypatch):
    _, affinities = small_affinities
    config = config_for((8, 32, 32))
    reference = make_run(tmp_path / "reference", affinities)
    run_fragments(reference, config, show_progress=False)
    run_graph(reference, config, show_progress=False)
    run = make_run(tmp_path / "run", affinities)
    run_fragments(run, config, show_progress=False)
    original = DoneMarkers.mark_done

    def crash_after_writing(self, block):  # noqa: ANN001, ANN202
        if self.stage == "graph" and block.block_id == "1-0-1":
            raise RuntimeError("killed after the block wrote its tables")
        original(self, block)

    monkeypatch.setattr(DoneMarkers, "mark_done", crash_after_writing)
    with pytest.raises(RuntimeError):
        run_graph(run, config, scheduler="synchronous", show_progress=False)
    assert (run / "graph" / "edges" / "1-0-1.parquet").exists()
    done_before = DoneMarkers(run / "blocks", "graph", {}, "").count()
    assert 0 < done_before < 8 and not (run / "blocks" / "graph" / "1-0-1").exists()
    monkeypatch.setattr(DoneMarkers, "mark_done", original)
    result = run_graph(run, config, scheduler="synchronous", show_progress=False)
    assert result.skipped == done_before  # done blocks are skipped; 1-0-1 runs again
    n_rows, pairs = edge_rows(run)
    assert len(np.unique(pairs, axis=0)) == n_rows  # each edge owned by one block, written once
    n_reference, reference_pairs = edge_rows(reference)
    assert n_rows == n_reference
    np.testing.assert_array_equal(np.unique(pairs, axis=0), np.unique(reference_pairs, axis=0))
    assert read_graph(run).n_edges == n_rows


def test_resume_after_failure_skips_done_blocks(tmp_path, small_affinities, monkeypatch):
    _, affinities = small_affinities
    config = config_for((8, 32, 32))
    reference = make_run(tmp_path / "reference", affinities)
    run_segment_stages(reference, config, scheduler="synchronous", show_progress=False)
    run = make_run(tmp_path / "run", affinities)
    watershed = fragments_stage.watershed_fragments
    calls = []
    fail_at = [4]

    def failing(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == fail_at[0]:
            raise RuntimeError("worker died")
        return watershed(*args, **kwargs)

    monkeypatch.setattr(fragments_stage, "watershed_fragments", failing)
    with pytest.raises(RuntimeError):
        run_fragments(run, config, scheduler="synchronous", show_progress=False)
    with pytest.raises(InputError, match="incomplete"):
        open_volume(run / "volume.zarr" / "fragments")
    # a changed config does not resume silently: the error names the key
    changed = validate_config(SegmentConfig, {**config.model_dump(), "fragments": {"boundary_threshold": 0.4}})
    with pytest.raises(StageError, match="fragments.boundary_threshold"):
        run_fragments(run, changed, show_progress=False)
    calls.clear()
    fail_at[0] = 0
    result = run_fragments(run, config, scheduler="synchronous", show_progress=False)
    assert result.skipped == 3 and len(calls) == result.blocks - 3 == 5
    run_segment_stages(run, config, scheduler="synchronous", show_progress=False)
    for name in ("fragments", "segmentation"):
        np.testing.assert_array_equal(read(run, name), read(reference, name))
    assert read_luts(run).keys() == read_luts(reference).keys()


def test_float16_affinities_match_uint8(tmp_path, small_affinities):
    labels, affinities = small_affinities
    config = config_for((8, 32, 32))
    results = {}
    for values in (affinities, (affinities / 255.0).astype(np.float16)):
        run = make_run(tmp_path / str(values.dtype), values)
        run_segment_stages(run, config, show_progress=False)
        results[values.dtype.name] = read(run, "segmentation")
    assert voi(results["uint8"], results["float16"]) <= 0.01
    assert voi(labels, results["float16"]) < 0.1


def test_masked_and_empty_blocks_write_nothing(tmp_path, small_affinities):
    labels, affinities = small_affinities
    mask = np.ones(labels.shape, dtype=bool)
    mask[8:] = False                  # the second z-layer of blocks is masked out entirely
    mask[:8, :, 48:] = False          # and part of a block
    affinities = affinities.copy()
    affinities[:, :8, 32:, :32] = 0   # an all-zero affinity block (nothing predicted there)
    run = make_run(tmp_path / "run", affinities, mask=mask)
    config = validate_config(SegmentConfig, {**config_for((8, 32, 32)).model_dump(), "mask": "mask"})
    run_segment_stages(run, config, show_progress=False)
    fragments, segmentation = read(run, "fragments"), read(run, "segmentation")
    assert not fragments[~mask].any() and not segmentation[~mask].any()
    assert not fragments[:8, 32:, :32].any()
    written = {p.stem for p in (run / "graph" / "nodes").glob("*.parquet")}
    assert written == {"0-0-0", "0-0-1", "0-1-1"}  # 0-1-0 has zero affinities, 1-*-* are masked
    inside = mask.copy()
    inside[:8, 32:, :32] = False
    assert fragments[inside].all()
    assert voi(labels, segmentation, inside) < 0.1


def test_bad_offsets_and_thresholds_are_named(tmp_path, small_affinities):
    _, affinities = small_affinities
    no_offsets = make_run(tmp_path / "no_offsets", affinities, offsets=None)
    with pytest.raises(InputError, match="no 'offsets'"):
        run_fragments(no_offsets, show_progress=False)
    run = make_run(tmp_path / "run", affinities)
    other = NN + [[0, 0, -3]]
    config = validate_config(SegmentConfig, {"offsets": other})
    with pytest.raises(InputError) as error:
        run_fragments(run, config, show_progress=False)
    assert str(NN) in str(error.value) and str(other) in str(error.value)
    with pytest.raises(ConfigError, match="agglomerate.thresholds"):
        validate_config(SegmentConfig, {"agglomerate": {"thresholds": [0.2, 1.5]}})
    with pytest.raises(ConfigError, match="relabel_threshold"):
        validate_config(SegmentConfig, {"relabel_threshold": -0.1})
    bad_yaml = tmp_path / "agglomerate.yaml"
    bad_yaml.write_text("fragments:\n  boundary_treshold: 0.5\n")
    with pytest.raises(ConfigError, match="boundary_treshold"):
        load_config(bad_yaml, SegmentConfig)
    with pytest.raises(InputError, match="fragments stage first"):
        run_graph(run, show_progress=False)
    with pytest.raises(InputError, match="graph stage first"):
        run_agglomerate(run)
    config = config_for((16, 64, 64))
    run_segment_stages(run, config, show_progress=False)
    with pytest.raises(InputError, match="threshold=1.5"):
        run_relabel(run, config, threshold=1.5, show_progress=False)
    with pytest.raises(InputError, match=r"threshold=0.45: the run has LUTs only"):
        run_relabel(run, config, threshold=0.45, show_progress=False)


def two_cubes(contact_affinity: float) -> tuple[np.ndarray, np.ndarray]:
    """Cubes x < 32 and x >= 32 (ids 1, 2) whose contact plane has the given affinity."""
    labels = np.ones((24, 32, 64), dtype=np.int64)
    labels[:, :, 32:] = 2
    affinities = affinities_from_labels(np.ones_like(labels), NN, noise=0.05, seed=4)
    affinities[2, :, :, 32] = round(contact_affinity * 255)  # faces between x = 31 and x = 32
    return labels, affinities


@pytest.mark.parametrize("block_shape", [(12, 16, 16), (24, 32, 20)])
@pytest.mark.parametrize("method", ["mean", "mutex"])
def test_touching_cubes_stay_apart_or_merge(tmp_path, block_shape, method):
    for contact, n_segments in ((0.1, 2), (0.9, 1)):
        labels, affinities = two_cubes(contact)
        run = make_run(tmp_path / f"contact_{contact}", affinities)
        config = config_for(block_shape, method=method)
        run_segment_stages(run, config, show_progress=False)
        segmentation = read(run, "segmentation")
        assert segmentation.all()
        assert len(np.unique(segmentation)) == n_segments, (contact, method)
        if n_segments == 2:
            assert voi(labels, segmentation) < 1e-9


def test_shipped_configs_load():
    for name in ("agglomerate.yaml", "agglomerate_fib.yaml", "agglomerate_axonem.yaml"):
        config = load_segment_config(REPO / "configs" / name)
        assert all(0.0 <= t <= 1.0 for t in config.agglomerate.thresholds)
    assert load_segment_config(REPO / "configs" / "agglomerate_axonem.yaml").fragments.per_section
