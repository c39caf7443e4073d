"""Benchmark on a CUDA GPU (issue #18, goal 4): predict throughput, CUDA against CPU output, and
training steps/s, against MONAI's ``sliding_window_inference`` on the same GPU and weights.

1. **Predict stage** on CUDA: the real ``predict`` stage (zarr in, zarr out, a read-ahead thread
   overlapping reads with the network, pinned host memory, non-blocking copies), once with
   float16 autocast (AMP, the CUDA default) and once in float32; voxels/s of each, and of the
   network alone (``predict_volume`` on an in-memory volume).
2. **CUDA equals CPU**: the stage's CUDA output (float16 AMP) against the eager float32 network on
   the CPU, on a smaller volume; the largest difference must be at most 2/255.
3. **MONAI** ``sliding_window_inference`` on the GPU, same network made 'same'-shaped, the same
   precision, roi = our output block (its padded network then sees our input shape), batch = ours;
   ``ratio`` = MONAI seconds / our in-memory ``predict_volume`` seconds (above 1: we are faster).
   Both are sliding-window inference over an in-memory volume; ours also copies each batch from
   host memory and back, MONAI's input is already on the device. The stage (zarr in and out) is
   reported beside it as ``stage_ratio`` and against #18's goal of 10 Mvoxels/s.
4. **Training** steps/s: forward, loss and backward of the network on random crops at the train
   config's input shape and batch (bf16 autocast, Adam), GPU compute alone.

Prints the GPU, the CPU's ISA flags and peak memory (GPU and host); the last line is one JSON
object with ``ratio``. Needs a CUDA GPU: where there is none it says so and ends with a JSON line
holding ``"skipped"`` and a null ratio (exit code 0, so ``make bench`` goes on).

Run: ``python benchmarks/gpu.py [--shape 128 512 512] [--block 64 256 256] [--batch-size 2]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import isa_flags
from predict import SamePadded, peak_rss_mb, synthetic_raw

from axonseg.io import open_level, write_array
from axonseg.model import AffinityNet, Predictor, load_model, predict_volume, shapes
from axonseg.pipelines.segment.predict import PredictConfig, run_predict

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "data" / "models" / "fib_default" / "model.pt"
MAX_CUDA_CPU_DIFF = 2  # /255
DEVICE = "cuda"  # --device cpu: a smoke run of this script's code path only (no figures to report)
AMP = "float16"  # the CUDA default; the CPU smoke run uses bfloat16 (float16 convolutions crawl on CPUs)


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def stage(folder: Path, address: str, model_path: Path, block: tuple[int, ...], batch: int,
          precision: str) -> tuple[float, np.ndarray]:
    """Seconds of the predict stage on CUDA (after one warm-up block shape was compiled) and its
    uint8 affinities."""
    settings = PredictConfig(block_shape=block, batch_size=batch, device=DEVICE, precision=precision)
    _sync()
    start = time.perf_counter()
    run_predict(folder, address, model_path, settings, show_progress=False)
    _sync()
    seconds = time.perf_counter() - start
    return seconds, np.asarray(open_level(folder / "volume.zarr", "affinities", mode="r")[:])


def monai_seconds(model: AffinityNet, raw: np.ndarray, block: tuple[int, ...], batch: int, half: bool) -> float:
    """Seconds of MONAI's sliding_window_inference over ``raw`` on the GPU (input already there)."""
    from monai.inferers import sliding_window_inference

    cfg = model.config
    peer = SamePadded(model, shapes.context(cfg), cfg.num_affinities).to(DEVICE).eval()
    x = torch.from_numpy(raw.astype(np.float32) / 255.0)[None, None].to(DEVICE)
    with torch.inference_mode(), torch.autocast(DEVICE, dtype=getattr(torch, AMP), enabled=half):
        sliding_window_inference(x[..., : block[0], : block[1], : block[2]], roi_size=block, sw_batch_size=batch,
                                 predictor=peer, overlap=0.25)  # warm-up
        _sync()
        start = time.perf_counter()
        sliding_window_inference(x, roi_size=block, sw_batch_size=batch, predictor=peer, overlap=0.25)
        _sync()
    return time.perf_counter() - start


def training_steps_per_s(model: AffinityNet, output_shape: tuple[int, int, int], batch: int, steps: int = 30) -> float:
    """Training steps/s of ``model`` (a copy) on random crops: bf16 autocast, BCE on every
    affinity, Adam; the mean over ``steps`` after 5 warm-up steps."""
    net = AffinityNet(model.config).to(DEVICE).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    in_shape = shapes.valid_input_shape(model.config, output_shape)
    out_shape = shapes.valid_output_shape(model.config, in_shape)
    x = torch.rand((batch, model.config.in_channels) + tuple(in_shape), device=DEVICE)
    target = (torch.rand((batch, model.config.num_affinities) + tuple(out_shape), device=DEVICE) > 0.5).float()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            logits = net(x)[:, : model.config.num_affinities]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    _sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--shape", type=int, nargs=3, default=[128, 1024, 1024],
                        help="volume, voxels zyx (32 blocks by default: a stage's fixed costs are not its speed)")
    parser.add_argument("--block", type=int, nargs=3, default=[64, 256, 256], help="output block, voxels zyx")
    parser.add_argument("--batch-size", type=int, default=2, help="blocks per network call")
    parser.add_argument("--check-shape", type=int, nargs=3, default=[64, 192, 192], help="CUDA-vs-CPU volume, voxels zyx")
    parser.add_argument("--train-output", type=int, nargs=3, default=[40, 56, 56], help="training output crop, voxels zyx")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--skip-monai", action="store_true")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a smoke run of the code path only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    global DEVICE, AMP
    DEVICE = args.device
    AMP = "float16" if DEVICE == "cuda" else "bfloat16"
    if DEVICE == "cuda" and not torch.cuda.is_available():
        # not a failure: `make bench` runs every benchmark, and most machines have no GPU
        print("benchmarks/gpu.py: torch sees no CUDA GPU here, so nothing was measured (run it on a GPU machine)")
        print(json.dumps({"date": time.strftime("%Y-%m-%d"), "gpu": None, "isa": isa_flags(), "skipped": "no CUDA GPU",
                          "ratio": None}))
        return
    torch.backends.cudnn.benchmark = True
    model = load_model(args.model)
    cfg = model.config
    shape, block = tuple(args.shape), tuple(args.block)
    voxels = int(np.prod(shape))
    gpu = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "none (CPU smoke run)"
    flags = isa_flags()
    print(f"GPU: {gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; ISA {' '.join(flags) or '?'}")
    print(f"model: {args.model} ({sum(p.numel() for p in model.parameters()):,} parameters); context "
          f"{shapes.context(cfg)} voxels; volume {shape}; block out {block} in {shapes.valid_input_shape(cfg, block)}, "
          f"batch {args.batch_size}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="axonseg_bench_gpu_"))
    result: dict = {"date": time.strftime("%Y-%m-%d"), "gpu": gpu, "torch": torch.__version__, "isa": flags,
                    "cores": os.cpu_count(), "model": args.model.name if args.model.parent.name == "" else
                    f"{args.model.parent.name}/{args.model.name}", "volume": list(shape), "block": list(block),
                    "batch_size": args.batch_size}
    try:
        raw = synthetic_raw(shape)
        address = write_array(work / "in.zarr", "raw", raw, cfg.voxel_size)
        # warm-up on one batch of blocks: cuDNN picks its algorithms for this block shape, the CUDA
        # context and allocator settle
        warm = raw[: block[0], : block[1], : block[2] * args.batch_size]
        stage(work / "warm", write_array(work / "warm.zarr", "raw", warm, cfg.voxel_size), args.model, block,
              args.batch_size, AMP)
        if DEVICE == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for precision in (AMP, "float32"):
            seconds, _ = stage(work / f"run_{precision}", address, args.model, block, args.batch_size, precision)
            result[f"stage_{precision}_voxels_per_s"] = voxels / seconds
            print(f"predict stage on CUDA, {precision}: {seconds:.2f} s, {voxels / seconds / 1e6:.2f} Mvoxels/s", flush=True)
        result["gpu_peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9 if DEVICE == "cuda" else 0.0
        predictor = Predictor(model, device=DEVICE, precision=AMP)
        predict_volume(raw[: block[0], : block[1], : block[2]], predictor, block, args.batch_size)
        _sync()
        start = time.perf_counter()
        predict_volume(raw, predictor, block, args.batch_size)
        _sync()
        network_s = time.perf_counter() - start
        result[f"in_memory_{AMP}_voxels_per_s"] = voxels / network_s
        print(f"in-memory predict_volume, {AMP} (no zarr I/O): {voxels / network_s / 1e6:.2f} Mvoxels/s", flush=True)

        check = synthetic_raw(tuple(args.check_shape), seed=1)
        check_address = write_array(work / "check" / "in.zarr", "raw", check, cfg.voxel_size)
        _, cuda_out = stage(work / "check" / "run", check_address, args.model, block, args.batch_size, AMP)
        cpu_out = predict_volume(check, Predictor(model, device="cpu", precision="float32", freeze=False), block)
        diff = int(np.abs(cuda_out.astype(np.int16) - cpu_out.astype(np.int16)).max())
        result["max_cuda_cpu_diff_255"] = diff
        result["cuda_equals_cpu"] = diff <= MAX_CUDA_CPU_DIFF
        print(f"{DEVICE} {AMP} stage vs CPU float32 eager on {tuple(args.check_shape)}: max |difference| {diff}/255 "
              f"({'within' if diff <= MAX_CUDA_CPU_DIFF else 'OVER'} {MAX_CUDA_CPU_DIFF}/255)", flush=True)

        stage_s = voxels / result[f"stage_{AMP}_voxels_per_s"]
        if not args.skip_monai:
            monai_s = monai_seconds(model, raw, block, args.batch_size, half=True)
            result[f"monai_{AMP}_voxels_per_s"] = voxels / monai_s
            result["ratio"] = monai_s / network_s
            result["stage_ratio"] = monai_s / stage_s
            print(f"MONAI sliding_window_inference on {DEVICE} (roi {block}, overlap 0.25, {AMP} autocast, sw_batch "
                  f"{args.batch_size}, input already on the device): {voxels / monai_s / 1e6:.2f} Mvoxels/s; ratio "
                  f"{monai_s / network_s:.2f} (in memory), {monai_s / stage_s:.2f} (our stage, zarr in and out)",
                  flush=True)
        else:
            result["ratio"] = result["stage_ratio"] = None
        rate = training_steps_per_s(model, tuple(args.train_output), args.train_batch)
        result.update(train_steps_per_s=rate, train_batch=args.train_batch, train_output=list(args.train_output))
        print(f"training (this architecture, output {tuple(args.train_output)}, batch {args.train_batch}, bf16, "
              f"GPU compute alone): {rate:.2f} steps/s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["host_peak_rss_mb"] = peak_rss_mb()
    ratio = result["ratio"] if result["ratio"] is None else round(result["ratio"], 2)
    stage_rate = result[f"stage_{AMP}_voxels_per_s"] / 1e6
    print(f"ratio (ours / MONAI, in-memory voxels/s, {AMP} on {gpu}): {ratio}; stage {AMP} {stage_rate:.2f} "
          f"Mvoxels/s ({'meets' if stage_rate >= 10 else 'below'} the 10 Mvoxels/s goal); GPU peak "
          f"{result['gpu_peak_memory_gb']:.1f} GB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
