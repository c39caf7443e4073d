"""The typed config of one training run (one flat YAML): data, model, augmentation, schedule."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from axonseg.model.augment import AugmentConfig
from axonseg.errors import InputError
from axonseg.model.config import ModelConfig, nearest_channels


def parse_roi(roi: str) -> tuple[tuple[int | None, int | None], ...]:
    """Parse ``"z0:z1,y0:y1,x0:x1"`` (empty bounds allowed, e.g. ``"0:170,:,:"``) into three
    (start, stop) pairs; missing axes mean the whole axis."""
    parts = [p.strip() for p in roi.split(",")] if roi.strip() else []
    if len(parts) > 3:
        raise ValueError(f"roi {roi!r} has {len(parts)} axes: expected at most three (z, y, x)")
    bounds = []
    for part in parts + [":"] * (3 - len(parts)):
        if ":" not in part:
            raise ValueError(f"roi {roi!r}: axis {part!r} is not 'start:stop'")
        start, stop = part.split(":", 1)
        bounds.append((int(start) if start.strip() else None, int(stop) if stop.strip() else None))
    return tuple(bounds)


class DatasetSpec(BaseModel):
    """One region of one volume used for training or validation.

    Attributes:
        raw: array address of the raw EM (``file.h5:dataset``, ``store.zarr/dataset``).
        labels: array address of the ground-truth labels.
        roi: ``"z0:z1,y0:y1,x0:x1"``, in ``roi_units``; e.g. ``"0:170,:,:"``.
        roi_units: "voxels" or "nm" (nm bounds are divided by the voxel size).
        voxel_size: nm, zyx; None to take it from the array's metadata.
        split: "train" crops are augmented and learnt from; "val" gives the validation loss (never put the held-out test data here).
        labels_roi: optional, same form and units as ``roi`` (whole-array coordinates): labels
            outside it are set to 0 (unlabelled), while the raw of ``roi`` around it stays as
            context. This is how a validation split of the training ROI gets the network's full
            input around a thin labelled slab (needs ``zero_is_unlabelled``).
    """

    model_config = ConfigDict(extra="forbid")

    raw: str
    labels: str
    roi: str = ":,:,:"
    roi_units: Literal["voxels", "nm"] = "voxels"
    voxel_size: tuple[float, float, float] | None = None
    split: Literal["train", "val"] = "train"
    labels_roi: str | None = None

    @field_validator("roi", "labels_roi")
    @classmethod
    def _roi_parses(cls, roi: str | None) -> str | None:
        if roi is not None:
            parse_roi(roi)
        return roi

    def labels_slices(self, voxel_size: tuple[float, float, float]) -> tuple[slice, slice, slice] | None:
        """``labels_roi`` as voxel slices of the whole array (zyx), or None when not set."""
        if self.labels_roi is None:
            return None
        return self.model_copy(update={"roi": self.labels_roi}).roi_slices(voxel_size)

    def roi_slices(self, voxel_size: tuple[float, float, float]) -> tuple[slice, slice, slice]:
        """The ROI as voxel slices (zyx)."""
        scale = voxel_size if self.roi_units == "nm" else (1.0, 1.0, 1.0)
        return tuple(
            slice(None if a is None else int(round(a / s)), None if b is None else int(round(b / s)))
            for (a, b), s in zip(parse_roi(self.roi), scale)
        )  # type: ignore[return-value]


class TrainConfig(BaseModel):
    """Everything a training run needs; saved resolved next to its checkpoints."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[DatasetSpec]
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    output_shape: tuple[int, int, int] = (24, 24, 24)
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(1, ge=1)
    lr: float = Field(5e-4, gt=0)
    lr_warmup_steps: int = Field(200, ge=0, description="linear warm-up from lr/100 to lr over this many steps")
    lr_schedule: Literal["cosine", "constant"] = Field("cosine", description="after warm-up: cosine decay to lr * lr_min_factor at `steps`, or constant")
    lr_min_factor: float = Field(0.05, ge=0, le=1)
    grad_clip: float = Field(1.0, ge=0, description="clip the global gradient norm to this; 0 = off")
    dead_fraction: float = Field(
        0.05, ge=0, le=1,
        description="at each validation, warn when a convolution's ReLU fires on fewer than this fraction of voxels",
    )
    stop_on_dead_layer: bool = Field(False, description="stop training (with an error) instead of warning when a layer dies")
    weight_decay: float = Field(0.0, ge=0)
    checkpoint_every: int = Field(100, ge=1)
    validate_every: int = Field(100, ge=1)
    val_crops: int = Field(4, ge=1)
    bn_calibration_crops: int = Field(
        32, ge=0,
        description="at each validation, recompute BatchNorm statistics as the mean over this many fixed, "
        "un-augmented training crops (precise BN) for validation and model.pt; 0 = the running statistics",
    )
    keep_checkpoints: int = Field(2, ge=1)
    out_dir: str = "runs/train"
    num_workers: int = Field(0, ge=0)
    n_threads: int = Field(1, ge=1, validation_alias=AliasChoices("n_threads", "num_threads"),
                           description="torch CPU threads (num_threads is the old name)")
    seed: int = 0
    amp: Literal["auto", "bfloat16", "off"] = Field(
        "auto", description="bf16 autocast: auto = on CUDA always, on a CPU only where it measures faster than float32",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where the network trains: auto = CUDA when present, else the CPU (augmentation always runs on the CPU)",
    )
    loss: Literal["bce", "mse"] = "bce"
    zero_is_unlabelled: bool = True
    balance: bool = True
    boundary_weight: float = Field(0.0, ge=0)
    boundary_sigma_nm: float = Field(40.0, gt=0)
    lsd_weight: float = Field(1.0, ge=0)
    lsd_downsample: int = Field(
        2, ge=1, description="LSD targets: Gaussian moments on a grid this many times coarser per axis (1 = exact, slower)"
    )
    malis_weight: float = Field(
        0.0, ge=0,
        description="add this times the constrained MALIS loss of the nearest-neighbour affinities "
        "(Funke et al. 2018: pairs weighted by the edge that merges or splits them); 0 = off",
    )
    init_from: str | None = Field(
        None,
        description="start a fresh run from the weights of this model file (model.pt or a training "
        "checkpoint; same architecture), e.g. to fine-tune with another loss; ignored on --resume. A relative "
        "path is read from the working directory, like out_dir (dataset addresses are relative to the YAML)",
    )
    min_labelled_fraction: float = Field(0.3, ge=0, le=1)
    segment_validation_every: int = Field(
        0, ge=0,
        description="every this many steps (a multiple of validate_every), run the first val dataset through "
        "predict -> fragments -> agglomeration -> evaluation and log NERL/VOI at the best threshold; 0 = off",
    )
    segment_validation_thresholds: list[float] = Field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        description="agglomeration thresholds scored by the segmentation validation",
    )

    @model_validator(mode="after")
    def _segment_validation_on_validation_steps(self) -> "TrainConfig":
        if not self.zero_is_unlabelled and any(d.labels_roi for d in self.datasets):
            raise ValueError("datasets.labels_roi needs zero_is_unlabelled: true (labels outside it become 0)")
        if self.malis_weight > 0:
            try:
                nearest_channels(self.model.offsets)
            except InputError as error:
                raise ValueError(f"malis_weight > 0: {error}") from None
        if self.segment_validation_every % self.validate_every:
            raise ValueError(
                f"segment_validation_every={self.segment_validation_every} is not a multiple of "
                f"validate_every={self.validate_every}"
            )
        if any(not 0.0 <= t <= 1.0 for t in self.segment_validation_thresholds):
            raise ValueError("segment_validation_thresholds: every threshold must be in [0, 1]")
        return self
