"""``benchmarks/gpu.py``: the GPU benchmark's code path, run on the CPU (``--device cpu``, bfloat16 for
float16) at a tiny size, ends in one JSON line whose figures hold together; without a GPU the default run says
so and ends in a JSON line marked skipped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def test_cpu_smoke_run_json_line() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--skip-monai", "--shape", "16", "48", "48", "--block", "16", "32", "32",
         "--batch-size", "1", "--check-shape", "12", "32", "32", "--train-output", "8", "16", "16", "--train-batch", "1"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["volume"] == [16, 48, 48] and figures["ratio"] is None and figures["stage_ratio"] is None
    for key in ("stage_bfloat16_voxels_per_s", "stage_float32_voxels_per_s", "in_memory_bfloat16_voxels_per_s",
                "train_steps_per_s"):
        assert figures[key] > 0, key
    # the run's AMP against the eager float32 network; bfloat16 (8-bit mantissa) misses the 2/255
    # that float16 on a GPU must meet, but stays within a few levels, and the verdict follows the figure
    assert 0 <= figures["max_cuda_cpu_diff_255"] <= 10
    assert figures["cuda_equals_cpu"] is (figures["max_cuda_cpu_diff_255"] <= 2)
    assert figures["model"] == "fib_default/model.pt"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]  # make bench runs every benchmark and goes on
    first, last = done.stdout.strip().splitlines()
    assert first.startswith("benchmarks/gpu.py: torch sees no CUDA GPU here, so nothing was measured")
    figures = json.loads(last)
    assert figures["skipped"] == "no CUDA GPU" and figures["ratio"] is None and figures["gpu"] is None
