"""The CLI: --help with units for every command, and one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from axonseg.cli import app

runner = CliRunner()
CONTRACT = ["demo", "synth", "ingest", "train", "train-agglomeration", "predict", "agglomerate", "segment", "evaluate", "skeletonize", "export", "simulate", "proofread"]


def _axonseg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "axonseg.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("command", CONTRACT)
def test_every_contract_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize("command", ["synth", "ingest"])
def test_help_states_units(command: str) -> None:
    text = runner.invoke(app, [command, "--help"], terminal_width=200).output
    assert "nm" in text and "z y x" in text


def test_missing_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = _axonseg("ingest", str(tmp_path / "missing.h5:raw"), str(tmp_path / "out.zarr"), "--voxel-size", "30", "8", "8")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "missing.h5: no such file" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.zarr").exists()


def test_bad_voxel_size_names_the_parameter(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((4, 8, 8), np.uint8))
    result = _axonseg("ingest", str(tmp_path / "a.npy"), str(tmp_path / "out.zarr"), "--voxel-size", "0", "8", "8")
    assert result.returncode == 1 and "voxel_size" in result.stderr and "Traceback" not in result.stderr


def test_three_number_options_take_commas_too(tmp_path: Path) -> None:
    from axonseg.cli import split_triples

    assert split_triples(["predict", "in", "--block-shape", "64,128,128", "--voxel-size=30, 8, 8"]) == [
        "predict", "in", "--block-shape", "64", "128", "128", "--voxel-size", "30", "8", "8"]
    # the spaced form, other options and malformed values pass through untouched
    same = ["segment", "in", "--block-shape", "1", "2", "3", "--out", "4,5,6", "--shape", "a,b,c"]
    assert split_triples(same) == same
    # through the real entry point: the comma form reaches the same check as the spaced one
    np.save(tmp_path / "a.npy", np.zeros((4, 8, 8), np.uint8))
    result = _axonseg("ingest", str(tmp_path / "a.npy"), str(tmp_path / "out.zarr"), "--voxel-size", "0,8,8")
    assert result.returncode == 1 and "voxel_size" in result.stderr and "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = _axonseg("--debug", "ingest", str(tmp_path / "missing.npy"), str(tmp_path / "o.zarr"), "--voxel-size", "1", "1", "1")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_segment_with_missing_input_fails_cleanly(tmp_path: Path) -> None:
    result = _axonseg("segment", str(tmp_path / "raw.npy"), "--out", str(tmp_path / "run"))
    assert result.returncode == 1 and "raw.npy: no such file" in result.stderr and "Traceback" not in result.stderr


def test_ingest_then_existing_output_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8))
    first = _axonseg("-q", "ingest", str(tmp_path / "a.npy"), str(tmp_path / "out.zarr"), "--voxel-size", "30", "8", "8")
    assert first.returncode == 0, first.stderr
    second = _axonseg("-q", "ingest", str(tmp_path / "a.npy"), str(tmp_path / "out.zarr"), "--voxel-size", "30", "8", "8")
    assert second.returncode == 1 and "--overwrite" in second.stderr


def test_evaluate_pred_against_itself_writes_contract_json(tmp_path: Path) -> None:
    import json

    labels = np.zeros((12, 48, 48), dtype=np.uint32)
    labels[:, 8:20, 8:20] = 1  # two tubes along z
    labels[:, 28:40, 26:38] = 2
    np.save(tmp_path / "gt.npy", labels)
    result = _axonseg("-q", "evaluate", "--pred", str(tmp_path / "gt.npy"), "--gt", str(tmp_path / "gt.npy"),
                      "--voxel-size", "30", "8", "8", "--json", str(tmp_path / "out.json"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out.json").read_text())
    for key in ("erl_nm", "gt_erl_nm", "nerl", "voi_split", "voi_merge", "arand", "n_split", "n_merge"):
        assert key in summary
    assert summary["nerl"] == pytest.approx(1.0) and summary["voi_split"] == pytest.approx(0.0, abs=1e-9)
    assert summary["arand"] == pytest.approx(0.0, abs=1e-9) and summary["gt_erl_nm"] > 200


def test_evaluate_needs_run_or_pred(tmp_path: Path) -> None:
    result = _axonseg("evaluate", "--gt", str(tmp_path / "gt.npy"))
    assert result.returncode == 1 and "exactly one of RUN_DIR or --pred" in result.stderr


def test_full_disk_outside_a_block_is_one_line_with_the_resume_hint(tmp_path: Path, monkeypatch, capsys) -> None:
    """A write that is not a block (a table, a LUT, a report) filling the disk: main() prints one
    line naming the file, says how to resume, and exits 1 - for every command."""
    import errno
    import os

    import axonseg.pipelines.synth as synth
    from axonseg.cli import main

    table = tmp_path / "out.zarr" / "synapses.parquet"

    def full_disk(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(table))

    monkeypatch.setattr(synth, "write_synth", full_disk)
    monkeypatch.setattr(sys, "argv", ["axonseg", "synth", str(tmp_path / "out.zarr")])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {table}: {os.strerror(errno.ENOSPC)}: free space and re-run the same command to resume"
