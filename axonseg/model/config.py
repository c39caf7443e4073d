"""The typed architecture config of the affinity U-Net: one flat pydantic model.

It is saved next to every checkpoint, so a model file always says what it predicts
(affinity offsets), at which voxel size (nm, zyx) it was trained, and how it is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from axonseg.errors import InputError

Triple = tuple[int, int, int]

NEAREST_OFFSETS: list[Triple] = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]
DEFAULT_OFFSETS: list[Triple] = NEAREST_OFFSETS + [
    (0, -3, 0),
    (0, 0, -3),
    (0, -9, 0),
    (0, 0, -9),
    (-2, 0, 0),
]

LSD_CHANNELS = 10


def nearest_channels(offsets: Sequence[Sequence[int]]) -> list[int]:
    """Indices of the three nearest-neighbour offsets (-z, -y, -x) within ``offsets``.

    Raises:
        InputError: one of them is missing (naming which).
    """
    listed = [tuple(int(v) for v in o) for o in offsets]
    missing = [tuple(o) for o in NEAREST_OFFSETS if tuple(o) not in listed]
    if missing:
        raise InputError(f"model.offsets {listed} lack {missing}: MALIS needs the three nearest-neighbour "
                         f"offsets {list(NEAREST_OFFSETS)}")
    return [listed.index(tuple(o)) for o in NEAREST_OFFSETS]



#: A model runs on voxel sizes within this relative tolerance of its own (or of its range).
VOXEL_SIZE_RTOL = 0.05

Range = tuple[float, float]


class ModelConfig(BaseModel):
    """Architecture of a MALA-style 3D U-Net with valid convolutions and an affinity head.

    Attributes:
        in_channels: channels of the raw input (1 for EM).
        num_fmaps: feature maps at the top level.
        fmap_inc_factor: feature maps grow by this factor per level down.
        downsample_factors: one (z, y, x) max-pool factor per level transition, e.g.
            (1, 2, 2) for anisotropic 30x8x8 nm or (2, 2, 2) for isotropic data.
        kernel_size_down: per level (len(downsample_factors) + 1), the list of conv kernel
            sizes (z, y, x) on the encoder side; every size must be odd. Default: two 3x3x3.
        kernel_size_up: per level except the bottom one, the decoder conv kernels.
        upsample: "transposed_conv" (learned) or "nearest" (constant) upsampling.
        norm: "batch" puts a BatchNorm after every convolution of the U-Net (without norm the
            bottom level of the 2026 FIB model died within 600 steps). At batch size 1 it
            normalises over the crop's voxels while training, and predicts with the running
            statistics, so every block of a volume sees the same per-channel affine map and
            blockwise prediction stays block-invariant. GroupNorm would normalise with each
            tile's own statistics and leave seams between blocks, so it is not offered.
            "none" is the plain conv + ReLU of models trained before it; a model file without
            this key was written before it existed and loads as "none".
        offsets: affinity offsets in voxels (z, y, x); channel i of the output is the
            affinity between voxel p and voxel p + offsets[i].
        lsd: add an auxiliary head of 10 local shape descriptor channels (training only).
        lsd_sigma_nm: Gaussian sigma in nm of the LSD target.
        voxel_size: voxel size in nm (z, y, x) the model was trained at.
        voxel_size_range: optional (min, max) nm per axis (z, y, x) of the voxel sizes the
            model was trained on, when training drew volumes from a range of voxel sizes and
            presented them all as ``voxel_size`` (a scale augmentation). Predict then accepts
            any volume inside it (±5%). None: only ``voxel_size`` ±5%. It does not change the
            network, so a run may add it on resume (:meth:`same_architecture`).
    """

    model_config = ConfigDict(extra="forbid")

    in_channels: int = Field(1, ge=1)
    num_fmaps: int = Field(12, ge=1)
    fmap_inc_factor: int = Field(3, ge=1)
    downsample_factors: list[Triple] = Field(default_factory=lambda: [(2, 2, 2), (2, 2, 2)])
    kernel_size_down: list[list[Triple]] | None = None
    kernel_size_up: list[list[Triple]] | None = None
    upsample: Literal["transposed_conv", "nearest"] = "transposed_conv"
    norm: Literal["batch", "none"] = "batch"
    offsets: list[Triple] = Field(default_factory=lambda: list(DEFAULT_OFFSETS))
    lsd: bool = False
    lsd_sigma_nm: float = Field(80.0, gt=0)
    voxel_size: tuple[float, float, float] = (10.0, 10.0, 10.0)
    voxel_size_range: tuple[Range, Range, Range] | None = None

    @field_validator("downsample_factors")
    @classmethod
    def _positive_factors(cls, factors: list[Triple]) -> list[Triple]:
        for factor in factors:
            if any(f < 1 for f in factor):
                raise ValueError(f"downsample factor {factor}: every factor must be >= 1")
        return factors

    @field_validator("offsets")
    @classmethod
    def _nonzero_offsets(cls, offsets: list[Triple]) -> list[Triple]:
        if not offsets:
            raise ValueError("offsets is empty: expected at least one (z, y, x) offset")
        for offset in offsets:
            if all(o == 0 for o in offset):
                raise ValueError("offsets contains (0, 0, 0): an affinity needs a non-zero offset")
        return offsets

    @field_validator("voxel_size")
    @classmethod
    def _positive_voxel_size(cls, voxel_size: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v <= 0 for v in voxel_size):
            raise ValueError(f"voxel_size {voxel_size}: expected three positive numbers of nm (z y x)")
        return voxel_size

    @model_validator(mode="after")
    def _range_holds_voxel_size(self) -> "ModelConfig":
        if self.voxel_size_range is not None:
            for axis, (low, high), size in zip("zyx", self.voxel_size_range, self.voxel_size, strict=True):
                if not 0 < low <= high:
                    raise ValueError(f"voxel_size_range {axis}: ({low}, {high}) nm: expected 0 < min <= max")
                if not low <= size <= high:
                    raise ValueError(
                        f"voxel_size_range {axis}: ({low}, {high}) nm does not hold voxel_size {size} nm"
                    )
        return self

    @model_validator(mode="after")
    def _fill_and_check_kernels(self) -> "ModelConfig":
        levels = self.num_levels
        if self.kernel_size_down is None:
            self.kernel_size_down = [[(3, 3, 3), (3, 3, 3)] for _ in range(levels)]
        if self.kernel_size_up is None:
            self.kernel_size_up = [[(3, 3, 3), (3, 3, 3)] for _ in range(levels - 1)]
        if len(self.kernel_size_down) != levels:
            raise ValueError(
                f"kernel_size_down has {len(self.kernel_size_down)} levels: expected {levels} "
                "(len(downsample_factors) + 1)"
            )
        if len(self.kernel_size_up) != levels - 1:
            raise ValueError(
                f"kernel_size_up has {len(self.kernel_size_up)} levels: expected {levels - 1} "
                "(len(downsample_factors))"
            )
        for kernels in self.kernel_size_down + self.kernel_size_up:
            for kernel in kernels:
                # odd kernels keep every crop symmetric, so the output stays centred on the input
                if any(k < 1 or k % 2 == 0 for k in kernel):
                    raise ValueError(f"kernel size {kernel}: every size must be odd and >= 1")
        return self

    def trained_at(self, voxel_size: Sequence[float], rtol: float = VOXEL_SIZE_RTOL) -> bool:
        """Whether ``voxel_size`` (nm, zyx) is within ``rtol`` of the model's own ``voxel_size``."""
        wanted = [float(v) for v in voxel_size]
        return len(wanted) == 3 and all(abs(w - v) <= rtol * abs(v) for w, v in zip(wanted, self.voxel_size))

    def accepts_voxel_size(self, voxel_size: Sequence[float], rtol: float = VOXEL_SIZE_RTOL) -> bool:
        """Whether a volume of ``voxel_size`` (nm, zyx) is one this model was trained for:
        within ``rtol`` of ``voxel_size`` (:meth:`trained_at`), or of ``voxel_size_range``."""
        if self.trained_at(voxel_size, rtol):
            return True
        if self.voxel_size_range is None:
            return False
        wanted = [float(v) for v in voxel_size]
        return len(wanted) == 3 and all(
            low * (1 - rtol) <= w <= high * (1 + rtol) for w, (low, high) in zip(wanted, self.voxel_size_range)
        )

    def voxel_size_text(self, axes: bool = False) -> str:
        """The voxel sizes the model takes, for messages: "30 8 8 nm" or "30-40 6-10 6-10 nm (z y x)";
        ``axes`` names the axis order in both cases."""
        if self.voxel_size_range is None:
            return " ".join(f"{v:g}" for v in self.voxel_size) + (" nm (z y x)" if axes else " nm")
        return " ".join(f"{low:g}-{high:g}" for low, high in self.voxel_size_range) + " nm (z y x)"

    def same_architecture(self, other: "ModelConfig") -> bool:
        """Whether ``other`` builds the same network with the same weights' meaning: every field
        but ``voxel_size_range``, which only widens the volumes predict accepts."""
        ignored = {"voxel_size_range"}
        return self.model_dump(exclude=ignored) == other.model_dump(exclude=ignored)

    @property
    def num_levels(self) -> int:
        """Number of resolution levels of the U-Net."""
        return len(self.downsample_factors) + 1

    @property
    def num_affinities(self) -> int:
        """Number of affinity channels (one per offset)."""
        return len(self.offsets)

    @property
    def num_outputs(self) -> int:
        """Channels of the network output: affinities, then LSDs when enabled."""
        return self.num_affinities + (LSD_CHANNELS if self.lsd else 0)
