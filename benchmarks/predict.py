"""Benchmark: our blockwise affinity inference vs MONAI sliding_window_inference, same weights.

Ours is the real ``predict`` stage (zarr in, zarr out, reads and writes included, the Predictor
built inside it). MONAI gets the same network made 'same'-shaped (reflect padding by the
context), float32, eager, its defaults (overlap 0.25, mode "constant", sw_batch_size 1), once
with roi = our network input shape and once with roi = our output block (then its network
sees our input shape); the ratio is against the faster of the two. Prints the CPU's ISA flags,
voxels/s of both, our convolution GFLOP/s (FLOPs of the convolutions the network ran / seconds
inside the network's forward during the stage) next to a 2048^2 matmul of the same precision
(best of five), our largest difference to the eager float32 network, the bf16-vs-float32
affinity error, and peak memory. The last line is one JSON object with "ratio".

Run: ``.venv/bin/python benchmarks/predict.py [--shape 128 256 256] [--block 64 128 128]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Self

import numpy as np
import torch
import torch.nn.functional as F
from _common import isa_flags
from scipy import ndimage

from axonseg.io import create_multiscale, mark_complete, open_level, write_block
from axonseg.model import Predictor, build_model, load_model, predict_volume, save_model, shapes
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
        model(torch.zeros((1, model.config.in_channels) + tuple(input_shape)))
    for hook in hooks:
        hook.remove()
    return total


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an ``n`` x ``n`` matmul in ``dtype``: the best of ``repeats`` after a warm-up."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def _count_conv_flops(timer: ForwardTimer):
    """A forward hook adding the FLOPs of the convolution it ran to ``timer.flops``: multiply-adds
    x 2 per output voxel, for torch's (transposed) convolutions and our fused ones alike."""

    def count(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.ConvTranspose3d):
            timer.flops += 2 * module.out_channels * int(np.prod(module.kernel_size)) * inputs[0].numel()
            return
        if isinstance(module, torch.nn.Conv3d):
            per_voxel = 2 * module.in_channels * int(np.prod(module.kernel_size))
        else:
            per_voxel = module.flops_per_voxel
        timer.flops += per_voxel * output.numel()

    return count


class ForwardTimer:
    """Times every network forward the Predictor runs (wraps ``Predictor._network``) and adds up
    the FLOPs of the convolutions those forwards ran (hooks on the network that ran them)."""

    def __init__(self) -> None:
        self.seconds, self.flops, self.calls, self.samples = 0.0, 0, 0, 0
        self._original = Predictor._network
        self._hooked: set[int] = set()

    def __enter__(self) -> Self:
        timer, original = self, self._original

        def network(predictor: Predictor, x: torch.Tensor):
            inner = original(predictor, x)
            if isinstance(inner, torch.nn.Module) and id(inner) not in timer._hooked:
                timer._hooked.add(id(inner))
                for module in inner.modules():
                    if isinstance(module, (torch.nn.Conv3d, torch.nn.ConvTranspose3d)) or hasattr(module, "flops_per_voxel"):
                        module.register_forward_hook(_count_conv_flops(timer))

            def timed(batch: torch.Tensor) -> torch.Tensor:
                start = time.perf_counter()
                out = inner(batch)
                timer.seconds += time.perf_counter() - start
                timer.calls += 1
                timer.samples += batch.shape[0]
                return out

            return timed

        Predictor._network = network  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        Predictor._network = self._original  # type: ignore[method-assign]


class SamePadded(torch.nn.Module):
    """The valid-conv network made 'same': reflect-pad by the context, then sigmoid of the
    affinity channels, so MONAI sees output shape == input shape."""

    def __init__(self, model: torch.nn.Module, context: tuple[int, int, int], channels: int) -> None:
        super().__init__()
        self.model, self.channels, self.windows = model, channels, 0
        self.pad = (context[2], context[2], context[1], context[1], context[0], context[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.windows += x.shape[0]
        return torch.sigmoid(self.model(F.pad(x, self.pad, mode="reflect"))[:, : self.channels])


def run_monai(model: torch.nn.Module, raw: np.ndarray, roi: tuple[int, ...], ctx: tuple[int, int, int],
              channels: int) -> tuple[float, int, np.ndarray]:
    """Seconds of MONAI's sliding_window_inference over ``raw`` with windows ``roi`` (voxels
    zyx), the windows it ran, and its affinities (float32, czyx)."""
    from monai.inferers import sliding_window_inference

    peer = SamePadded(model, ctx, channels)
    x = torch.from_numpy(raw.astype(np.float32) / 255.0)[None, None]
    with torch.no_grad():
        start = time.perf_counter()
        out = sliding_window_inference(x, roi_size=roi, sw_batch_size=1, predictor=peer, overlap=0.25)
        return time.perf_counter() - start, peer.windows, out[0].numpy()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    flags = isa_flags()
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; ISA {' '.join(flags) or '?'}; "
          f"torch {torch.__version__} (capability {torch.backends.cpu.get_cpu_capability()})")
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
    with ForwardTimer() as forward:
        start = time.perf_counter()
        run = run_predict(workdir / "run", f"{workdir / 'in.zarr'}/raw", model_path, settings, show_progress=False)
        ours_s = time.perf_counter() - start
    ours_rss = peak_rss_mb()
    ours = np.asarray(open_level(workdir / "run" / "volume.zarr", "affinities", mode="r")[:])
    print(f"our precision (auto): {run.precision}")
    blocks = int(np.prod([np.ceil(s / b) for s, b in zip(shape, block)]))
    read = blocks * int(np.prod(in_block))
    print(f"ours: {ours_s:.2f} s, {voxels / ours_s:,.0f} voxels/s ({blocks} blocks, reads {read / voxels:.2f}x the volume "
          f"incl. context; {forward.seconds:.2f} s in {forward.calls} network forwards); peak RSS {ours_rss:.0f} MB")

    precision_dtype = torch.bfloat16 if run.precision == "bfloat16" else torch.float32
    conv_gflops = forward.flops / forward.seconds / 1e9
    mm_gflops = matmul_gflops(precision_dtype)
    eager_flops = conv_flops(model, in_block) * forward.samples
    print(f"conv throughput: {forward.flops / 1e9:.0f} GFLOP of convolutions run in {forward.seconds:.2f} s of network "
          f"forward = {conv_gflops:.1f} GFLOP/s; 2048^2 {precision_dtype} matmul: {mm_gflops:.1f} GFLOP/s "
          f"({100 * conv_gflops / mm_gflops:.0f}%); the eager network's convolutions would be {eager_flops / 1e9:.0f} GFLOP "
          f"({eager_flops / forward.seconds / 1e9:.1f} GFLOP/s equivalent)")

    # the same volume through the eager float32 network (no oneDNN fusion): ours must stay within 1/255
    eager = predict_volume(raw, Predictor(model, device="cpu", precision="float32", freeze=False), block)
    eager_diff = int(np.abs(eager.astype(np.int16) - ours.astype(np.int16)).max())
    print(f"max |ours - eager float32| {eager_diff}/255")

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

    result = {
        "date": time.strftime("%Y-%m-%d"), "isa": flags, "cores": os.cpu_count(), "torch": torch.__version__,
        "volume": list(shape), "block": list(block), "input_block": list(in_block), "threads": args.threads,
        "precision": run.precision, "ours_s": ours_s, "ours_voxels_per_s": voxels / ours_s,
        "network_s": forward.seconds, "conv_gflop": forward.flops / 1e9, "eager_conv_gflop": eager_flops / 1e9,
        "conv_gflops": conv_gflops,
        "matmul_gflops": mm_gflops, "conv_fraction_of_matmul": conv_gflops / mm_gflops,
        "max_diff_to_eager_255": eager_diff, "bf16_max_error_255": bf16_error,
        "bf16_speedup": timings["float32"] / timings["bfloat16"], "peak_rss_mb": ours_rss,
    }
    if not args.skip_monai:
        # MONAI's roi is the network's input patch; with roi = our output block its padded
        # network sees exactly our input shape. Both are run; the ratio is against the faster.
        peers = {}
        for name, roi in (("roi_input", tuple(in_block)), ("roi_block", block)):
            monai_s, windows, peer_out = run_monai(model, raw, roi, ctx, cfg.num_affinities)
            agree = float(np.abs(peer_out * 255 - ours.astype(np.float32)).mean())
            peers[name] = {"roi": list(roi), "seconds": monai_s, "voxels_per_s": voxels / monai_s, "windows": windows,
                           "mean_abs_diff_255": agree}
            print(f"MONAI sliding_window_inference (roi {roi}, overlap 0.25, float32, eager): {monai_s:.2f} s, "
                  f"{voxels / monai_s:,.0f} voxels/s, {windows} windows of {monai_s / windows:.2f} s "
                  f"(ours {blocks} blocks of {forward.seconds / max(forward.calls, 1):.2f} s in the network); "
                  f"mean |difference| to ours {agree:.2f}/255; ratio {monai_s / ours_s:.2f}", flush=True)
        best = min(peers.values(), key=lambda peer: peer["seconds"])
        result.update(monai=peers, monai_voxels_per_s=best["voxels_per_s"], ratio=best["seconds"] / ours_s)
    else:
        result["ratio"] = None
    shutil.rmtree(workdir, ignore_errors=True)
    result["peak_rss_mb_all"] = peak_rss_mb()
    ratio = result["ratio"] if result["ratio"] is None else round(result["ratio"], 2)
    print(f"ratio (ours / the faster MONAI, voxels/s): {ratio}; conv {100 * conv_gflops / mm_gflops:.0f}% of matmul; "
          f"peak RSS ours {ours_rss:.0f} MB, whole benchmark {result['peak_rss_mb_all']:.0f} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
