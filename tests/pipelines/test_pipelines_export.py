"""Export stage: synapse tables on a run -> SONATA / NIR / CSV / PyNN, bad inputs, proxy, LUT, synth GT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from axonseg.errors import ConfigError, InputError, OutputExistsError
from axonseg.io import create_multiscale, mark_complete, open_level, open_volume, write_block
from axonseg.io.luts import write_luts
from axonseg.io.nir_file import read_nir
from axonseg.io.sonata import read_sonata
from axonseg.pipelines.export._writers import read_pynn_list
from axonseg.pipelines.export import ExportConfig, load_export_config, run_export
from axonseg.skeleton import AxonGraph

VOXEL = (30.0, 8.0, 8.0)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write_run_array(run: Path, name: str, data: np.ndarray, chunks=(4, 16, 16)) -> None:
    store = run / "volume.zarr"
    create_multiscale(store, name, data.shape, data.dtype, VOXEL, (0.0, 0.0, 0.0), chunk_shape=chunks)
    write_block(open_level(store, name, 0), data, (0, 0, 0))
    mark_complete(store, name)


def segments() -> np.ndarray:
    labels = np.zeros((8, 40, 40), np.uint64)
    labels[:7, :, :20] = 1
    labels[:7, :20, 20:] = 2
    labels[:7, 20:, 20:] = 3  # z = 7 stays unlabelled
    return labels


def voxel_nm(z, y, x):
    return [(z + 0.5) * VOXEL[0], (y + 0.5) * VOXEL[1], (x + 0.5) * VOXEL[2]]


# (pre voxel, post voxel) -> expected fate
ROWS = [
    (voxel_nm(2, 10, 12), voxel_nm(2, 10, 25), "1-2"),
    (voxel_nm(3, 5, 12), voxel_nm(3, 5, 30), "1-2"),
    (voxel_nm(2, 10, 30), voxel_nm(2, 30, 30), "2-3"),
    (voxel_nm(4, 30, 30), voxel_nm(4, 30, 5), "3-1"),
    ([np.nan, 0.0, 0.0], voxel_nm(1, 1, 1), "nan"),
    (voxel_nm(1, 1, 1), [0.0, 0.0, 1e6], "outside"),
    (voxel_nm(7, 1, 1), voxel_nm(2, 1, 1), "unlabelled"),
    (voxel_nm(2, 1, 1), voxel_nm(2, 3, 3), "same"),
]


def synapse_csv(path: Path, rows=ROWS) -> Path:
    pre = np.array([r[0] for r in rows], float)
    post = np.array([r[1] for r in rows], float)
    pd.DataFrame({"pre_x": pre[:, 2], "pre_y": pre[:, 1], "pre_z": pre[:, 0], "post_x": post[:, 2],
                  "post_y": post[:, 1], "post_z": post[:, 0]}).to_csv(path, index=False)
    return path


def line_skeleton(segment_id: int, z: float, y: float, xs: np.ndarray, root_radius: float = 90.0) -> AxonGraph:
    nodes = np.column_stack([np.full(len(xs), z), np.full(len(xs), y), xs])
    radii = np.full(len(xs), 40.0)
    radii[0] = root_radius
    return AxonGraph(segment_id, nodes, np.column_stack([np.arange(len(xs) - 1), np.arange(1, len(xs))]), radii)


@pytest.fixture
def run(tmp_path):
    run = tmp_path / "run"
    write_run_array(run, "segmentation", segments())
    return run


def skeletons():
    # Segment 1 runs along x from the volume face (x = 4 nm) in steps of 48 nm: the synapse at
    # voxel x = 12 (100 nm) is 96 nm from the root along the skeleton.
    return {1: line_skeleton(1, 75.0, 84.0, np.array([4.0, 52.0, 100.0, 148.0])),
            2: line_skeleton(2, 75.0, 84.0, np.array([316.0, 268.0, 244.0])),
            3: line_skeleton(3, 135.0, 244.0, np.array([316.0, 244.0]))}


def test_table_export_all_formats(run, tmp_path):
    config = ExportConfig(conduction_velocity_m_per_s=1e-4)  # slow, so that 96 nm is a visible delay
    result = run_export(run, "all", synapse_csv(tmp_path / "syn.csv"), config=config, skeletons=skeletons())
    assert result.drops["dropped"] == {"nan_coordinates": 1, "outside_volume": 1, "unlabelled": 1, "same_segment": 1}
    assert result.n_synapses == 4 and result.n_pairs == 3 and result.n_nodes == 3 and not result.proxy
    folder = run / "connectome"
    synapses = pd.read_parquet(folder / "synapses.parquet")
    first = synapses[synapses.synapse_id == 0].iloc[0]
    assert (first.pre_id, first.post_id) == (1, 2)
    assert first.path_length_um == pytest.approx(0.096)
    assert first.delay_ms == pytest.approx(0.5 + 0.096e-3 / 1e-4)
    edges = pd.read_csv(folder / "edges.csv")
    assert list(edges.columns[:3]) == ["bodyId_pre", "bodyId_post", "weight"]
    assert sorted(zip(edges.bodyId_pre, edges.bodyId_post, edges.weight)) == [(1, 2, 2), (2, 3, 1), (3, 1, 1)]
    circuit = read_sonata(folder / "sonata")
    assert len(circuit.edges) == 4 and circuit.nodes["segment_id"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(np.sort(circuit.edges["delay"]), np.sort(synapses["delay_ms"]))
    connections = read_pynn_list(folder / "pynn.csv")
    assert len(connections) == 4 and all(len(c) == 4 for c in connections)
    assert (0, 1, 1.0, pytest.approx(first.delay_ms)) in connections
    graph = read_nir(folder / "nir" / "connectome.nir")
    assert graph.nodes["input"].input_type["input"].tolist() == [3]
    assert not [n for n in graph.nodes["network"].nodes if n.startswith("delay")]  # default: no Delay nodes
    report = json.loads((folder / "export.json").read_text())
    assert report["root_methods"] == {"boundary_endpoint": 3} and (folder / "config.yaml").exists()


def test_refuses_to_overwrite_without_flag(run, tmp_path):
    table = synapse_csv(tmp_path / "syn.csv")
    run_export(run, "csv", table, config=ExportConfig(delays=False))
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_export(run, "csv", table, config=ExportConfig(delays=False))
    result = run_export(run, "pynn", table, config=ExportConfig(delays=False), overwrite=True)
    assert (run / "connectome" / "pynn.csv").exists() and not (run / "connectome" / "edges.csv").exists()
    assert result.n_synapses == 4


def test_bad_inputs_give_clear_errors(run, tmp_path):
    table = synapse_csv(tmp_path / "syn.csv")
    with pytest.raises(InputError, match="run `axonseg skeletonize"):
        run_export(run, "sonata", table)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"pre_x": [1.0], "pre_y": [1.0], "pre_z": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"lacks column\(s\) \['post_z', 'post_y', 'post_x'\].*cave"):
        run_export(run, "sonata", bad, config=ExportConfig(delays=False, preset="xyz"))
    with pytest.raises(ConfigError, match="--format"):
        run_export(run, "hdf9", table, config=ExportConfig(delays=False))
    with pytest.raises(InputError, match="not a run folder"):
        run_export(tmp_path / "nothing", "csv", table)
    assert not (run / "connectome").exists()


def test_brainscales2_target(run, tmp_path, caplog):
    signs = tmp_path / "signs.csv"
    pd.DataFrame({"segment_id": [3], "transmitter": ["GABA"]}).to_csv(signs, index=False)
    config = ExportConfig(sign_table=str(signs))
    table = synapse_csv(tmp_path / "syn.csv")
    normal = run_export(run, ["sonata", "pynn"], table, config=ExportConfig(sign_table=str(signs), delays=False))
    result = run_export(run, ["sonata", "pynn", "nir"], table, target="brainscales2", config=config)
    assert "delays dropped" in caplog.text and result.report["delays"] is False
    # each target in its own folder: the hardware export leaves the normal one alone
    hardware = run / "connectome-brainscales2"
    assert result.folder == hardware and normal.folder == run / "connectome"
    assert len(read_sonata(run / "connectome" / "sonata").edges) == 4 and "delay" in pd.read_csv(run / "connectome" / "pynn.csv")
    circuit = read_sonata(hardware / "sonata")
    assert "delay" not in circuit.edges.columns and len(circuit.edges) == 3  # one connection per pair
    by_pair = {(s, t): (w, e) for s, t, w, e in zip(circuit.edges.source_node_id, circuit.edges.target_node_id,
                                                    circuit.edges.syn_weight, circuit.edges.edge_type_id)}
    assert by_pair[(0, 1)] == (63.0, 100) and by_pair[(1, 2)] == (32.0, 100) and by_pair[(2, 0)] == (32.0, 101)
    pynn = pd.read_csv(hardware / "pynn.csv")
    assert pynn["weight"].between(0, 63).all() and set(pynn["receptor_type"]) == {"excitatory", "inhibitory"}
    network = read_nir(hardware / "nir" / "connectome.nir").nodes["network"]  # closed loop, no Delay nodes
    assert set(network.nodes) == {"input", "lif", "recurrent", "output"}
    recurrent = network.nodes["recurrent"].weight  # (post, pre): the hardware weights with their sign
    assert (recurrent[1, 0], recurrent[2, 1], recurrent[0, 2]) == (63.0, 32.0, -32.0)
    assert not (run / "connectome-brainscales2.tmp").exists() and not (run / "connectome.tmp").exists()


def test_contact_proxy_without_table(run):
    result = run_export(run, "csv", config=ExportConfig(delays=False, proxy_min_area_nm2=1.0))
    assert result.proxy and result.report["synapses"] == "contact_proxy"
    edges = pd.read_parquet(run / "connectome" / "edges.parquet")
    pairs = set(zip(edges.bodyId_pre.tolist(), edges.bodyId_post.tolist()))
    assert pairs == {(1, 2), (2, 1), (1, 3), (3, 1), (2, 3), (3, 2)}
    synapses = pd.read_parquet(run / "connectome" / "synapses.parquet")
    assert (synapses["source"] == "contact_proxy").all()
    # 1 touches 2 over 7 sections x 20 rows of 30 x 8 nm faces, in um^2
    assert synapses.loc[(synapses.pre_id == 1) & (synapses.post_id == 2), "size"].item() == pytest.approx(7 * 20 * 240 / 1e6)


def test_fragments_with_stored_and_current_lut(tmp_path):
    run = tmp_path / "run"
    fragments = segments() * 10  # fragment ids 10, 20, 30
    write_run_array(run, "fragments", fragments)
    write_luts(run, {0.5: (np.array([10, 20, 30], np.uint64), np.array([1, 2, 3], np.uint64))})
    table = synapse_csv(tmp_path / "syn.csv")
    config = ExportConfig(delays=False)
    stored = run_export(run, "csv", table, config=config)
    assert stored.n_synapses == 4 and "LUT" in stored.report["source"]
    # a proofreading edit merged segments 2 and 3: their synapse becomes pre == post
    merged = (np.array([10, 20, 30], np.uint64), np.array([1, 2, 2], np.uint64))
    edited = run_export(run, "csv", table, config=config, overwrite=True, lut=lambda: merged)
    assert edited.drops["dropped"]["same_segment"] == 2 and edited.n_synapses == 3
    edges = pd.read_csv(run / "connectome" / "edges.csv")
    assert sorted(zip(edges.bodyId_pre, edges.bodyId_post)) == [(1, 2), (2, 1)]


def test_config_file_loads():
    config = load_export_config(CONFIGS / "export.yaml")
    assert config.synaptic_delay_ms == 0.5 and config.conduction_velocity_m_per_s == 0.3


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory):
    from axonseg.pipelines.skeletonize import SkeletonizeConfig, run_skeletonize
    from axonseg.pipelines.synth import read_synth_synapses, write_synth

    folder = tmp_path_factory.mktemp("synth")
    store = write_synth(folder / "s.zarr", (32, 160, 160), (30, 8, 8), seed=2, show_progress=False).store
    neurites = open_volume(store / "neurites")
    run = folder / "run"
    data = np.asarray(neurites.data).astype(np.uint64)
    write_run_array(run, "segmentation", data, chunks=(16, 64, 64))
    run_skeletonize(run, SkeletonizeConfig(block_shape=(32, 160, 160)), scheduler="synchronous", show_progress=False)
    return run, store, read_synth_synapses(store)


def test_synth_ground_truth_pairs_are_recovered(synth_run):
    run, store, truth = synth_run
    assert len(truth) >= 5
    result = run_export(run, ["sonata", "csv"], store / "synapses", overwrite=True)
    assert result.drops["n_kept"] == len(truth)
    synapses = pd.read_parquet(run / "connectome" / "synapses.parquet").sort_values("synapse_id")
    np.testing.assert_array_equal(synapses["pre_id"], truth["gt_pre_id"])
    np.testing.assert_array_equal(synapses["post_id"], truth["gt_post_id"])
    edges = pd.read_csv(run / "connectome" / "edges.csv")
    expected = truth.groupby(["gt_pre_id", "gt_post_id"]).size()
    got = edges.set_index(["bodyId_pre", "bodyId_post"])["weight"]
    assert dict(zip(map(tuple, expected.index.tolist()), expected.tolist())) == dict(zip(map(tuple, got.index.tolist()), got.tolist()))
    # every presynaptic segment has a skeleton, so every synapse has a finite path and delay > 0.5 ms
    assert np.isfinite(synapses["path_length_um"]).all() and (synapses["delay_ms"] >= 0.5).all()
    assert result.report["n_without_skeleton"] == 0
