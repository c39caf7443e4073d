"""Test helpers for ``axonseg segment`` runs: a tiny synthetic volume with ground-truth
synapses, a random-weights model, a pipeline config with a few blocks per stage, and ways to
run the real command line (in this process, or as a child process that can be signalled).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from axonseg.model import ModelConfig, build_model, save_model
from axonseg.pipelines.synth import write_synth

#: voxels, zyx: 4 blocks of 16 x 64 x 64 in every blockwise stage; seed 1 places 3 GT synapses
SHAPE = (16, 128, 128)
SEED = 1
VOXEL_SIZE = (30.0, 8.0, 8.0)
CONFIG = """\
predict: {block_shape: [16, 64, 64], precision: float32}
segment:
  block_shape: [16, 64, 64]
  agglomerate: {thresholds: [0.3, 0.6]}
  relabel_threshold: 0.6
skeletonize: {block_shape: [16, 64, 64], context: [2, 8, 8]}
evaluate: {block_shape: [16, 64, 64]}
formats: [csv]
"""
ENV = {**os.environ, "COLUMNS": "200"}  # rich wraps log lines at the terminal width
# The CLI's own entry point; a sleep after each predict block's done marker widens the window
# in which a test can signal the process with markers on disk and predict unfinished.
SLOW_DRIVER = """\
import sys, time
from axonseg.blockwise.markers import DoneMarkers
original = DoneMarkers.mark_done
def mark_done(self, block):
    original(self, block)
    if self.stage == "predict":
        time.sleep(1.0)
DoneMarkers.mark_done = mark_done
from axonseg.cli import main
sys.argv = ["axonseg", *sys.argv[1:]]
main()
"""


def write_segment_inputs(root: Path) -> dict[str, Path]:
    """``root/in.zarr`` (raw, labels, skeletons, synapses), ``root/model.pt`` (30 x 8 x 8 nm)
    and ``root/pipeline.yaml``."""
    root.mkdir(parents=True, exist_ok=True)
    write_synth(root / "in.zarr", SHAPE, VOXEL_SIZE, seed=SEED, show_progress=False)
    model_config = ModelConfig(num_fmaps=2, fmap_inc_factor=2, downsample_factors=[[1, 2, 2]], voxel_size=(30, 8, 8))
    save_model(build_model(model_config, seed=0), root / "model.pt")
    (root / "pipeline.yaml").write_text(CONFIG)
    return {"store": root / "in.zarr", "raw": root / "in.zarr" / "raw", "gt": root / "in.zarr" / "labels",
            "model": root / "model.pt", "config": root / "pipeline.yaml", "root": root}


def segment_args(inputs: dict[str, Path], run: Path, *extra: str) -> list[str]:
    return ["segment", str(inputs["raw"]), "--out", str(run), "--config", str(inputs["config"]),
            "--model", str(inputs["model"]), *extra]


def cli(*args: str) -> subprocess.CompletedProcess:
    """The real command in a child process."""
    return subprocess.run([sys.executable, "-m", "axonseg.cli", *args], capture_output=True, text=True,
                          env=ENV, timeout=300)


def start_slow(*args: str) -> subprocess.Popen:
    """The real command in a child process that pauses after each done marker."""
    return subprocess.Popen([sys.executable, "-c", SLOW_DRIVER, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV, text=True)


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``axonseg.cli.main`` in this process (no interpreter start-up, no fixtures needed):
    the exit code, stdout and stderr as a CompletedProcess."""
    import contextlib
    import io

    from axonseg.cli import main

    root = logging.getLogger()
    handlers, level, argv = list(root.handlers), root.level, sys.argv
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["axonseg", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    finally:
        sys.argv = argv
        root.handlers[:] = handlers  # the CLI installs its own logging; give the caller's back
        root.setLevel(level)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def error_lines(stderr: str) -> list[str]:
    """The ``error:`` lines of ``stderr``; asserts that stderr ends with them (log lines of the
    command before them are allowed)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert not errors or lines[-len(errors):] == errors, stderr
    return errors
