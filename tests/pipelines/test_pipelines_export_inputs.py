"""Export on a lab's first day: unreadable tables, damaged chunks and empty connectomes give one line
or a loud warning; ``segment``'s export gives way to ``export --format all``."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from axonseg.errors import ConfigError, InputError, OutputExistsError
from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.io.sonata import read_sonata
from axonseg.pipelines.export import ExportConfig, load_export_config, run_export

VOXEL = (30.0, 8.0, 8.0)
NO_DELAYS = ExportConfig(delays=False)
COLUMNS = ["pre_z_nm", "pre_y_nm", "pre_x_nm", "post_z_nm", "post_y_nm", "post_x_nm"]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """Segments 1 (x < 20), 2 (x >= 20, y < 20) and 3 (x >= 20, y >= 20) in 4x16x16 chunks."""
    labels = np.zeros((8, 40, 40), np.uint64)
    labels[:, :, :20], labels[:, :20, 20:], labels[:, 20:, 20:] = 1, 2, 3
    run = tmp_path / "run"
    store = run / "volume.zarr"
    create_multiscale(store, "segmentation", labels.shape, labels.dtype, VOXEL, chunk_shape=(4, 16, 16))
    write_block(open_level(store, "segmentation"), labels, (0, 0, 0))
    mark_complete(store, "segmentation")
    return run


def table(path: Path, rows: list[list[float]]) -> Path:
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def two_synapses(path: Path) -> Path:
    """1 -> 2 and 2 -> 3, points in nm (zyx)."""
    return table(path, [[75.0, 84.0, 52.0, 75.0, 84.0, 280.0], [75.0, 84.0, 236.0, 75.0, 244.0, 236.0]])


def _axonseg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "axonseg.cli", *args], check=False, capture_output=True, text=True, timeout=300)


def _nothing_written(run: Path) -> bool:
    return not any((run / name).exists() for name in ("connectome", "connectome.tmp"))


def test_empty_synapse_csv_is_one_line_before_the_work(run: Path, tmp_path: Path) -> None:
    empty = tmp_path / "synapses.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"synapse table .*synapses\.csv is empty \(0 bytes\): expected a header row"):
        run_export(run, "csv", empty, config=NO_DELAYS)
    assert _nothing_written(run)
    config = tmp_path / "export.yaml"
    config.write_text("delays: false\n")
    result = _axonseg("-q", "export", str(run), "--synapses", str(empty), "--format", "csv", "--config", str(config))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0] == f"error: synapse table {empty} is empty (0 bytes): expected a header row and one row per entry"


@pytest.mark.parametrize(("case", "error", "message"), [
    ("target", ConfigError, r"^--target 'loihi': expected one of \['brainscales2'\]$"),
    ("missing table", InputError, r"^synapse table .*nope\.csv: file not found$"),
    ("suffix", InputError, r"^synapse table .*syn\.xlsx: unknown suffix '\.xlsx': expected one of \['\.csv', "),
    ("no synth synapses", InputError, r"^.*gt\.zarr: no synapses group; write it with `axonseg synth` \(or give a CSV"),
    ("empty sign table", InputError, r"^sign table .*signs\.csv is empty \(0 bytes\): expected a header row"),
])
def test_bad_export_arguments_are_one_line_before_the_work(run: Path, tmp_path: Path, case: str, error, message) -> None:
    synapses, target, config = two_synapses(tmp_path / "syn.csv"), None, NO_DELAYS
    if case == "target":
        target = "loihi"
    elif case == "missing table":
        synapses = tmp_path / "nope.csv"
    elif case == "suffix":
        synapses = tmp_path / "syn.xlsx"
        synapses.write_text("not a table")
    elif case == "no synth synapses":
        synapses = tmp_path / "gt.zarr"
        synapses.mkdir()
    else:
        (tmp_path / "signs.csv").write_bytes(b"")
        config = ExportConfig(delays=False, sign_table=str(tmp_path / "signs.csv"))
    with pytest.raises(error, match=message) as caught:
        run_export(run, "csv", synapses, target=target, config=config)
    assert "\n" not in str(caught.value) and _nothing_written(run)


def test_bad_weight_by_in_the_config_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "export.yaml"
    path.write_text("weight_by: volume\n")
    with pytest.raises(ConfigError, match=r"export\.yaml: key 'weight_by': .*weight_by must be 'count' or 'size' \(got 'volume'\)"):
        load_export_config(path)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.csv", b'pre_z_nm,pre_y_nm\n"1.0,2\n', r"broken\.csv cannot be read as CSV \(Error tokenizing"),
    ("notparquet.parquet", b"PAR1 but not really", r"notparquet\.parquet cannot be read as parquet \("),
    ("latin1.csv", "pré_z\n1\n".encode("latin-1"), r"latin1\.csv cannot be read as CSV \('utf-8' codec"),
])
def test_unreadable_synapse_tables_are_one_line(run: Path, tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        run_export(run, "csv", path, config=NO_DELAYS)
    assert _nothing_written(run)


def test_truncated_segmentation_chunk_is_named_by_export(run: Path, tmp_path: Path) -> None:
    chunk = run / "volume.zarr" / "segmentation" / "s0" / "c" / "1" / "0" / "0"  # z 4..8, y 0..16, x 0..16
    chunk.write_bytes(chunk.read_bytes()[:9])
    synapses = table(tmp_path / "syn.csv", [[135.0, 84.0, 52.0, 135.0, 84.0, 280.0]])  # pre at voxel (4, 10, 6)
    with pytest.raises(InputError) as caught:
        run_export(run, "csv", synapses, config=NO_DELAYS)
    assert str(caught.value).startswith(f"{run}/volume.zarr/segmentation/s0 chunk c/1/0/0 is damaged (Zstd")
    assert str(caught.value).endswith("re-run `axonseg segment` for this run to recompute it")
    assert _nothing_written(run)
    # the contact PROXY reads every block: the same line
    with pytest.raises(InputError, match=r"segmentation/s0 chunk c/1/0/0 is damaged"):
        run_export(run, "csv", config=NO_DELAYS)
    assert _nothing_written(run)


@pytest.mark.parametrize(("rows", "proxy_area", "reason"), [
    ([], None, r"the synapse table .*syn\.csv has no rows"),
    ([[np.nan] * 6, [np.nan] * 6, [np.nan] * 6], None, r"all 3 synapses of .*syn\.csv were dropped \(3 nan coordinates\)"),
    (None, 1e12, r"the contact PROXY found no two segments touching over at least 1e\+12 nm\^2"),
])
def test_empty_connectome_warns_and_records_why(run: Path, tmp_path: Path, caplog, rows, proxy_area, reason) -> None:
    synapses = None if rows is None else table(tmp_path / "syn.csv", rows)
    config = NO_DELAYS if proxy_area is None else ExportConfig(delays=False, proxy_min_area_nm2=proxy_area)
    with caplog.at_level(logging.WARNING):
        result = run_export(run, "sonata", synapses, config=config)
    assert result.n_nodes == 0 and result.n_synapses == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "EMPTY" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].startswith("export: the connectome is EMPTY (0 neurons, 0 synapses): ")
    assert result.empty_reason is not None and re.search(reason, result.empty_reason)
    assert json.loads((run / "connectome" / "export.json").read_text())["empty_reason"] == result.empty_reason
    assert len(read_sonata(run / "connectome" / "sonata").nodes) == 0


def test_a_connectome_with_synapses_has_no_empty_reason(run: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        result = run_export(run, "csv", two_synapses(tmp_path / "syn.csv"), config=NO_DELAYS)
    assert result.n_synapses == 2 and result.n_nodes == 3 and result.empty_reason is None
    assert "EMPTY" not in caplog.text


def test_export_all_replaces_the_export_segment_wrote_but_not_its_own(run: Path, tmp_path: Path) -> None:
    synapses = two_synapses(tmp_path / "syn.csv")
    run_export(run, ["sonata"], synapses, config=NO_DELAYS, overwrite=True, written_by="segment")
    assert json.loads((run / "connectome" / "export.json").read_text())["written_by"] == "segment"
    result = run_export(run, "all", synapses, config=NO_DELAYS)  # right after segment: no --overwrite needed
    assert {p.name for p in (run / "connectome").iterdir()} >= {"sonata", "nir", "edges.csv", "pynn.csv"}
    assert result.report["written_by"] == "export" and result.n_synapses == 2
    with pytest.raises(OutputExistsError, match=r"connectome exists already \(written by `axonseg export`\); "
                                                r"pass --overwrite to replace it"):
        run_export(run, "csv", synapses, config=NO_DELAYS)
    assert (run / "connectome" / "nir").is_dir()  # the refused export changed nothing


def test_export_of_unknown_origin_is_kept(run: Path, tmp_path: Path) -> None:
    (run / "connectome").mkdir()
    (run / "connectome" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"connectome exists already; pass --overwrite"):
        run_export(run, "csv", two_synapses(tmp_path / "syn.csv"), config=NO_DELAYS)
    assert (run / "connectome" / "notes.txt").read_text() == "mine"


@pytest.mark.slow
def test_after_segment_export_all_needs_no_overwrite_and_a_damaged_chunk_is_recomputed(tmp_path: Path) -> None:
    """The whole first day through the CLI: segment, `export --format all` (no --overwrite), a
    truncated segmentation chunk named in one line, and segment again recomputing it."""
    from axonseg.model import ModelConfig, build_model, save_model
    from axonseg.pipelines.segment.pipeline import PipelineConfig, run_segment

    _, y, x = np.meshgrid(np.arange(16), np.arange(48), np.arange(48), indexing="ij")
    raw = np.where((y % 16 == 0) | (x % 16 == 0), 40, 200).astype(np.uint8)
    store = tmp_path / "in.zarr"
    create_multiscale(store, "raw", raw.shape, np.uint8, (10, 10, 10), chunk_shape=(16, 48, 48))
    write_block(open_level(store, "raw"), raw, (0, 0, 0))
    mark_complete(store, "raw")
    model_config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(10, 10, 10))
    save_model(build_model(model_config, seed=0), tmp_path / "model.pt")
    config = PipelineConfig.model_validate({
        "predict": {"block_shape": [8, 24, 24]},
        "segment": {"block_shape": [8, 24, 24], "agglomerate": {"thresholds": [0.3, 0.6]}},
        "skeletonize": {"block_shape": [16, 48, 48]},
        "export": {"proxy_min_area_nm2": 100.0},
    })
    run = tmp_path / "run"
    run_segment(store / "raw", run, config, tmp_path / "model.pt", show_progress=False)
    segmentation = open_level(run / "volume.zarr", "segmentation", mode="r")[:]
    export_config = tmp_path / "export.yaml"
    export_config.write_text("proxy_min_area_nm2: 100.0\n")
    after_segment = _axonseg("-q", "export", str(run), "--format", "all", "--config", str(export_config))
    assert after_segment.returncode == 0, after_segment.stderr
    assert {"sonata", "nir", "edges.csv", "pynn.csv"} <= {p.name for p in (run / "connectome").iterdir()}

    chunks = sorted(p for p in (run / "volume.zarr" / "segmentation" / "s0" / "c").rglob("*") if p.is_file())
    damaged = chunks[0]
    damaged.write_bytes(damaged.read_bytes()[:9])
    key = "c/" + "/".join(damaged.relative_to(run / "volume.zarr" / "segmentation" / "s0" / "c").parts)
    refused = _axonseg("-q", "export", str(run), "--format", "csv", "--overwrite", "--config", str(export_config))
    lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]  # after the PROXY warning
    assert refused.returncode == 1 and len(lines) == 1 and "Traceback" not in refused.stderr
    assert lines[0].startswith(f"error: {run}/volume.zarr/segmentation/s0 chunk {key} is damaged (Zstd")
    assert lines[0].endswith("re-run `axonseg segment` for this run to recompute it")

    run_segment(store / "raw", run, config, tmp_path / "model.pt", show_progress=False)  # as the message says
    np.testing.assert_array_equal(open_level(run / "volume.zarr", "segmentation", mode="r")[:], segmentation)
    assert run_export(run, "csv", config=ExportConfig(delays=False, proxy_min_area_nm2=100.0), overwrite=True).n_nodes > 0
