"""``axonseg segment`` checks every input before its first stage and records every input
(issue #17): a model file that is not a model, a ground truth of another shape or without a
voxel size, a bad config or synapse table are one line before anything is written; the
recorded ground truth and synapses serve later jobs; a run that never finished a stage takes
the corrected command; the console ends with a table.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from axonseg.errors import InputError
from axonseg.skeleton.store import SkeletonStore
from axonseg.io import open_level, write_array
from axonseg.model import load_model
from axonseg.pipelines.segment.pipeline import check_run_dir, load_pipeline_config, run_segment
from axonseg.pipelines.synth import read_synth_synapses
from segment_runs import SHAPE, VOXEL_SIZE, error_lines, run_cli, segment_args, write_segment_inputs

MODEL_HELP = "expected a .pt written by `axonseg train` (model.pt) or axonseg.model.save_model"


def _run(args: list[str]) -> tuple[int, str, str]:
    result = run_cli(args)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("segment_inputs")
    found = write_segment_inputs(root)
    labels = open_level(found["store"], "labels", mode="r")[:]
    np.save(root / "gt.npy", labels)  # a ground truth whose file carries no voxel size
    found["gt_npy"] = root / "gt.npy"
    raw = open_level(found["store"], "raw", mode="r")[:].astype(np.float32) / 255
    raw[-1, -1, -1] = np.nan  # predict fails in its last block
    found["nan_raw"] = Path(write_array(root / "nan.zarr", "raw", raw, VOXEL_SIZE))
    return found


class Unsafe:
    """A pickle that would create a file when unpickled by a loader that runs any code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.target,))


def _bad_model(kind: str, folder: Path) -> tuple[Path, str]:
    """A file at ``--model`` that is no axonseg model, and the reason the message gives."""
    path = folder / f"{kind}.pt"
    if kind == "text":
        path.write_text("weights are on the lab's shared drive\n")
        return path, "it is a text file"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "it is empty, 0 bytes"
    if kind == "unsafe_pickle":
        torch.save({"model_config": "{}", "state_dict": Unsafe(folder / "pwned")}, path)
        return path, "torch cannot read it as plain weights"
    if kind == "tensor":
        torch.save(torch.zeros(3), path)
        return path, "it holds a Tensor, not a dict with model_config and state_dict"
    torch.save({"weights": torch.zeros(3)}, path)  # a dict from another program
    return path, "it has no model_config"


@pytest.mark.parametrize("kind", ["text", "empty", "unsafe_pickle", "tensor", "foreign_dict"])
def test_model_file_that_is_not_a_model_is_one_line_before_anything_is_written(kind, inputs, tmp_path) -> None:
    path, reason = _bad_model(kind, tmp_path)
    run = tmp_path / "run"
    args = ["segment", str(inputs["raw"]), "--out", str(run), "--config", str(inputs["config"]), "--model", str(path)]
    code, _, stderr = _run(args)
    assert code == 1 and "Traceback" not in stderr and "weights_only" not in stderr
    assert error_lines(stderr) == [f"error: model file {path} is not an axonseg model file ({reason}): {MODEL_HELP}"]
    assert not run.exists()  # checked before the run folder is made
    assert not (tmp_path / "pwned").exists()  # nothing in the file was executed
    with pytest.raises(InputError, match="is not an axonseg model file"):
        load_model(path)


def test_weights_that_do_not_fit_their_model_config_are_one_line(inputs, tmp_path) -> None:
    state = torch.load(inputs["model"], weights_only=True)
    state["state_dict"] = {key: value for key, value in list(state["state_dict"].items())[1:]}
    path = tmp_path / "cut.pt"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"cut.pt is not an axonseg model file \(its weights do not fit its "
                                         r"model_config: Missing key\(s\) in state_dict: \"unet\..*\): expected a \.pt"):
        load_model(path)


def test_gt_of_another_shape_is_refused_before_predict(inputs, tmp_path) -> None:
    labels = open_level(inputs["store"], "labels", mode="r")[:, :, :96]
    gt = write_array(tmp_path / "gt.zarr", "labels", labels, VOXEL_SIZE)
    run = tmp_path / "run"
    code, _, stderr = _run(segment_args(inputs, run, "--gt", gt))
    assert code == 1 and "Traceback" not in stderr
    assert error_lines(stderr) == [
        f"error: gt {gt} has shape (16, 128, 96) but raw {inputs['raw']} has (16, 128, 128) (z y x, voxels): "
        "expected the ground truth of the same volume"
    ]
    assert not run.exists()


def test_raw_em_given_as_gt_is_refused_before_predict(inputs, tmp_path) -> None:
    """--gt pointing at the raw EM (uint8 intensities pass the dtype check) is found out before
    predict, not by evaluate after hours of work."""
    run = tmp_path / "run"
    code, _, stderr = _run(segment_args(inputs, run, "--gt", str(inputs["raw"])))
    assert code == 1 and "Traceback" not in stderr
    [line] = error_lines(stderr)
    assert line.startswith(f"error: gt {inputs['raw']} looks like image intensities, not labels (")
    assert not run.exists()


def test_gt_without_voxel_size_is_refused_before_predict(inputs, tmp_path) -> None:
    run = tmp_path / "run"
    code, _, stderr = _run(segment_args(inputs, run, "--gt", str(inputs["gt_npy"])))
    assert code == 1 and "Traceback" not in stderr
    assert error_lines(stderr) == [f"error: gt {inputs['gt_npy']}: voxel size is missing; pass --voxel-size Z Y X (nm)"]
    assert not run.exists()


def test_voxel_size_that_contradicts_a_file_is_refused(inputs, tmp_path) -> None:
    run = tmp_path / "run"
    args = segment_args(inputs, run, "--gt", str(inputs["gt_npy"]), "--voxel-size", "40", "8", "8")
    code, _, stderr = _run(args)
    assert code == 1
    assert error_lines(stderr) == [f"error: raw {inputs['raw']} has voxel size [30.0, 8.0, 8.0] nm in its metadata "
                                   "but --voxel-size is [40.0, 8.0, 8.0]: expected them to agree"]
    assert not run.exists()


def test_raw_without_voxel_size_takes_voxel_size(inputs, tmp_path, monkeypatch) -> None:
    np.save(tmp_path / "raw.npy", open_level(inputs["store"], "raw", mode="r")[:])
    run = tmp_path / "run"
    base = ["segment", str(tmp_path / "raw.npy"), "--out", str(run), "--config", str(inputs["config"]),
            "--model", str(inputs["model"])]
    code, _, stderr = _run(base)
    assert code == 1
    assert error_lines(stderr) == [f"error: raw {tmp_path / 'raw.npy'}: voxel size is missing; pass --voxel-size Z Y X (nm)"]
    assert not run.exists()
    # the advised option exists and reaches predict: stop the run at its first stage's end
    from axonseg.pipelines.segment import pipeline

    def stop(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise InputError("stopped after predict by the test")

    monkeypatch.setattr(pipeline, "run_segment_stages", stop)
    code, _, stderr = _run([*base, "--voxel-size", "30", "8", "8"])
    assert code == 1 and error_lines(stderr) == ["error: stopped after predict by the test"]
    from axonseg.io import open_volume

    affinities = open_volume(run / "volume.zarr" / "affinities")
    assert affinities.voxel_size == VOXEL_SIZE and affinities.spatial_shape == SHAPE
    assert json.loads((run / "inputs.json").read_text())["raw"]["voxel_size"] == list(VOXEL_SIZE)


@pytest.mark.parametrize(("case", "message"), [
    ("formats", "error: {config}: key 'formats.1': Input should be 'sonata', 'nir', 'csv', 'pynn' or 'all' (got 'xls')"),
    ("scheduler", "error: scheduler='fast': expected synchronous, threads[:N], local[:N], tcp://host:port or a "
                  "cluster YAML"),
    ("synapses", "error: --synapses {missing}: no such file or folder"),
])
def test_config_scheduler_and_synapses_are_checked_before_predict(case, message, inputs, tmp_path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(inputs["config"].read_text().replace("formats: [csv]", "formats: [csv, xls]" if case == "formats"
                                                           else "formats: [csv]"))
    run = tmp_path / "run"
    extra = {"formats": [], "scheduler": ["--scheduler", "fast"], "synapses": ["--synapses", str(tmp_path / "syn.csv")]}
    args = ["segment", str(inputs["raw"]), "--out", str(run), "--config", str(config), "--model", str(inputs["model"]),
            *extra[case]]
    code, _, stderr = _run(args)
    assert code == 1 and "Traceback" not in stderr
    assert error_lines(stderr)[-1] == message.format(config=config, missing=tmp_path / "syn.csv")
    assert not run.exists()


def test_segment_help_offers_voxel_size() -> None:
    code, out, _ = _run(["segment", "--help"])
    assert code == 0 and "--voxel-size" in out


@pytest.fixture(scope="module")
def segmented(inputs, tmp_path_factory) -> dict:
    """A run whose first stage failed (NaN in the raw), then the corrected command into the
    same folder, without --restart: ground truth from a .npy with --voxel-size, synapses from
    the synth store (not given)."""
    run = tmp_path_factory.mktemp("segmented") / "run"
    gt = ["--gt", str(inputs["gt_npy"]), "--voxel-size", "30", "8", "8"]
    failed = run_cli(["segment", str(inputs["nan_raw"]), "--out", str(run), "--config", str(inputs["config"]),
                       "--model", str(inputs["model"]), *gt])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "250")  # rich folds the table's long paths at a narrower width
        corrected = run_cli(segment_args(inputs, run, *gt))
    return {"run": run, "failed": failed, "corrected": corrected}


def test_a_run_that_finished_no_stage_takes_the_corrected_command(segmented, inputs) -> None:
    failed, corrected, run = segmented["failed"], segmented["corrected"], segmented["run"]
    assert failed.returncode == 1
    assert error_lines(failed.stderr)[-1].startswith(f"error: raw {inputs['nan_raw']} contains NaN or inf in voxels")
    assert corrected.returncode == 0, corrected.stderr[-3000:]
    log = (run / "run.log").read_text()
    assert "segment: the earlier run in this folder finished no stage: starting again with the changed raw.address" in log
    assert "predict: resuming" not in log.split("finished no stage")[1]  # the NaN run's blocks were not reused
    recorded = json.loads((run / "inputs.json").read_text())
    assert recorded["raw"]["address"] == str(inputs["raw"])


def test_every_input_is_recorded(segmented, inputs) -> None:
    recorded = json.loads((segmented["run"] / "inputs.json").read_text())
    assert recorded == {
        "raw": {"address": str(inputs["raw"]), "shape": list(SHAPE), "voxel_size": list(VOXEL_SIZE)},
        "model": str(inputs["model"]),
        "gt": str(inputs["gt_npy"]),
        "voxel_size": list(VOXEL_SIZE),
        "synapses": str(inputs["store"] / "synapses"),
    }


def test_evaluate_run_uses_the_recorded_gt(segmented, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(segmented["run"], run)
    before = json.loads((run / "reports" / "evaluation.json").read_text())["rows"]
    shutil.rmtree(run / "reports")
    # the segment run evaluated in 16x64x64 blocks (tests/segment_runs.py): the same blocks give the
    # same ground-truth skeletons. Other blocks trace them slightly differently since skeletonize
    # reads a quarter of the invalidation radius as context (#18; 2% of the length on this 30x8x8 crop)
    config = tmp_path / "evaluate.yaml"
    config.write_text("block_shape: [16, 64, 64]\n")
    code, out, stderr = _run(["evaluate", str(run), "--config", str(config)])
    assert code == 0, stderr
    assert json.loads((run / "reports" / "evaluation.json").read_text())["rows"] == before
    assert len(before) == 2  # one row per LUT threshold


def test_evaluate_run_without_any_gt_says_where_it_looked(segmented, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(segmented["run"], run)
    recorded = json.loads((run / "inputs.json").read_text())
    (run / "inputs.json").write_text(json.dumps({**recorded, "gt": None}))  # segmented without --gt
    code, _, stderr = _run(["evaluate", str(run)])
    assert code == 1
    assert error_lines(stderr) == [f"error: {run}: no ground truth given, none recorded by `axonseg segment --gt` and "
                                   "no volume.zarr/labels; pass --gt"]


def test_synth_store_synapses_are_used_instead_of_the_proxy(segmented, inputs) -> None:
    report = json.loads((segmented["run"] / "connectome" / "export.json").read_text())
    assert report["proxy"] is False and report["synapses"] == str(inputs["store"] / "synapses")
    assert report["drops"]["n_input"] == len(read_synth_synapses(inputs["store"])) == 3


def test_a_later_export_uses_the_synapses_the_run_recorded(segmented, inputs, tmp_path) -> None:
    from axonseg.pipelines.export import run_export

    run = tmp_path / "run"
    shutil.copytree(segmented["run"], run)
    result = run_export(run, "csv", overwrite=True)
    assert result.proxy is False and result.report["synapses"] == str(inputs["store"] / "synapses")
    assert result.drops["n_input"] == 3


def test_console_ends_with_a_table(segmented, inputs) -> None:
    lines = segmented["corrected"].stdout.rstrip().splitlines()
    assert lines and max(len(line) for line in lines) <= 200, segmented["corrected"].stdout  # no 600-character line
    assert lines[-1].startswith("└") and lines[-1].endswith("┘")  # the table is the last thing printed
    rows: dict[str, str] = {}
    for line in lines:
        if line.startswith("│"):
            name, value = (cell.strip() for cell in line.strip("│").split("│"))
            if name:
                rows[name] = value
            else:  # a long value folded onto the next line
                rows[list(rows)[-1]] += value
    run = segmented["run"]
    evaluation = json.loads((run / "reports" / "evaluation.json").read_text())
    assert rows["run folder"] == str(run) and rows["threshold"] == "0.6"
    assert rows["NERL"] == f"{evaluation['nerl']:.3g}"
    assert rows["best threshold (evaluated)"] == f"{evaluation['best_threshold']:.3g} (the figures below are at it)"
    exported = len(pd.read_parquet(run / "connectome" / "synapses.parquet"))  # what export kept
    assert rows["synapses"] == f"{exported} (ground truth of {inputs['store'] / 'synapses'})"
    assert rows["connectome"] == str(run / "connectome") and rows["run log"] == str(run / "run.log")
    skeletonized = sum(len(batch) for batch in SkeletonStore(run / "skeletons").batches())
    assert rows["VOI split / merge"].endswith(" bits") and rows["segments (skeletonized)"] == str(skeletonized)


def test_check_run_dir_accepts_changes_only_while_no_stage_finished(segmented, inputs, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(segmented["run"], run)
    config = load_pipeline_config(inputs["config"])
    changed = {"raw": {"address": "/elsewhere/raw", "shape": list(SHAPE), "voxel_size": list(VOXEL_SIZE)},
               "model": str(inputs["model"])}
    from axonseg.errors import ConfigError

    with pytest.raises(ConfigError, match=r"changed: raw\.address\)"):
        check_run_dir(run, config, changed, restart=False)
    shutil.rmtree(run / "volume.zarr")  # as if no stage had finished
    for name in ("graph", "luts", "skeletons", "reports"):
        shutil.rmtree(run / name)
    assert check_run_dir(run, config, changed, restart=False) == ["raw.address"]


def test_run_segment_records_no_voxel_size_when_none_is_given(inputs, tmp_path, monkeypatch) -> None:
    from axonseg.pipelines.segment import pipeline

    monkeypatch.setattr(pipeline, "_run_stages", lambda raw, run_dir, *args: pipeline.SegmentRun(run_dir, "-"))
    run_segment(inputs["raw"], tmp_path / "run", load_pipeline_config(inputs["config"]), inputs["model"],
                gt=inputs["gt"], show_progress=False)
    recorded = json.loads((tmp_path / "run" / "inputs.json").read_text())
    assert recorded["voxel_size"] is None and recorded["gt"] == str(inputs["gt"])
    assert recorded["synapses"] == str(inputs["store"] / "synapses")


def test_a_run_made_before_a_new_setting_existed_is_not_changed(segmented, inputs, tmp_path) -> None:
    # fragments.flood came later: a run whose config.yaml lacks it is compared with its default
    run = tmp_path / "run"
    shutil.copytree(segmented["run"], run)
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    del recorded["config"]["segment"]["fragments"]["flood"]
    (run / "config.yaml").write_text(yaml.safe_dump(recorded))
    config = load_pipeline_config(inputs["config"])
    same = json.loads((run / "inputs.json").read_text())
    assert check_run_dir(run, config, same, restart=False) == []
    flooded = config.model_copy(update={"segment": config.segment.model_copy(
        update={"fragments": config.segment.fragments.model_copy(update={"flood": True})})})
    from axonseg.errors import ConfigError

    with pytest.raises(ConfigError, match=r"changed: segment\.fragments\.flood\)"):
        check_run_dir(run, flooded, same, restart=False)
