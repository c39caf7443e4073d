"""Simulate stage: a known chain A -> B -> C (2 ms, 3 ms) exported to SONATA and run in Brian2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from axonseg.errors import InputError
from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.pipelines.export import ExportConfig, run_export
from axonseg.pipelines.simulate import SimulateConfig, load_simulate_config, run_simulate
from axonseg.skeleton import AxonGraph

pytest.importorskip("brian2", reason="brian2 is the `sim` extra; the test environment installs it")

VOXEL = (30.0, 8.0, 8.0)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def chain_run(tmp_path: Path) -> Path:
    """Segments A=1 (x < 160 nm), B=2 (x >= 160, y < 160), C=3 (x >= 160, y >= 160); synapses A->B, B->C."""
    labels = np.zeros((8, 40, 40), np.uint64)
    labels[:, :, :20], labels[:, :20, 20:], labels[:, 20:, 20:] = 1, 2, 3
    run = tmp_path / "run"
    store = run / "volume.zarr"
    create_multiscale(store, "segmentation", labels.shape, labels.dtype, VOXEL, chunk_shape=(8, 32, 32))
    write_block(open_level(store, "segmentation"), labels, (0, 0, 0))
    mark_complete(store, "segmentation")
    pd.DataFrame({"pre_z_nm": [75.0, 75.0], "pre_y_nm": [84.0, 84.0], "pre_x_nm": [52.0, 236.0],
                  "post_z_nm": [75.0, 75.0], "post_y_nm": [84.0, 244.0], "post_x_nm": [280.0, 236.0]}
                 ).to_csv(tmp_path / "chain.csv", index=False)
    return run


def line(segment_id: int, xs: list[float]) -> AxonGraph:
    n = len(xs)
    radii = np.full(n, 40.0)
    radii[0] = 90.0  # the first node, on the volume face, is the root
    nodes = np.column_stack([np.full(n, 75.0), np.full(n, 84.0), np.asarray(xs, float)])
    return AxonGraph(segment_id, nodes, np.column_stack([np.arange(n - 1), np.arange(1, n)]), radii)


def test_chain_spike_time_differences_match_the_delays(tmp_path):
    run = chain_run(tmp_path)
    # A's synapse is 48 nm along its axon from the root, B's 80 nm. At 3.2e-5 m/s that is 1.5 ms
    # and 2.5 ms of conduction; with the 0.5 ms synaptic delay: 2 ms and 3 ms.
    skeletons = {1: line(1, [4.0, 52.0, 100.0]), 2: line(2, [316.0, 276.0, 236.0]), 3: line(3, [316.0, 300.0])}
    export = run_export(run, "sonata", tmp_path / "chain.csv", config=ExportConfig(conduction_velocity_m_per_s=3.2e-5),
                        skeletons=skeletons)
    assert export.n_synapses == 2
    config = SimulateConfig(duration_ms=300.0, dt_ms=0.1, rate_hz=40.0, n_inputs=1, input_weight_mv=25.0,
                            drive="sources", weight_mv=25.0)
    result = run_simulate(run, config)
    spikes = pd.read_csv(result.spikes_path)
    times = {segment: spikes.loc[spikes.segment_id == segment, "time_ms"].to_numpy() for segment in (1, 2, 3)}
    assert len(times[1]) >= 5 and len(times[2]) >= 5 and len(times[3]) >= 5
    dt = config.dt_ms
    for pre, post, delay in ((1, 2, 2.0), (2, 3, 3.0)):
        # every spike of the target follows a spike of its source by the delay, within one step
        lag = times[post][:, None] - times[pre][None, :]
        error = np.min(np.abs(lag - delay), axis=1)
        assert np.all(error <= dt + 1e-9), (pre, post, lag)
        assert np.mean(error) < dt / 2  # not off by a whole step on average
        # and (refractoriness aside) every source spike is passed on
        assert len(times[post]) >= len(times[pre]) - 1
    rates = pd.read_csv(result.rates_path)
    assert rates["n_spikes"].tolist() == [len(times[1]), len(times[2]), len(times[3])]
    np.testing.assert_allclose(rates["rate_hz"], rates["n_spikes"] / 0.3)
    png = result.raster_path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_simulate_without_export_says_what_to_run(tmp_path):
    with pytest.raises(InputError, match="axonseg export"):
        run_simulate(tmp_path)


def test_config_file_loads():
    config = load_simulate_config(CONFIGS / "simulate.yaml")
    assert config.duration_ms == 100.0 and config.drive == "all"


def test_empty_circuit_is_refused_with_one_line(tmp_path):
    run = chain_run(tmp_path)
    pd.DataFrame(columns=["pre_z_nm", "pre_y_nm", "pre_x_nm", "post_z_nm", "post_y_nm", "post_x_nm"]
                 ).to_csv(tmp_path / "none.csv", index=False)
    export = run_export(run, "sonata", tmp_path / "none.csv", skeletons={})
    assert export.n_synapses == 0
    # simulate says why: the export's recorded reason, not only that the circuit is empty
    with pytest.raises(InputError, match=r"sonata: the circuit has no neurons, nothing to simulate: the export kept "
                                         r"no synapse \(the synapse table .*none\.csv has no rows\); export again"):
        run_simulate(run)
    assert not (run / "simulation").exists()


def test_empty_proxy_export_says_why_in_simulate(tmp_path):
    run = chain_run(tmp_path)
    export = run_export(run, "sonata", config=ExportConfig(delays=False, proxy_min_area_nm2=1e12))
    assert export.n_nodes == 0 and export.empty_reason.startswith("the contact PROXY found no two segments")
    with pytest.raises(InputError) as caught:
        run_simulate(run)
    assert f"the export kept no synapse ({export.empty_reason})" in str(caught.value)
    assert "\n" not in str(caught.value) and not (run / "simulation").exists()
