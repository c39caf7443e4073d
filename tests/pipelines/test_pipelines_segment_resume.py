"""``axonseg segment`` survives what happens to real runs (issue #8): a SIGKILL in any blockwise
stage, a changed config, chunks deleted or truncated after the run, a full disk, a missing
input and a run folder that belongs to another run. Every case must end with a segmentation
bitwise equal to an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from axonseg.errors import ConfigError, InputError, OutputExistsError, StageError
from axonseg.io import group_attrs, open_level
from fault_injection import DRIVER
from segment_runs import error_lines
from axonseg.model import ModelConfig, build_model, save_model
from axonseg.pipelines.segment.pipeline import load_pipeline_config, restart_plan, run_segment
from axonseg.pipelines.synth import write_synth

CONFIG = """\
predict: {block_shape: [8, 48, 48], precision: float32}
segment:
  block_shape: [8, 48, 48]
  agglomerate: {thresholds: [0.3, 0.6]}
  relabel_threshold: 0.6
skeletonize: {block_shape: [8, 48, 48], context: [2, 8, 8]}
formats: [csv]
"""
SHAPE = (16, 96, 96)  # voxels, zyx: 8 blocks in every blockwise stage
N_BLOCKS = 8
ENV = {**os.environ, "COLUMNS": "200"}  # rich wraps log lines at the terminal width
# Runs the CLI's own entry point; a short sleep after each done marker only widens the window
# in which the test can kill the process with markers on disk and the stage unfinished.
SLOW_DRIVER = """\
import sys, time
from axonseg.blockwise.markers import DoneMarkers
original = DoneMarkers.mark_done
def mark_done(self, block):
    original(self, block)
    time.sleep(0.15)
DoneMarkers.mark_done = mark_done
from axonseg.cli import main
sys.argv = ["axonseg", *sys.argv[1:]]
main()
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A 16 x 96 x 96 synthetic volume at 30 x 8 x 8 nm, a tiny random-weights model and a
    pipeline config with 8 blocks in each blockwise stage."""
    root = tmp_path_factory.mktemp("resume_inputs")
    write_synth(root / "in.zarr", SHAPE, (30.0, 8.0, 8.0), seed=0, show_progress=False)
    model_config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(30, 8, 8))
    save_model(build_model(model_config, seed=0), root / "model.pt")
    (root / "pipeline.yaml").write_text(CONFIG)
    return {"raw": root / "in.zarr" / "raw", "model": root / "model.pt", "config": root / "pipeline.yaml", "root": root}


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """An uninterrupted run of the same command."""
    run = tmp_path_factory.mktemp("reference") / "run"
    run_segment(inputs["raw"], run, load_pipeline_config(inputs["config"]), inputs["model"], show_progress=False)
    return run


def segment_args(inputs: dict[str, Path], run: Path, *extra: str) -> list[str]:
    return ["segment", str(inputs["raw"]), "--out", str(run), "--config", str(inputs["config"]),
            "--model", str(inputs["model"]), *extra]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "axonseg.cli", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=300)


def cli_in_process(args: list[str], monkeypatch, capsys) -> tuple[int, str]:  # noqa: ANN001
    """Run ``axonseg.cli.main`` in this process (no interpreter start-up): exit code and stderr."""
    import logging

    from axonseg.cli import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    monkeypatch.setattr(sys, "argv", ["axonseg", *args])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    finally:
        root.handlers[:] = handlers  # the CLI installs its own logging; give pytest's back
        root.setLevel(level)
    return code, capsys.readouterr().err


def segmentation_digest(run: Path) -> tuple[np.ndarray, str]:
    """The segmentation's voxels and a sha256 over its chunk files (names and bytes)."""
    folder = run / "volume.zarr" / "segmentation" / "s0"
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "zarr.json"):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return open_level(run / "volume.zarr", "segmentation", mode="r")[:], digest.hexdigest()


def assert_same_segmentation(run: Path, reference: Path) -> None:
    voxels, digest = segmentation_digest(run)
    expected_voxels, expected_digest = segmentation_digest(reference)
    np.testing.assert_array_equal(voxels, expected_voxels)
    assert digest == expected_digest  # bitwise: the very same chunk files


def stage_unfinished(run: Path, stage: str) -> bool:
    if stage == "graph":
        return json.loads((run / "graph" / "graph.json").read_text())["complete"] is False
    if stage == "skeletonize":
        return not (run / "skeletons" / "nodes.parquet").exists()
    group = {"predict": "affinities", "fragments": "fragments", "relabel": "segmentation"}[stage]
    return group_attrs(run / "volume.zarr", group)["complete"] is False


def kill_at_first_marker(args: list[str], markers: Path, timeout: float = 240.0) -> int:
    """Start the CLI, SIGKILL it as soon as ``markers`` holds a done marker; return how many
    markers were on disk afterwards."""
    process = subprocess.Popen([sys.executable, "-c", SLOW_DRIVER, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=ENV, text=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if markers.is_dir() and any(not p.name.startswith("_") for p in markers.iterdir()):
                break
            time.sleep(0.01)
        assert process.poll() is None, f"the run ended before {markers} had a marker: {process.stderr.read()[-2000:]}"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert process.returncode == -signal.SIGKILL
    return sum(1 for p in markers.iterdir() if not p.name.startswith("_"))


KILL_STAGES = [
    pytest.param("predict", marks=pytest.mark.slow),
    "fragments",
    pytest.param("graph", marks=pytest.mark.slow),
    pytest.param("relabel", marks=pytest.mark.slow),
    pytest.param("skeletonize", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("stage", KILL_STAGES)
def test_sigkill_mid_stage_then_same_command_resumes_bitwise(stage, inputs, reference, tmp_path) -> None:
    run = tmp_path / "run"
    done = kill_at_first_marker(segment_args(inputs, run), run / "blocks" / stage)
    assert 1 <= done < N_BLOCKS and stage_unfinished(run, stage)  # really mid-stage
    result = cli(*segment_args(inputs, run))
    assert result.returncode == 0, result.stderr[-3000:]
    line = f"{stage}: resuming: {done} of {N_BLOCKS} blocks already done, skipped"
    assert line in result.stderr  # on the terminal
    assert line in (run / "run.log").read_text()  # and in the run's log
    assert not (run / "blocks").exists()
    assert_same_segmentation(run, reference)
    if stage == "skeletonize":
        import pandas as pd

        pd.testing.assert_frame_equal(pd.read_parquet(run / "skeletons" / "nodes.parquet"),
                                      pd.read_parquet(reference / "skeletons" / "nodes.parquet"))


@pytest.mark.slow
def test_sigkill_mid_evaluate_then_same_command_resumes_to_the_same_report(inputs, reference, tmp_path) -> None:
    """evaluate is a declared stage too: killed with blocks done, the same command skips them and
    writes the report an uninterrupted evaluation writes."""
    config = tmp_path / "evaluate.yaml"
    config.write_text("block_shape: [8, 48, 48]\nskeleton: {dust_threshold: 10, const: 60.0}\n")
    gt = str(inputs["raw"].parent / "labels")
    runs = {}
    for name in ("straight", "killed"):
        runs[name] = tmp_path / name
        shutil.copytree(reference, runs[name])
        shutil.rmtree(runs[name] / "reports", ignore_errors=True)
    args = lambda run: ["evaluate", str(run), "--gt", gt, "--config", str(config)]  # noqa: E731
    assert cli(*args(runs["straight"])).returncode == 0
    done = kill_at_first_marker(args(runs["killed"]), runs["killed"] / "blocks" / "evaluate")
    assert 1 <= done < N_BLOCKS
    result = cli(*args(runs["killed"]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"evaluate: resuming: {done} of {N_BLOCKS} blocks already done, skipped" in result.stderr
    reports = [json.loads((runs[name] / "reports" / "evaluation.json").read_text()) for name in ("straight", "killed")]
    assert reports[0]["rows"] == reports[1]["rows"] and len(reports[0]["rows"]) == 2


def changed_config(tmp_path: Path) -> Path:
    changed = tmp_path / "changed.yaml"
    changed.write_text(CONFIG.replace("thresholds: [0.3, 0.6]", "thresholds: [0.3, 0.5, 0.6]"))
    return changed


def test_changed_config_is_refused_in_one_line_naming_the_key(inputs, reference, tmp_path, monkeypatch, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    args = ["segment", str(inputs["raw"]), "--out", str(run), "--config", str(changed_config(tmp_path)),
            "--model", str(inputs["model"])]
    code, stderr = cli_in_process(args, monkeypatch, capsys)
    assert code == 1 and "Traceback" not in stderr
    lines = error_lines(stderr)  # one error line, the last (a progress line may come before it)
    assert len(lines) == 1, stderr
    assert lines[0] == (f"error: {run} was made with another config or input (changed: segment.agglomerate.thresholds): "
                        "pass --restart to redo it with these, or choose another --out")
    assert (run / "config.yaml").read_text() == (reference / "config.yaml").read_text()  # nothing touched


@pytest.mark.slow
def test_changed_config_is_refused_by_the_real_command(inputs, reference, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    result = cli("segment", str(inputs["raw"]), "--out", str(run), "--config", str(changed_config(tmp_path)),
                 "--model", str(inputs["model"]))
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1 and "(changed: segment.agglomerate.thresholds)" in lines[0]


def test_changed_config_runs_with_restart(inputs, reference, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    config = load_pipeline_config(changed_config(tmp_path))
    restarted = run_segment(inputs["raw"], run, config, inputs["model"], restart=True, show_progress=False)
    assert restarted.threshold == 0.6
    luts = json.loads((run / "luts" / "index.json").read_text())["luts"]
    assert sorted(float(e["threshold"]) for e in luts) == [0.3, 0.5, 0.6]
    log = (run / "run.log").read_text()
    assert "--restart with changed segment.agglomerate.thresholds: starting segment, evaluate, skeletonize again" in log
    assert "predict: up to date" in log  # the affinities do not depend on the thresholds
    # the same raw, model and relabel threshold: the segmentation is the one of the first run
    np.testing.assert_array_equal(segmentation_digest(run)[0], segmentation_digest(reference)[0])


@pytest.mark.parametrize(("changed", "restarted"), [
    (["segment.agglomerate.thresholds"], {"segment", "evaluate", "skeletonize"}),
    (["raw.address", "segment.block_shape"], {"predict", "segment", "evaluate", "skeletonize"}),
    (["skeletonize.context"], {"skeletonize"}),
    (["formats"], set()),  # the export is rewritten on every run anyway
    ([], {"predict", "segment", "evaluate", "skeletonize"}),  # --restart alone: everything again
])
def test_restart_starts_again_from_the_first_changed_stage(changed, restarted) -> None:
    plan = restart_plan(changed, restart=True)
    assert {name for name, again in plan.items() if again} == restarted
    assert not any(restart_plan(changed, restart=False).values())


def test_missing_and_truncated_chunks_are_detected_and_recomputed(inputs, reference, tmp_path, caplog) -> None:
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    store = run / "volume.zarr"
    before = {name: open_level(store, name, mode="r")[:] for name in ("affinities", "fragments")}
    deleted = store / "fragments" / "s0" / "c" / "1" / "0" / "1"
    deleted.unlink()
    truncated = store / "affinities" / "s0" / "c" / "0" / "1" / "1" / "0"
    truncated.write_bytes(truncated.read_bytes()[:10])
    with caplog.at_level("INFO", logger="axonseg"):
        run_segment(inputs["raw"], run, load_pipeline_config(inputs["config"]), inputs["model"], show_progress=False)
    log = (run / "run.log").read_text()
    assert "volume.zarr/fragments/s0/c/1/0/1: missing" in log
    assert re.search(r"volume.zarr/affinities/s0/c/0/1/1/0: 10 bytes, expected \d+", log)
    assert "predict: resuming: 7 of 8 blocks already done, skipped" in log
    assert "fragments: resuming: 7 of 8 blocks already done, skipped" in log
    assert truncated.stat().st_size > 10 and deleted.exists()
    for name, values in before.items():
        np.testing.assert_array_equal(open_level(store, name, mode="r")[:], values)
    assert_same_segmentation(run, reference)


def test_full_disk_is_one_line_then_resumes_bitwise(inputs, reference, tmp_path, monkeypatch, capsys, full_disk) -> None:
    run = tmp_path / "run"
    disk = full_disk("affinities/s0", 4)
    code, stderr = cli_in_process(["-q", *segment_args(inputs, run)], monkeypatch, capsys)
    assert code == 1 and "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and stderr.strip().splitlines()[-1] == errors[0], stderr
    assert re.fullmatch(
        rf"error: disk full while writing {re.escape(str(run / 'volume.zarr' / 'affinities'))} \(block \d+-\d+-\d+ of 8\): "
        r"free space and re-run the same command to resume", errors[0]), errors[0]
    # nothing half-written is marked: the three blocks written before the disk filled, no more
    assert group_attrs(run / "volume.zarr", "affinities")["complete"] is False
    assert len(list((run / "blocks" / "predict").glob("[0-9]*"))) == 3
    disk.off()
    run_segment(inputs["raw"], run, load_pipeline_config(inputs["config"]), inputs["model"], show_progress=False)
    assert "predict: resuming: 3 of 8 blocks already done, skipped" in (run / "run.log").read_text()
    assert_same_segmentation(run, reference)


@pytest.mark.slow
def test_full_disk_in_the_real_command_is_one_line(inputs, tmp_path) -> None:
    run = tmp_path / "run"
    driver = DRIVER.format(tests=str(Path(__file__).resolve().parents[1]))
    result = subprocess.run([sys.executable, "-c", driver, "fragments/s0:4", "-q", *segment_args(inputs, run)],
                            capture_output=True, text=True, env=ENV, timeout=300)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]
    assert errors[0].startswith(f"error: disk full while writing {run / 'volume.zarr' / 'fragments'} (block ")


def test_full_disk_in_a_blockwise_stage_names_block_and_output(inputs, reference, tmp_path, full_disk) -> None:
    run = tmp_path / "run"
    config = load_pipeline_config(inputs["config"])
    disk = full_disk("fragments/s0", 4)
    with pytest.raises(StageError, match=r"disk full while writing .*volume.zarr/fragments \(block \d+-\d+-\d+ of 8\)") as err:
        run_segment(inputs["raw"], run, config, inputs["model"], show_progress=False)
    failed = re.search(r"\(block (\d+-\d+-\d+) of 8\)", str(err.value)).group(1)
    assert (run / "blocks" / "fragments").is_dir()
    assert not (run / "blocks" / "fragments" / failed).exists()  # the block whose write failed is not done
    assert group_attrs(run / "volume.zarr", "fragments")["complete"] is False
    assert "ERROR" in (run / "run.log").read_text().splitlines()[-1]  # the log says why it stopped
    disk.off()
    run_segment(inputs["raw"], run, config, inputs["model"], show_progress=False)
    resumed = re.search(r"fragments: resuming: (\d) of 8 blocks already done, skipped", (run / "run.log").read_text())
    # three writes succeeded; blocks with nothing to write (empty affinities) are done without a
    # write, so more may be marked, but never the block whose write failed
    assert resumed and 1 <= int(resumed.group(1)) <= 7
    assert_same_segmentation(run, reference)


def test_missing_input_and_foreign_run_folders_are_refused(inputs, reference, tmp_path) -> None:
    config = load_pipeline_config(inputs["config"])
    with pytest.raises(InputError, match="missing.zarr"):
        run_segment(tmp_path / "missing.zarr" / "raw", tmp_path / "new", config, inputs["model"], show_progress=False)
    assert not (tmp_path / "new").exists()  # nothing written before the input is checked
    other = tmp_path / "other.zarr"
    write_synth(other, (16, 48, 48), (30.0, 8.0, 8.0), seed=1, show_progress=False)
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    with pytest.raises(ConfigError, match=r"changed: raw\.address, raw\.shape\).*--restart"):
        run_segment(other / "raw", run, config, inputs["model"], show_progress=False)
    with pytest.raises(InputError, match=r"model file .*elsewhere.pt does not exist"):  # checked before the folder
        run_segment(inputs["raw"], run, config, tmp_path / "elsewhere.pt", show_progress=False)
    shutil.copyfile(inputs["model"], tmp_path / "elsewhere.pt")
    with pytest.raises(ConfigError, match=r"changed: model\)"):
        run_segment(inputs["raw"], run, config, tmp_path / "elsewhere.pt", show_progress=False)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(OutputExistsError, match="holds no axonseg run"):
        run_segment(inputs["raw"], tmp_path / "photos", config, inputs["model"], show_progress=False)
    train = tmp_path / "train_out"
    train.mkdir()
    (train / "config.yaml").write_text("job: train\nconfig_hash: abc\nconfig: {}\n")
    with pytest.raises(OutputExistsError, match=r"another job \(train\)"):
        run_segment(inputs["raw"], train, config, inputs["model"], show_progress=False)
    assert_same_segmentation(run, reference)  # the refused calls changed nothing
