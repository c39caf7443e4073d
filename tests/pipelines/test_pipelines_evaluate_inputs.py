"""Evaluate on a lab's first day: raw EM given as gt is refused before anything is scored or
written, a damaged chunk is named, the terminal table marks the best row, and the warning about
skeleton nodes outside the volume comes once, not once per threshold."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from rich.console import Console

from axonseg.config import IngestConfig
from axonseg.errors import InputError
from axonseg.io import Volume, create_multiscale, mark_complete, open_level, open_volume, write_block
from axonseg.io.luts import write_luts
from axonseg.pipelines.evaluate import EvaluateConfig, evaluate_arrays_blockwise, evaluate_run
from axonseg.pipelines.labels import intensity_evidence
from axonseg.pipelines.evaluate.report import print_summary, summary_table
from axonseg.pipelines.ingest import ingest_volume
from axonseg.pipelines.synth import write_skeletons

REPO = Path(__file__).resolve().parents[2]
HELDOUT = REPO / "data" / "fib_medulla_heldout.h5"
VOXEL = (30.0, 6.0, 6.0)
SHAPE = (12, 40, 96)
BLOCKS = EvaluateConfig(block_shape=(6, 20, 48))


def tubes(extra_x: int = 0) -> tuple[np.ndarray, dict]:
    """Six 3x3-voxel tubes along x (ids 1..6) and their centre lines (nm, zyx); ``extra_x``
    centre-line nodes continue past the volume's far x face."""
    gt = np.zeros(SHAPE, np.uint32)
    skeletons = {}
    x = np.arange(2, SHAPE[2] - 2)
    centre_x = np.arange(2, SHAPE[2] - 2 + extra_x)
    for tube, (z, y) in enumerate([(2, 3), (2, 9), (2, 15), (2, 21), (2, 27), (2, 33)], start=1):
        gt[z - 1 : z + 2, y - 1 : y + 2, x[0] : x[-1] + 1] = tube
        nodes = np.stack([np.full(len(centre_x), z + 0.5), np.full(len(centre_x), y + 0.5), centre_x + 0.5], 1)
        skeletons[tube] = (nodes * np.asarray(VOXEL), np.stack([np.arange(len(centre_x) - 1), np.arange(1, len(centre_x))], 1))
    return gt, skeletons


def write(store: Path, name: str, data: np.ndarray) -> str:
    create_multiscale(store, name, data.shape, data.dtype, VOXEL, chunk_shape=(6, 20, 48))
    write_block(open_level(store, name), data, (0, 0, 0))
    mark_complete(store, name)
    return str(store / name)


def em_of(gt: np.ndarray, seed: int = 0) -> np.ndarray:
    """A raw EM-like image of the labels: bright objects on grey, with shot noise (uint8)."""
    rng = np.random.default_rng(seed)
    return np.clip(110 + 70 * (gt > 0) + rng.normal(0, 18, gt.shape), 0, 255).astype(np.uint8)


@pytest.fixture
def evaluated_run(tmp_path: Path) -> tuple[Path, str, np.ndarray]:
    """A run with three LUT thresholds, evaluated once against proper gt (reports exist)."""
    gt, skeletons = tubes()
    address = write(tmp_path / "gt.zarr", "labels", gt)
    write_skeletons(tmp_path / "gt.zarr", skeletons, VOXEL)
    fragments = gt.astype(np.uint64) * 10
    fragments[:, :, 48:] += (fragments[:, :, 48:] > 0).astype(np.uint64)
    ids = np.unique(fragments[fragments > 0])
    run = tmp_path / "run"
    write(run / "volume.zarr", "fragments", fragments)
    write_luts(run, {0.2: (ids, ids), 0.5: (ids, ids // 10), 0.9: (ids, np.ones_like(ids))})
    evaluate_run(run, address, BLOCKS, show_progress=False)
    return run, address, gt


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_raw_em_as_gt_is_refused_and_the_reports_stay(tmp_path: Path, evaluated_run) -> None:
    run, _, gt = evaluated_run
    raw = write(tmp_path / "em.zarr", "raw", em_of(gt))
    before = _snapshot(run)
    with pytest.raises(InputError) as caught:
        evaluate_run(run, raw, BLOCKS, show_progress=False)
    message = str(caught.value)
    assert message.startswith(f"gt {raw} looks like image intensities, not labels (")
    assert message.endswith("expected a label array (one integer id per object, 0 = unlabelled); nothing was scored or written")
    assert "\n" not in message
    assert _snapshot(run) == before  # reports/, best_threshold.json and the skeleton cache untouched


def test_real_fib_raw_is_refused_and_its_labels_pass(tmp_path: Path) -> None:
    raw = open_volume(f"{HELDOUT}:raw")
    labels = open_volume(f"{HELDOUT}:labels")
    assert intensity_evidence(labels) is None
    evidence = intensity_evidence(raw)
    assert evidence is not None and evidence.startswith("9")  # 95% of neighbour pairs differ in the real crop
    out = tmp_path / "score.json"
    with pytest.raises(InputError, match=r"gt .*fib_medulla_heldout\.h5.*raw looks like image intensities, not labels "
                                         r"\(\d+% of neighbouring voxels differ and a central 16x128x128 sample has \d+ "
                                         r"distinct values"):
        evaluate_arrays_blockwise(f"{HELDOUT}:labels", f"{HELDOUT}:raw", json_out=out, show_progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_ingested_raw_is_refused_by_its_metadata(tmp_path: Path) -> None:
    gt, _ = tubes()
    flat = np.where(gt > 0, 200, 40).astype(np.uint8)  # two grey values: the texture alone would pass
    ingest_volume(Volume(da.from_array(flat), VOXEL), tmp_path / "em.zarr", "raw",
                  IngestConfig(voxel_size=VOXEL, chunk_shape=(6, 20, 48), kind="raw", levels=0), show_progress=False)
    volume = open_volume(tmp_path / "em.zarr" / "raw")
    assert intensity_evidence(volume) == "its metadata records it as a raw image (kind: raw)"


def test_random_test_labels_are_not_called_an_image() -> None:
    labels = np.random.default_rng(0).integers(0, 5, SHAPE).astype(np.uint8)  # noisy, but five values
    assert intensity_evidence(Volume(da.from_array(labels), VOXEL, store_array=labels)) is None


def test_cli_refuses_raw_gt_in_one_line(tmp_path: Path) -> None:
    gt, _ = tubes()
    np.save(tmp_path / "gt.npy", gt)
    np.save(tmp_path / "em.npy", em_of(gt))
    result = subprocess.run([sys.executable, "-m", "axonseg.cli", "-q", "evaluate", "--pred", str(tmp_path / "gt.npy"),
                             "--gt", str(tmp_path / "em.npy"), "--voxel-size", *map(str, VOXEL), "--json",
                             str(tmp_path / "out.json")], check=False, capture_output=True, text=True, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"error: gt {tmp_path / 'em.npy'} looks like image intensities, not labels")
    assert not (tmp_path / "out.json").exists()


def test_truncated_chunk_is_named_by_evaluate(evaluated_run) -> None:
    run, address, _ = evaluated_run
    chunk = run / "volume.zarr" / "fragments" / "s0" / "c" / "0" / "1" / "0"  # z 0..6, y 20..40, x 0..48: tubes 4-6
    chunk.write_bytes(chunk.read_bytes()[:20])
    report = (run / "reports" / "evaluation.json").read_bytes()
    with pytest.raises(InputError, match=r"run/volume\.zarr/fragments/s0 chunk c/0/1/0 is damaged \(Zstd decompression "
                                         r"error: invalid input data\): re-run `axonseg segment` for this run to recompute it$"):
        evaluate_run(run, address, BLOCKS, scheduler="threads:2", show_progress=False)
    assert (run / "reports" / "evaluation.json").read_bytes() == report


def test_terminal_table_marks_the_best_row_without_colour(evaluated_run) -> None:
    run, _, _ = evaluated_run
    document = json.loads((run / "reports" / "evaluation.json").read_text())
    assert document["best_threshold"] == 0.5
    for encoding, marker in (("utf-8", "\u2605"), ("ascii", "*")):
        buffer = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
        console = Console(file=buffer, width=160, color_system=None, force_terminal=False, legacy_windows=False)
        print_summary(document["rows"], document["best"], console)
        buffer.seek(0)
        text = buffer.read()
        rows = {line.split("\u2502" if encoding == "utf-8" else "|")[2].strip(): line for line in text.splitlines()
                if any(f" {t} " in line for t in ("0.2", "0.5", "0.9"))}
        assert set(rows) == {"0.2", "0.5", "0.9"}, text
        assert marker in rows["0.5"] and marker not in rows["0.2"] and marker not in rows["0.9"]
    assert summary_table(document["rows"], document["best"]).caption == "\u2605 = the best row"
    assert summary_table(document["rows"], None).caption is None


def test_nodes_outside_the_volume_are_warned_about_once(tmp_path: Path, caplog) -> None:
    gt, skeletons = tubes(extra_x=5)  # centre lines run to x = 98: the nodes at x = 96, 97, 98 lie outside
    address = write(tmp_path / "gt.zarr", "labels", gt)
    write_skeletons(tmp_path / "gt.zarr", skeletons, VOXEL)
    ids = np.arange(1, 7, dtype=np.uint64)
    run = tmp_path / "run"
    write(run / "volume.zarr", "fragments", gt.astype(np.uint64))
    write_luts(run, {0.2: (ids, ids), 0.5: (ids, ids), 0.9: (ids, np.ones_like(ids))})
    with caplog.at_level(logging.WARNING):
        report = evaluate_run(run, address, BLOCKS, show_progress=False)
    assert len(report.rows) == 3
    warnings = [r.getMessage() for r in caplog.records if "skeleton nodes lie outside" in r.getMessage()]
    assert warnings == [f"{6 * 3} of {6 * 97} skeleton nodes lie outside the evaluated blocks; scored as background"]
    assert all(result.n_nodes_outside == 6 * 3 for result in report.results.values())
