"""Inference: a raw block with context in, the centre's affinities out (numpy to numpy).

``Predictor`` runs the network on blocks (batched, channels_last_3d, reduced precision where
it is both faster and accurate); ``predict_volume`` tiles an in-memory volume block-invariantly.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from axonseg.errors import InputError
from axonseg.model import shapes
from axonseg.model.onednn import _FusedConv3d, onednn_network
from axonseg.model.onednn import available as onednn_available
from axonseg.model.unet import AffinityNet

log = logging.getLogger(__name__)

Precision = Literal["auto", "float32", "bfloat16", "float16"]
_CPU_BF16_FAST: dict[int, bool] = {}


#: uint8 intensity to [0, 1]: one float32 factor, on the host (normalize_raw) and on a device (raw_tensor)
UINT8_SCALE = np.float32(1.0 / 255.0)


def normalize_raw(raw: np.ndarray, what: str = "raw") -> np.ndarray:
    """Raw intensities to float32 in [0, 1]: uint8 / 255, uint16 / 65535, floats as given.

    Raises:
        InputError: for NaN/inf in float input or a non-numeric dtype.
    """
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) * UINT8_SCALE
    if raw.dtype == np.uint16:
        return raw.astype(np.float32) * np.float32(1.0 / 65535.0)
    if np.issubdtype(raw.dtype, np.floating):
        if not np.isfinite(raw).all():
            raise InputError(f"{what} contains NaN or inf: expected finite intensities in [0, 1]")
        return raw.astype(np.float32, copy=False)
    raise InputError(f"{what} has dtype {raw.dtype}: expected uint8, uint16 or float in [0, 1]")


def raw_tensor(raws: np.ndarray, device: torch.device) -> torch.Tensor:
    """``raws`` as float32 in [0, 1] on ``device``: the values of :func:`normalize_raw`.

    uint8 travels as is (a quarter of float32's bytes, through pinned memory to a GPU) and is
    scaled on the device by the same float32 product, so every one of the 256 values is equal
    to normalize_raw's; other dtypes are normalised on the host.
    """
    as_bytes = raws.dtype == np.uint8
    x = torch.from_numpy(np.ascontiguousarray(raws if as_bytes else normalize_raw(raws)))
    if device.type == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
    return x.to(torch.float32) * float(UINT8_SCALE) if as_bytes else x


#: CPU flags (Linux /proc/cpuinfo) of native bf16 dot products: oneDNN runs bf16 convolutions
#: there many times faster than float32 (25x measured on an AVX512-BF16 EPYC).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_is_fast(n_threads: int | None = None) -> bool:
    """Whether bf16 3D convolutions beat float32 by 1.3x on this CPU.

    True at once where the CPU has native bf16 (:data:`NATIVE_BF16_FLAGS`). Elsewhere (AVX2,
    where bf16 is emulated and ~10x slower, or an unknown CPU) it is measured once per process
    and thread count: the best of five interleaved runs per precision, so a busy machine does
    not decide it (a timing alone measured 1.4x instead of 5x under a load of 4 on 2 cores).
    The timing stops after the first run where bf16 is :data:`BF16_HOPELESS` times slower
    (emulated bf16 took 40 s for five runs on a loaded 2-core AVX2 machine).
    """
    threads = n_threads or torch.get_num_threads()
    if threads not in _CPU_BF16_FAST:
        native = sorted(set(NATIVE_BF16_FLAGS) & _cpu_flags())
        if native:
            _CPU_BF16_FAST[threads] = True
            log.info("bfloat16: the CPU has %s, so bfloat16 convolutions are fast", ", ".join(native))
            return True
        log.info("bfloat16: timing bfloat16 against float32 convolutions on this CPU (once, a few seconds)")
        timings = _time_bf16(threads)
        speed = timings[0] / max(timings[1], 1e-9)
        _CPU_BF16_FAST[threads] = timings[1] * 1.3 < timings[0]
        if _CPU_BF16_FAST[threads]:
            log.info("bfloat16: convolutions run %.2gx as fast as float32 on this CPU", speed)
        else:
            log.info("bfloat16: convolutions run %.2gx as fast as float32 on this CPU (no AVX512-BF16 or AMX): "
                     "using float32", speed)
    return _CPU_BF16_FAST[threads]


#: A bf16 conv this many times slower than float32 in one timed run cannot turn 1.3x faster in
#: the next ones (load inflated a single timing by at most ~3.5x): the timing stops there.
BF16_HOPELESS = 4.0


def _time_bf16(threads: int) -> list[float]:
    """Best seconds of one 32-channel 3D conv in float32 and under bf16 autocast (up to five
    interleaved runs each, after a warm-up run that alone decides when bf16 is 8x slower;
    ``threads`` only names the caller's thread count in the log).

    The warm-up is a smaller conv (a ninth of the FLOPs), in float32 through oneDNN as the
    float32 ``Predictor`` runs it: emulated bf16 (AVX2) is 30-200x slower there, so the warm-up
    decides in 0.3 s where the full-size one took 2.9 s (2-core AVX2 CPU).
    """
    conv = torch.nn.Conv3d(32, 32, 3).to(memory_format=torch.channels_last_3d).eval()
    x = torch.randn(1, 32, 18, 34, 34).to(memory_format=torch.channels_last_3d)
    small = x[:, :, :10, :18, :18].contiguous(memory_format=torch.channels_last_3d)
    float32 = _onednn_conv(conv)
    warm_up = [0.0, 0.0]
    with torch.no_grad():
        for mode, enabled in enumerate((False, True)):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                start = time.perf_counter()
                (conv if enabled else float32)(small)  # warm-up (oneDNN primitive creation)
                warm_up[mode] = time.perf_counter() - start
        if warm_up[1] > 2 * BF16_HOPELESS * warm_up[0]:  # emulated: primitive creation is no 8x of a conv
            log.debug("bfloat16 warm-up with %d threads: float32 %.4f s, bfloat16 %.4f s", threads, *warm_up)
            return warm_up
        for enabled in (False, True):  # the full-size primitives, so the first timed run is a run
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                conv(x)
        timings = [float("inf"), float("inf")]
        for _ in range(5):
            for mode, enabled in enumerate((False, True)):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
                    start = time.perf_counter()
                    conv(x)
                    timings[mode] = min(timings[mode], time.perf_counter() - start)
            if timings[1] > BF16_HOPELESS * timings[0]:
                break
    log.debug("bfloat16 timing with %d threads: float32 %.4f s, bfloat16 %.4f s", threads, *timings)
    return timings


def _onednn_conv(conv: torch.nn.Module):
    """``conv`` (a valid 3D conv) as the fused oneDNN call of the float32 network, where there is one."""
    weight = getattr(conv, "weight", None)
    if weight is None or not onednn_available():
        return conv
    return _FusedConv3d(weight.detach(), None if conv.bias is None else conv.bias.detach(), relu=False)


#: bf16 autocast is used only where it keeps every affinity within this of float32.
BF16_MAX_ERROR = 2.0 / 255.0


def bf16_affinity_error(model: AffinityNet, output_shape: tuple[int, int, int] = (8, 16, 16), seed: int = 0) -> float:
    """Largest |affinity(bf16 autocast) - affinity(float32)| of ``model`` on a smooth random
    probe block (CPU) whose output is ``output_shape`` voxels, zyx. The "auto" precision uses
    bf16 only when this is below ``BF16_MAX_ERROR``: how much bf16 rounding moves the
    affinities depends on the weights, so it is measured per model rather than assumed."""
    from scipy import ndimage

    shape = shapes.valid_input_shape(model.config, output_shape)
    rng = np.random.default_rng(seed)
    probe = ndimage.gaussian_filter(rng.random((model.config.in_channels,) + shape), (0, 1.5, 1.5, 1.5))
    probe = (probe - probe.min()) / max(float(probe.max() - probe.min()), 1e-9)
    x = torch.from_numpy(probe.astype(np.float32))[None]
    model = model.to("cpu").eval()
    n = model.config.num_affinities
    with torch.inference_mode():
        reference = torch.sigmoid(model(x)[:, :n].float())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = torch.sigmoid(model(x)[:, :n].float())
    return float((reference - low).abs().max())


class Predictor:
    """Runs an ``AffinityNet`` on raw blocks that include context.

    Args:
        model: the network (its ``config`` gives offsets, voxel size, input channels).
        device: "cpu", "cuda", a torch device, or None for CUDA when present else CPU.
        output_dtype: "uint8" (affinity * 255, rounded) or "float16" (affinity in [0, 1]).
        precision: "auto" picks float16 autocast on CUDA, bfloat16 on a CPU where it is
            measured faster than float32, else float32.
        freeze: CPU float32 only. True: trace and freeze the network per block shape with
            ``torch.jit.optimize_for_inference``. "auto": run a copy whose convolutions call
            oneDNN directly (:func:`~axonseg.model.onednn.onednn_network`: ReLU, BatchNorm
            and upsampling folded in, packed weights, reused buffers; 4x eager and 2.5x eager
            channels-last at 104x168x168 on a 2-core AVX2 CPU, no tracing); eager where
            oneDNN is missing. False: eager.
        tta: ``"flips"`` averages the network over y and x flips of each block (4 passes, see
            :func:`flip_sets`); ``"none"`` runs it once.
    """

    def __init__(
        self,
        model: AffinityNet,
        device: str | torch.device | None = None,
        output_dtype: Literal["uint8", "float16"] = "uint8",
        precision: Precision = "auto",
        freeze: bool | Literal["auto"] = "auto",
        tta: Literal["none", "flips"] = "none",
    ) -> None:
        if tta not in ("none", "flips"):
            raise InputError(f"tta={tta!r}: expected 'none' or 'flips'")
        self.tta = tta
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.config = model.config
        # a private copy: converting to channels_last / eval must not change the caller's model
        self.model = copy.deepcopy(model).eval().to(self.device, memory_format=torch.channels_last_3d)
        self.output_dtype = output_dtype
        if precision == "auto":
            if self.device.type == "cuda":
                precision = "float16"
            elif cpu_bf16_is_fast():
                error = bf16_affinity_error(self.model)
                precision = "bfloat16" if error < BF16_MAX_ERROR else "float32"
                if precision == "float32":
                    log.info("bfloat16 moves this model's affinities by up to %.3f (more than %.3f): using float32",
                             error, BF16_MAX_ERROR)
            else:
                precision = "float32"
        self.precision = precision
        self.context = shapes.context(self.config)
        self.freeze = freeze if self.device.type == "cpu" and self.precision == "float32" else False
        self._networks: dict[tuple[int, ...], torch.nn.Module | torch.jit.ScriptModule] = {}
        self._fused = onednn_network(self.model) if self.freeze == "auto" else None

    def _network(self, x: torch.Tensor) -> torch.nn.Module | torch.jit.ScriptModule:
        """The eager model, the oneDNN-fused copy, or a frozen trace specialised to this input shape."""
        if self.freeze is False:
            return self.model
        if self.freeze == "auto":
            return self._fused or self.model
        key = tuple(x.shape)
        if key not in self._networks:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer warnings: shapes are fixed per trace on purpose
                traced = torch.jit.trace(self.model, x, check_trace=False)
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            self._networks[key] = frozen
        return self._networks[key]

    def _check(self, raw: np.ndarray, voxel_size: Sequence[float] | None, batched: bool) -> np.ndarray:
        spatial_dims = 3 + int(batched)
        if raw.ndim == spatial_dims:
            raw = raw[:, None] if batched else raw[None]
        if raw.ndim != spatial_dims + 1:
            raise InputError(f"raw has {raw.ndim} dimensions: expected {'(batch, ' if batched else '('}[c,] z, y, x)")
        channels = raw.shape[-4]
        if channels != self.config.in_channels:
            raise InputError(
                f"raw has {channels} channel(s) but the model expects in_channels={self.config.in_channels}"
            )
        if voxel_size is not None:
            if not self.config.accepts_voxel_size(voxel_size):
                raise InputError(
                    f"raw has voxel_size {[float(v) for v in voxel_size]} nm but the model was trained at "
                    f"{self.config.voxel_size_text(axes=True)}: resample the volume or use a matching model"
                )
        if not shapes.is_valid_input_shape(self.config, raw.shape[-3:]):
            shapes.valid_output_shape(self.config, raw.shape[-3:])  # raises with a suggestion
        return raw

    def __call__(self, raw: np.ndarray, voxel_size: Sequence[float] | None = None) -> np.ndarray:
        """Affinities of the centre of one block.

        Args:
            raw: ``(z, y, x)`` or ``(c, z, y, x)`` of a valid input shape (voxels), uint8,
                uint16 or float in [0, 1].
            voxel_size: nm, zyx, of ``raw``; checked against the model's when given.

        Returns:
            ``(num_offsets, z', y', x')`` with ``z' = z - 2 * context_z`` etc., uint8 or float16.
        """
        return self.predict_batch(raw[None], voxel_size)[0]

    def predict_batch(self, raws: np.ndarray, voxel_size: Sequence[float] | None = None) -> np.ndarray:
        """Like ``__call__`` for a batch ``(batch, [c,] z, y, x)`` of equally shaped blocks."""
        raws = self._check(np.asarray(raws), voxel_size, batched=True)
        x = raw_tensor(raws, self.device).contiguous(memory_format=torch.channels_last_3d)
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(self.precision)
        network = self._network(x)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            if self.tta == "none":
                probabilities = torch.sigmoid(network(x)[:, : self.config.num_affinities].float())
            else:
                probabilities = self._flip_average(network, x)
            if self.output_dtype == "uint8":
                out = (probabilities * 255.0 + 0.5).to(torch.uint8)
            else:
                out = probabilities.to(torch.float16)
        return out.contiguous().cpu().numpy()


    def _flip_average(self, network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Affinity probabilities averaged over the flips that keep each channel's meaning.

        The four passes run one after another: one batch of four measured 15% slower and took
        2.1x the memory (3.13 vs 2.73 s, 1.7 vs 0.8 GB at 104x168x168 on a 2-core AVX2 CPU)."""
        total, count = None, torch.zeros(self.config.num_affinities, device=x.device)
        for flips, valid in flip_sets(self.config.offsets):
            dims = [{"y": -2, "x": -1}[axis] for axis in flips]
            flipped = x.flip(dims).contiguous(memory_format=torch.channels_last_3d) if dims else x
            probabilities = torch.sigmoid(network(flipped)[:, : self.config.num_affinities].float())
            if dims:
                probabilities = probabilities.flip(dims)
            weights = torch.as_tensor(valid, dtype=torch.float32, device=x.device)
            term = probabilities * weights[None, :, None, None, None]
            total = term if total is None else total + term
            count += weights
        return total / count[None, :, None, None, None]


def flip_sets(offsets: Sequence[Sequence[int]]) -> list[tuple[tuple[str, ...], list[bool]]]:
    """Test-time flips and, per affinity channel, whether a flip keeps its meaning.

    A flip along an axis maps the edge from a voxel to its neighbour at ``-d`` onto the edge to
    the neighbour at ``+d``: for a channel whose offset has a component along a flipped axis,
    the flipped prediction belongs to another voxel (``d`` away, possibly outside the block).
    Such channels average only the flips that leave their axis alone, so every block's output
    stays a function of its own input (block-invariant) and no voxel needs a shifted value.
    With zyx offsets along one axis each, z channels average all four passes and y (x)
    channels the two passes without a y (x) flip.

    Args:
        offsets: the affinity offsets, voxels (dz, dy, dx) each.

    Returns:
        ``[(flipped axes, valid per channel), ...]`` for no flip, y, x and both.
    """
    sets = []
    for flips in ((), ("y",), ("x",), ("y", "x")):
        axes = [{"y": 1, "x": 2}[axis] for axis in flips]
        sets.append((flips, [all(int(offset[a]) == 0 for a in axes) for offset in offsets]))
    return sets


def predict_volume(
    raw: np.ndarray,
    predictor: Predictor,
    block_shape: Sequence[int],
    batch_size: int = 1,
    voxel_size: Sequence[float] | None = None,
) -> np.ndarray:
    """Affinities of a whole in-memory volume, computed block by block.

    Each block reads its context; the volume is reflect-padded at its borders (also when it
    is smaller than the context). Block starts are multiples of the network's shape step, so
    the result does not depend on ``block_shape`` (up to float rounding).

    Args:
        raw: ``(z, y, x)`` or ``(c, z, y, x)`` raw volume.
        predictor: the ``Predictor`` to run.
        block_shape: output block shape in voxels (zyx), rounded up to the shape step.
        batch_size: blocks per network call.
        voxel_size: nm, zyx, of ``raw`` (checked against the model when given).

    Returns:
        ``(num_offsets, z, y, x)`` affinities (dtype of the predictor's output).
    """
    cfg = predictor.config
    if raw.ndim == 3:
        raw = raw[None]
    volume = raw.shape[-3:]
    step = shapes.shape_step(cfg)
    ctx = shapes.context(cfg)
    write = tuple(int(math.ceil(b / s) * s) for b, s in zip(block_shape, step))
    in_shape = shapes.valid_input_shape(cfg, write)
    out_shape = tuple(i - 2 * c for i, c in zip(in_shape, ctx))
    counts = [int(math.ceil(v / w)) for v, w in zip(volume, write)]
    if any(v < c for v, c in zip(volume, ctx)):
        log.warning("raw shape %s is smaller than the network context %s: padding by reflection", volume, ctx)
    pad = [(0, 0)] + [(c, n * w - v + (o - w) + c) for c, n, w, v, o in zip(ctx, counts, write, volume, out_shape)]
    padded = np.pad(raw, pad, mode="reflect" if min(volume) > 1 else "symmetric")
    out_dtype = np.uint8 if predictor.output_dtype == "uint8" else np.float16
    affinities = np.zeros((cfg.num_affinities,) + tuple(n * w for n, w in zip(counts, write)), dtype=out_dtype)
    starts = [tuple(i * w for i, w in zip(index, write)) for index in np.ndindex(*counts)]
    for first in range(0, len(starts), batch_size):
        batch_starts = starts[first : first + batch_size]
        blocks = np.stack([padded[(slice(None),) + tuple(slice(s, s + i) for s, i in zip(st, in_shape))] for st in batch_starts])
        result = predictor.predict_batch(blocks, voxel_size)
        for st, block in zip(batch_starts, result):
            affinities[(slice(None),) + tuple(slice(s, s + w) for s, w in zip(st, write))] = block[(slice(None),) + tuple(slice(0, w) for w in write)]
    return affinities[(slice(None),) + tuple(slice(0, v) for v in volume)]
