"""A CPU float32 inference copy of an ``AffinityNet`` whose convolutions call oneDNN directly.

Same function as the eager network up to float rounding; ``Predictor`` runs it (``freeze="auto"``).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import threading

import torch
from torch import nn

from axonseg.model import shapes
from axonseg.model.unet import AffinityNet

log = logging.getLogger(__name__)

_CL = torch.channels_last_3d
_VALID = ([0, 0, 0], [1, 1, 1], [1, 1, 1], 1)  # padding, stride, dilation, groups of every conv here


class _Workspace:
    """Reused float32 buffers for the network's intermediate outputs.

    A fresh tensor of 30-110 MB costs a page fault per 4 KB on first touch (the kernel zeroes
    each page): 100-170 thousand faults, 0.3-0.4 CPU s, per 104x168x168 forward on a 2-core
    AVX2 CPU, a quarter of its time. Buffers lent from here stay mapped between forwards (the
    predict stage's ``malloc_trim`` cannot return them), and one that is given back serves the
    next layer that fits, so the workspace holds about the forward's peak, not the sum of layers.
    Buffers no forward used since :meth:`start` are dropped at :meth:`finish` (a new input
    shape does not keep the old shape's buffers).
    """

    def __init__(self) -> None:
        self._free: list[torch.Tensor] = []
        self._lent: dict[int, torch.Tensor] = {}
        self._used: set[int] = set()

    @property
    def nbytes(self) -> int:
        """Bytes held (free and lent)."""
        return sum(flat.numel() * flat.element_size() for flat in self._free + list(self._lent.values()))

    def start(self) -> None:
        self._used = set()

    def finish(self) -> None:
        self._free = [flat for flat in self._free if id(flat) in self._used]

    def take(self, shape: tuple[int, ...]) -> torch.Tensor:
        """An uninitialised channels-last ``(n, c, z, y, x)`` float32 tensor."""
        n, c, z, y, x = shape
        numel = n * c * z * y * x
        fits = [i for i, flat in enumerate(self._free) if flat.numel() >= numel]
        if fits:
            flat = self._free.pop(min(fits, key=lambda i: self._free[i].numel()))
        else:
            flat = torch.empty(numel)
        self._used.add(id(flat))
        view = flat[:numel].view(n, z, y, x, c).permute(0, 4, 1, 2, 3)
        self._lent[view.data_ptr()] = flat
        return view

    def give(self, tensor: torch.Tensor) -> None:
        """Return a tensor from :meth:`take` (others are ignored: torch frees them)."""
        flat = self._lent.pop(tensor.data_ptr(), None)
        if flat is not None:
            self._free.append(flat)


def _fold_batch_norm(conv: nn.Conv3d, norm: nn.BatchNorm3d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``norm(conv(x))`` as one convolution (eval mode: running statistics)."""
    weight = conv.weight.detach()
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(weight.shape[0])
    if norm is None:
        return weight, bias
    scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)  # type: ignore[operator]
    return weight * scale[:, None, None, None, None], (bias - norm.running_mean) * scale + norm.bias.detach()  # type: ignore[operator]


def _pack(weight: torch.Tensor) -> torch.Tensor:
    """The weight in oneDNN's blocked layout, reordered once here instead of on every call
    (13 reorders per forward, 80 ms of 1.3 s on a loaded 2-core AVX2 CPU); the plain
    channels-last weight where this torch cannot pack."""
    plain = weight.contiguous(memory_format=_CL)
    reorder = getattr(torch.ops.mkldnn, "_reorder_convolution_weight", None)
    if reorder is None:
        return plain
    try:
        return reorder(plain, *_VALID)
    except RuntimeError:
        return plain


class _FusedConv3d(nn.Module):
    """A valid, stride-1 3D convolution with its bias and optional ReLU as one oneDNN call.

    PyTorch sends a batch-1 3D conv with few input channels (``N*C*Z*Y <= 20480``) to its slow
    im2col path and runs a ReLU as a separate pass over memory; oneDNN with a fused ReLU avoids
    both. With a workspace the output goes into a reused buffer; with ``add`` (a channels-last
    tensor of the output's shape) the result is ``relu(conv(x) + bias + add)``, written into ``add``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, relu: bool) -> None:
        super().__init__()
        self.out_channels, self.kernel = int(weight.shape[0]), tuple(int(k) for k in weight.shape[2:])
        #: multiply-adds x 2 per output voxel (for FLOP counts)
        self.flops_per_voxel = 2 * math.prod(weight.shape[1:])
        self.register_buffer("weight", _pack(weight))
        self.register_buffer("bias", None if bias is None else bias.detach().clone().float())
        self.relu = relu

    def output_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        spatial = tuple(s - k + 1 for s, k in zip(x.shape[2:], self.kernel))
        return (x.shape[0], self.out_channels) + spatial

    def forward(self, x: torch.Tensor, workspace: _Workspace | None = None,
                add: torch.Tensor | None = None) -> torch.Tensor:
        if add is None and workspace is None:
            return torch.ops.mkldnn._convolution_pointwise(x, self.weight, self.bias, *_VALID,
                                                           "relu" if self.relu else "none", [], "")
        if add is None:
            add = workspace.take(self.output_shape(x)).zero_()  # type: ignore[union-attr]
        return torch.ops.mkldnn._convolution_pointwise_.binary(add, x, self.weight, self.bias, *_VALID, "add", None,
                                                               "relu" if self.relu else None, [], "")


def _fold_upsampling(up: torch.Tensor, up_bias: torch.Tensor, conv: torch.Tensor,
                     factors: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``conv(upsample(below))`` as one convolution of ``below`` whose output voxels are the
    ``prod(factors)`` sub-grid positions of the fine output (channels ordered ``rz, ry, rx, o``).

    ``up`` is a transposed-conv weight ``(c_below, c_up, *factors)`` whose kernel equals its
    stride, ``conv`` the ``(o, c_up, *kernel)`` weight that reads the upsampled channels. Fine
    output voxel ``f*q + r`` reads fine input ``f*q + r + k``, i.e. coarse voxel
    ``q + (r + k) // f`` at sub-position ``(r + k) % f``; summing the products of the two
    weights per coarse offset gives the folded kernel. For 2x upsampling and a 3-kernel it
    has 8x the output channels and 2-kernels: 27% of the FLOPs of upsampling then convolving,
    and no upsampled tensor. Returns None where a sub-grid would get another output count
    (``(kernel - 1) % factor != 0``).

    Returns:
        The folded weight and the bias the upsampling's bias adds to the conv's output.
    """
    kernel = tuple(conv.shape[2:])
    if any((k - 1) % f for k, f in zip(kernel, factors)):
        return None
    size = [(f - 1 + k - 1) // f + 1 for f, k in zip(factors, kernel)]
    folded = torch.zeros(*factors, conv.shape[0], up.shape[0], *size, dtype=torch.float64)
    for r in itertools.product(*(range(f) for f in factors)):
        for k in itertools.product(*(range(k) for k in kernel)):
            d = tuple((ri + ki) // f for ri, ki, f in zip(r, k, factors))
            sub = tuple((ri + ki) % f for ri, ki, f in zip(r, k, factors))
            folded[r + (slice(None), slice(None)) + d] += conv[(slice(None), slice(None)) + k].double() @ up[(slice(None), slice(None)) + sub].double().T
    bias = conv.double().sum(dim=(2, 3, 4)) @ up_bias.double()
    return folded.reshape(-1, up.shape[0], *size).float(), bias.float()


class _Merge(nn.Module):
    """``relu(conv(cat([crop(skip), upsample(below)])))``, the first convolution of an up-pass,
    without the concatenation and (where it folds) without the upsampled tensor: the part of
    the convolution that reads upsampled channels runs on ``below`` (:func:`_fold_upsampling`)
    and is shuffled to the fine grid, or else runs on the upsampled tensor; then the part that
    reads the cropped skip adds itself in place. At the finest level of a 104x168x168 input
    (2-core AVX2) the concatenation alone cost 60 ms, a third of the convolution after it."""

    def __init__(self, upsample: nn.Module, factors: tuple[int, int, int], conv: nn.Conv3d,
                 norm: nn.BatchNorm3d | None, relu: bool, skip_channels: int) -> None:
        super().__init__()
        weight, bias = _fold_batch_norm(conv, norm)
        from_up = weight[:, skip_channels:]
        if isinstance(upsample, nn.ConvTranspose3d):
            up_weight = upsample.weight.detach()
            up_bias = upsample.bias.detach() if upsample.bias is not None else torch.zeros(up_weight.shape[1])
            fold = _fold_upsampling(up_weight, up_bias, from_up, factors) if tuple(upsample.stride) == factors \
                and tuple(upsample.kernel_size) == factors else None
        else:  # nearest: a transposed conv with identity weights
            channels = from_up.shape[1]
            eye = torch.eye(channels)[:, :, None, None, None].expand(-1, -1, *factors)
            fold = _fold_upsampling(eye, torch.zeros(channels), from_up, factors)
        self.factors = factors
        self.upsample = None if fold is not None else upsample
        self.from_up = _FusedConv3d(fold[0] if fold else from_up, None, relu=False)
        self.skip = _FusedConv3d(weight[:, :skip_channels], bias + (fold[1] if fold else 0.0), relu)

    def forward(self, skip: torch.Tensor, below: torch.Tensor, workspace: _Workspace) -> torch.Tensor:
        if self.upsample is not None:
            fine = self.from_up(self.upsample(below).contiguous(memory_format=_CL), workspace)
        else:
            coarse = self.from_up(below, workspace)
            n, _, z, y, x = coarse.shape
            fz, fy, fx = self.factors
            channels = self.skip.out_channels
            fine = workspace.take((n, channels, z * fz, y * fy, x * fx))
            fine.permute(0, 2, 3, 4, 1).view(n, z, fz, y, fy, x, fx, channels).copy_(
                coarse.permute(0, 2, 3, 4, 1).view(n, z, y, x, fz, fy, fx, channels).permute(0, 1, 4, 2, 5, 3, 6, 7))
            workspace.give(coarse)
        # the eager network crops the skip to the upsampled extent: the fine output plus the kernel's reach
        extent = [f + k - 1 for f, k in zip(fine.shape[2:], self.skip.kernel)]
        start = [(s - e) // 2 for s, e in zip(skip.shape[2:], extent)]
        crop = skip[(slice(None), slice(None)) + tuple(slice(a, a + e) for a, e in zip(start, extent))]
        cropped = workspace.take(tuple(crop.shape))
        cropped.copy_(crop)
        out = self.skip(cropped, add=fine)
        workspace.give(cropped)
        return out


def _conv_pass(layers: list[nn.Module], scale_input: bool = False) -> nn.ModuleList:
    """Each ``Conv3d`` [+ ``BatchNorm3d``] [+ ``ReLU``] of an eager pass as one :class:`_FusedConv3d`.
    ``scale_input`` folds the network's ``x * 2 - 1`` into the first convolution (valid convs:
    every output sees only real input)."""
    fused, i = [], 0
    while i < len(layers):
        conv = layers[i]
        if not isinstance(conv, nn.Conv3d):
            raise TypeError(f"unexpected layer {type(conv).__name__} in a conv pass")
        norm = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm3d) else None
        after = i + 1 + (norm is not None)
        relu = after < len(layers) and isinstance(layers[after], nn.ReLU)
        weight, bias = _fold_batch_norm(conv, norm)  # type: ignore[arg-type]
        if scale_input and i == 0:
            weight, bias = weight * 2.0, bias - weight.sum(dim=(1, 2, 3, 4))
        fused.append(_FusedConv3d(weight, bias, relu))
        i = after + relu
    return nn.ModuleList(fused)


def _check_geometry(model: AffinityNet) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv3d) and (any(module.padding) or any(s != 1 for s in module.stride)  # type: ignore[arg-type]
                                              or any(d != 1 for d in module.dilation) or module.groups != 1):
            raise ValueError("only valid, stride-1 convolutions are fused")


class OneDnnAffinityNet(nn.Module):
    """The forward pass of an ``AffinityNet`` (eval mode) on fused oneDNN convolutions:
    ReLU, BatchNorm and the input scaling folded into the convolutions, weights packed once,
    upsampling folded into the convolution after it (:class:`_Merge`), and intermediate outputs
    in reused buffers (:class:`_Workspace`). Input and output are ``(n, c, z, y, x)`` float32;
    one forward at a time (a lock guards the workspace)."""

    def __init__(self, model: AffinityNet) -> None:
        super().__init__()
        _check_geometry(model)
        self.config = model.config
        unet = model.unet
        self.down = nn.ModuleList(_conv_pass(list(block), scale_input=level == 0) for level, block in enumerate(unet.down))
        self.pool = unet.pool
        merges, rests = [], []
        for level, block in enumerate(unet.up_conv):
            layers = list(block)
            norm = layers[1] if len(layers) > 1 and isinstance(layers[1], nn.BatchNorm3d) else None
            after = 1 + (norm is not None)
            relu = after < len(layers) and isinstance(layers[after], nn.ReLU)
            skip_channels = self.down[level][-1].out_channels
            merges.append(_Merge(unet.up[level], tuple(unet.factors[level]), layers[0], norm, relu, skip_channels))  # type: ignore[arg-type]
            rests.append(_conv_pass(layers[after + relu :]))
        self.merge, self.up_rest = nn.ModuleList(merges), nn.ModuleList(rests)
        self.head = _FusedConv3d(*_fold_batch_norm(model.head, None), relu=False)
        self._workspace = _Workspace()
        self._lock = threading.Lock()

    def _pass(self, convs: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        for conv in convs:
            out = conv(x, self._workspace)
            self._workspace.give(x)
            x = out
        return x

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        left = self._pass(self.down[level], x)
        if level == len(self.down) - 1:
            return left
        below = self._level(level + 1, self.pool[level](left))
        merged = self.merge[level](left, below, self._workspace)
        self._workspace.give(left)
        self._workspace.give(below)
        return self._pass(self.up_rest[level], merged)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with self._lock:
            self._workspace.start()
            try:
                features = self._level(0, x.float().contiguous(memory_format=_CL))
            except BaseException:
                self._workspace = _Workspace()  # buffers lent to the failed forward are not coming back
                raise
            logits = self.head(features)  # a fresh tensor: callers may keep it across forwards
            self._workspace.give(features)
            self._workspace.finish()
            return logits


def available() -> bool:
    """Whether this torch has oneDNN and the fused convolution ops this module calls."""
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and all(hasattr(ops, op) for op in ("_convolution_pointwise", "_convolution_pointwise_"))


def onednn_network(model: AffinityNet) -> OneDnnAffinityNet | None:
    """The :class:`OneDnnAffinityNet` of ``model`` (on the CPU), or None where this torch has
    no oneDNN, the model has layers it does not fuse, or the fused ops fail.

    Measured on a 2-core AVX2 CPU (one 104x168x168 input, fib_default, seconds per forward):
    eager 1.6, eager channels-last 0.97, ``torch.jit.freeze`` 1.3, ``torch.compile`` (inductor,
    freezing) 0.73 after 16 s of compiling, oneDNN convolutions with fused ReLU 0.75, plus no
    concatenation and packed weights 0.69, this network 0.39 (upsampling folded: 72% of the
    FLOPs; reused buffers: 10k page faults instead of 170k).
    """
    if not available():
        return None
    probe = torch.rand((1, model.config.in_channels) + shapes.valid_input_shape(model.config, (1, 1, 1)))
    try:
        fused = OneDnnAffinityNet(copy.deepcopy(model).to("cpu").eval())
        with torch.inference_mode():
            fused(probe)
    except (RuntimeError, AttributeError, TypeError, ValueError) as err:  # an unusual build or model: eager
        log.info("oneDNN fused convolutions unavailable (%s): using eager", err)
        return None
    return fused
