"""Benchmark: our blockwise affinity inference vs MONAI sliding_window_inference, same weights.

Ours is the real ``predict`` stage (zarr in, zarr out, reads and writes included). Prints
voxels/s of both (ours counts the context it reads), their ratio, our convolution
GFLOP/s next to a 2048^2 matmul of the same precision, the bf16-vs-float32 affinity error,
and peak memory. The last line is one JSON object with "ratio".

Run: ``.venv/bin/python benchmarks/predict.py [--shape 128 256 256] [--block 64 128 128]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.model import Predictor, build_model, load_model, save_model, shapes
from axonseg.model.config import ModelConfig
from axonseg.pipelines.segment.predict import PredictConfig, run_predict

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "data" / "models" / "fib_default" / "model.pt"


def synthetic_raw(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """Smooth noise as stand-in EM (speed does not depend on content)."""
    rng = np.random.default_rng(seed)
    raw = ndimage.gaussian_filter(rng.random(shape, dtype=np.float32), 2.0)
    raw -= raw.min()
    return (raw / raw.max() * 255).astype(np.uint8)


def conv_flops(model: torch.nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds x 2 of every (transposed) convolution for one input of ``input_shape``."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        kernel = int(np.prod(module.kernel_size))
        if isinstance(module, torch.nn.ConvTranspose3d):
            voxels = int(np.prod(inputs[0].shape[2:]))
        else:
            voxels = int(np.prod(output.shape[2:]))
        total += 2 * module.in_channels * module.out_channels * kernel * voxels * output.shape[0]

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))]
    with torch.no_grad():
        model(torch.zeros((1, 1) + tuple(input_shape)))
    for hook in hooks:
        hook.remove()
    return total


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 3) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class SamePadded(torch.nn.Module):
    """The valid-conv network made 'same': reflect-pad by the context, then sigmoid of the
    affinity channels, so MONAI sees output shape == input shape."""

    def __init__(self, model: torch.nn.Module, context: tuple[int, int, int], channels: int) -> None:
        super().__init__()
        self.model, self.channels = model, channels
        self.pad = (context[2], context[2], context[1], context[1], context[0], context[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(F.pad(x, self.pad, mode="reflect"))[:, : self.channels])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", type=int, nargs=3, default=[128, 256, 256], help="volume, voxels zyx")
    parser.add_argument("--block", type=int, nargs=3, default=[64, 128, 128], help="output block, voxels zyx")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--skip-monai", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    if args.model.exists():
        model = load_model(args.model)
        source = str(args.model)
    else:
        import yaml

        cfg = ModelConfig.model_validate(yaml.safe_load((REPO / "configs" / "train_fib.yaml").read_text())["model"])
        model, source = build_model(cfg, seed=0), "random weights, configs/train_fib.yaml architecture"
    cfg = model.config
    model.eval()
    shape, block = tuple(args.shape), tuple(args.block)
    raw = synthetic_raw(shape)
    voxels = int(np.prod(shape))
    ctx = shapes.context(cfg)
    in_block = shapes.valid_input_shape(cfg, block)
    print(f"model: {source}; context {ctx} voxels; block out {block} in {in_block}; threads {args.threads}")

    # ours: the real stage, zarr in and zarr out (reads, writes and compression included)
    workdir = Path(tempfile.mkdtemp(prefix="axonseg_bench_predict_"))
    if not args.model.exists():
        save_model(model, workdir / "model.pt")
    model_path = args.model if args.model.exists() else workdir / "model.pt"
    create_multiscale(workdir / "in.zarr", "raw", shape, np.uint8, cfg.voxel_size, chunk_shape=(64, 64, 64))
    write_block(open_level(workdir / "in.zarr", "raw"), raw, (0, 0, 0))
    mark_complete(workdir / "in.zarr", "raw")
    settings = PredictConfig(block_shape=block, batch_size=args.batch_size, n_threads=args.threads)
    start = time.perf_counter()
    run = run_predict(workdir / "run", f"{workdir / 'in.zarr'}/raw", model_path, settings, show_progress=False)
    ours_s = time.perf_counter() - start
    ours = np.asarray(open_level(workdir / "run" / "volume.zarr", "affinities", mode="r")[:])
    print(f"our precision (auto): {run.precision}")
    blocks = int(np.prod([np.ceil(s / b) for s, b in zip(shape, block)]))
    flops = conv_flops(model, in_block) * blocks
    read = blocks * int(np.prod(in_block))
    print(f"ours: {ours_s:.2f} s, {voxels / ours_s:,.0f} voxels/s ({blocks} blocks, reads {read / voxels:.2f}x the volume incl. context)")

    # bf16 vs float32: error and speed on one small block (bf16 is emulated, slow, on AVX2 CPUs)
    small = shapes.valid_input_shape(cfg, tuple(min(b, 32) for b in block))
    sample = raw[: small[0], : small[1], : small[2]]
    timings, outputs = {}, {}
    for precision in ("float32", "bfloat16"):
        p = Predictor(model, device="cpu", output_dtype="float16", precision=precision, freeze=False)
        p(sample)
        start = time.perf_counter()
        outputs[precision] = p(sample).astype(np.float32)
        timings[precision] = time.perf_counter() - start
    bf16_error = float(np.abs(outputs["float32"] - outputs["bfloat16"]).max() * 255)
    print(f"bf16 vs float32 on one {small} block: max error {bf16_error:.2f}/255, bf16 {timings['float32'] / timings['bfloat16']:.2f}x the speed")

    precision_dtype = torch.bfloat16 if run.precision == "bfloat16" else torch.float32
    conv_gflops = flops / ours_s / 1e9
    mm_gflops = matmul_gflops(precision_dtype)
    print(f"conv throughput: {conv_gflops:.1f} GFLOP/s; 2048^2 {precision_dtype} matmul: {mm_gflops:.1f} GFLOP/s ({100 * conv_gflops / mm_gflops:.0f}%)")

    result = {
        "volume": list(shape), "block": list(block), "threads": args.threads, "precision": run.precision,
        "ours_voxels_per_s": voxels / ours_s, "conv_gflops": conv_gflops, "matmul_gflops": mm_gflops,
        "conv_fraction_of_matmul": conv_gflops / mm_gflops, "bf16_max_error_255": bf16_error,
        "bf16_speedup": timings["float32"] / timings["bfloat16"],
    }
    if not args.skip_monai:
        from monai.inferers import sliding_window_inference

        peer = SamePadded(model, ctx, cfg.num_affinities)
        x = torch.from_numpy(raw.astype(np.float32) / 255.0)[None, None]
        with torch.no_grad():
            start = time.perf_counter()
            peer_out = sliding_window_inference(x, roi_size=block, sw_batch_size=1, predictor=peer, overlap=0.25, mode="gaussian")
            monai_s = time.perf_counter() - start
        # the ratio's two factors: fewer network calls (block grid vs 25%-overlap windows) and
        # faster calls (oneDNN-fused convolutions vs the eager network MONAI is given)
        windows = int(np.prod([int(np.ceil((s - b) / (b * 0.75))) + 1 if s > b else 1 for s, b in zip(shape, block)]))
        print(f"network calls: MONAI {windows} windows, ours {blocks} blocks ({windows / blocks:.2f}x fewer); "
              f"time per call: MONAI {monai_s / windows:.2f} s, ours {ours_s / blocks:.2f} s")
        result.update(monai_windows=windows, our_blocks=blocks)
        agree = float(np.abs(peer_out[0].numpy() * 255 - ours.astype(np.float32)).mean())
        print(f"MONAI sliding_window_inference (overlap 0.25, gaussian, float32): {monai_s:.2f} s, {voxels / monai_s:,.0f} voxels/s; mean |difference| to ours {agree:.2f}/255")
        result.update(monai_voxels_per_s=voxels / monai_s, ratio=monai_s / ours_s, mean_abs_diff_255=agree)
    else:
        result["ratio"] = None
    shutil.rmtree(workdir, ignore_errors=True)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ratio (ours / MONAI voxels/s): {result['ratio'] if result['ratio'] is None else round(result['ratio'], 2)}; peak RSS {result['peak_rss_mb']:.0f} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
