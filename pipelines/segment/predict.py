"""Predict stage: raw EM -> ``RUN/volume.zarr/affinities`` (czyx, uint8 0-255 or float16), blockwise.

Each block reads its write ROI plus the network's context (mirrored at the volume border, as
``predict_volume`` does) and writes only its write ROI, so the result does not depend on the
block shape. torch already uses every core, so blocks run in one worker, in batches, while a
reader thread fetches the next batch and a writer thread stores the last one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import AliasChoices, Field, field_validator

from axonseg.blockwise import Roi, parse_scheduler
from axonseg.blockwise.outputs import ZarrOutput
from axonseg.blockwise.stage import BlockData, Input, Stage, run_stage
from axonseg.config import ShapeTriple, StrictModel, load_config
from axonseg.errors import InputError, StageError
from axonseg.io import Volume, group_state
from axonseg.model import Predictor, load_model, shapes
from axonseg.model.checkpoint import model_config_from_json, model_from_state, read_model_state
from axonseg.model.config import ModelConfig
from axonseg.model.unet import AffinityNet
from axonseg.pipelines.run_lock import run_lock
from axonseg.pipelines.segment._predict_adapt import check_threshold_statistics, volume_adapted_model
from axonseg.pipelines.segment._predict_blocks import check_finite, predict_grid
from axonseg.pipelines.segment._stage import chunk_shape_for

logger = logging.getLogger(__name__)

STAGE = "affinities"
MARKER_STAGE = "predict"
MODELS_DIR = Path(__file__).resolve().parents[2] / "data" / "models"


class PredictConfig(StrictModel):
    """How ``axonseg predict`` runs (one flat YAML, ``configs/predict.yaml``)."""

    block_shape: ShapeTriple = Field(
        (64, 128, 128),
        description="output (write) block in voxels (z, y, x); rounded up to the network's shape step",
    )
    batch_size: int = Field(1, ge=1, description="blocks per network call")
    output_dtype: Literal["uint8", "float16"] = Field("uint8", description="uint8 = affinity * 255, or float16 in [0, 1]")
    precision: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: float16 AMP on CUDA, bfloat16 on CPUs where it is measured faster, else float32"
    )
    n_threads: int | None = Field(
        None, ge=1, validation_alias=AliasChoices("n_threads", "num_threads"),
        description="torch CPU threads; null: torch's default (all cores); num_threads is the old name",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU")
    tta: Literal["none", "flips"] = Field(
        "none", description="test-time augmentation: flips averages y and x flips of each block (4 network passes)"
    )
    batchnorm: Literal["volume", "model"] = Field(
        "volume",
        description="BatchNorm statistics of a model that has BatchNorm: volume recomputes them once over crops of "
        "the raw being predicted (test-time adaptation, robust to looks outside the training data); model uses "
        "those stored in the model file. Models without BatchNorm ignore it",
    )
    batchnorm_crops: int = Field(16, ge=1, description="crops of the raw that the volume statistics average over")


    @field_validator("precision", mode="before")
    @classmethod
    def _aliases(cls, value: str) -> str:
        return {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(value, value)


def load_predict_config(path: str | Path | None = None) -> PredictConfig:
    """The config from a YAML file, or the defaults when ``path`` is None."""
    return PredictConfig() if path is None else load_config(path, PredictConfig)


@dataclass(frozen=True)
class PredictResult:
    """What the predict stage did.

    Attributes:
        store: ``RUN/volume.zarr``; the affinities are its group ``affinities``.
        model_path: the model file used.
        shape: spatial shape of the affinities, voxels zyx.
        offsets: affinity offsets (z, y, x voxels), one per channel.
        blocks: blocks of the grid; skipped: blocks a killed run had done already.
        precision: the precision the network ran in.
        seconds: wall time of this call.
        config_hash: hash of everything the affinities depend on.
        up_to_date: complete affinities of this config existed; nothing was run.
    """

    store: Path
    model_path: Path
    shape: tuple[int, int, int]
    offsets: list[list[int]]
    blocks: int
    skipped: int
    precision: str
    seconds: float
    config_hash: str
    up_to_date: bool = False


def _model_config(path: Path) -> ModelConfig | None:
    """The ``ModelConfig`` stored in a model file, without building the network."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return model_config_from_json(state["model_config"])
    except Exception:  # noqa: BLE001 - a broken file is simply not a candidate
        logger.warning("%s: not a readable axonseg model; ignored", path)
        return None


#: Lists the folders of ``MODELS_DIR`` that are defaults (one per voxel size).
DEFAULTS_FILE = "defaults.yaml"


def _listed_defaults(models_dir: Path) -> list[str] | None:
    """The folder names ``models_dir/defaults.yaml`` lists, or None without that file."""
    path = models_dir / DEFAULTS_FILE
    if not path.exists():
        return None
    import yaml

    try:
        listed = (yaml.safe_load(path.read_text()) or {}).get("defaults")
    except (yaml.YAMLError, AttributeError) as err:
        raise StageError(f"{path}: expected a mapping with a `defaults` list of model folders ({err})") from None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        raise StageError(f"{path}: `defaults` must be a list of model folder names")
    return listed


def default_model_path(voxel_size: Sequence[float], models_dir: Path | None = None) -> Path:
    """The default model (``data/models/*/model.pt``) trained at ``voxel_size`` (nm, zyx).

    Where ``models_dir/defaults.yaml`` exists, only the folders it lists are defaults, so a
    model still in training beside them (``fib_v4``) is never picked by its folder name's
    order. Without that file, the one model at the voxel size is picked.

    Raises:
        StageError: no model is shipped, none of the defaults matches the voxel size (the
            message lists them), or without ``defaults.yaml`` several do.
    """
    models_dir = Path(models_dir or MODELS_DIR)
    candidates = sorted(models_dir.glob("*/model.pt"))
    if not candidates:
        raise StageError(f"no default model is shipped yet (nothing in {models_dir}/*/model.pt): pass --model PATH")
    listed = _listed_defaults(models_dir)
    if listed is not None:
        candidates = [path for path in candidates if path.parent.name in listed]
    wanted = np.asarray(voxel_size, dtype=float)
    found, matches, nominal = [], [], []
    for path in candidates:
        cfg = _model_config(path)
        if cfg is None:
            continue
        found.append(f"{path.parent.name} ({cfg.voxel_size_text()})")
        if cfg.accepts_voxel_size(wanted):
            matches.append(path)
            if cfg.trained_at(wanted):
                nominal.append(path)
    if len(matches) == 1:
        return matches[0]
    if len(nominal) == 1:  # a model trained at this very size wins over one whose range holds it
        return nominal[0]
    if matches:
        raise StageError(
            f"several models in {models_dir} are trained at voxel size {[float(v) for v in wanted]} nm "
            f"({', '.join(path.parent.name for path in matches)}): list one in {models_dir / DEFAULTS_FILE} "
            "or pass --model PATH"
        )
    raise StageError(
        f"no {'default' if listed is not None else 'shipped'} model is trained at voxel size "
        f"{[float(v) for v in wanted]} nm (z y x); {'defaults' if listed is not None else 'shipped'}: "
        f"{', '.join(found) or 'none readable'}: pass --model PATH"
    )


def check_model_fits(model: AffinityNet, volume: Volume, model_path: Path) -> None:
    """Refuse a model whose input channels or voxel size differ from the volume's (names both)."""
    cfg = model.config
    channels = 1 if volume.data.ndim == 3 else volume.shape[0]
    if channels != cfg.in_channels:
        raise InputError(
            f"raw {volume.source} has {channels} channel(s) but model {model_path} expects "
            f"in_channels={cfg.in_channels}"
        )
    if not cfg.accepts_voxel_size(volume.voxel_size):
        raise InputError(
            f"raw {volume.source} has voxel size {list(volume.voxel_size)} nm but model {model_path} was "
            f"trained at {cfg.voxel_size_text(axes=True)}: resample the volume or pass a matching --model"
        )
    if volume.dtype not in (np.uint8, np.uint16) and volume.dtype.kind != "f":
        raise InputError(f"raw {volume.source} has dtype {volume.dtype}: expected uint8, uint16 or float in [0, 1]")


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _recorded_precision(store: Path, asked: str, device: str | None, model_hash: str) -> str:
    """``asked``; for "auto" on the CPU, the precision this run's affinities were predicted in
    with the same model file, when they record one: a finished predict is not timed again
    (that took 20-40 s on a busy 2-core CPU) and resumed blocks keep their neighbours' precision."""
    on_cuda = device == "cuda" or (device is None and torch.cuda.is_available())
    if asked != "auto" or on_cuda:
        return asked
    recorded = (group_state(store, STAGE) or {}).get("config") or {}
    precision = recorded.get("precision")
    if precision in ("float32", "bfloat16") and (recorded.get("model") or {}).get("sha256") == model_hash:
        logger.info("predict: precision %s (auto), as this run's affinities were predicted", precision)
        return precision
    return asked


@contextmanager
def _torch_threads(n_threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n_threads:
        torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_WORKER_PREDICTORS: dict[tuple, Predictor] = {}


def _raw_reader(volume: Volume) -> Callable[[Roi], np.ndarray]:
    """Reads a ROI inside the raw volume as ``(c, z, y, x)`` (``c`` = 1 for a zyx volume)."""
    lead = (slice(None),) * (volume.data.ndim - 3)

    def read(roi: Roi) -> np.ndarray:
        data = np.asarray(volume.data[lead + roi.to_slices()].compute(scheduler="synchronous"))
        return data[None] if data.ndim == 3 else data

    return read


def _network(predictor: Predictor | None, model_path: str, settings: dict, volume: Volume,  # noqa: ANN202
             n_threads: int | None):
    """``process_batch`` of the stage: the network on a batch of blocks, each cut to its write
    ROI. With ``predictor`` None (a dask worker), each worker loads the model once and uses
    ``n_threads`` torch threads (None: torch's default, every core of the node)."""
    key = (model_path, tuple(sorted(settings.items())))

    def process_batch(batch: list[BlockData]) -> list[np.ndarray]:
        network = predictor
        if network is None:
            if key not in _WORKER_PREDICTORS:
                if n_threads:  # several worker processes per node must not each take every core
                    torch.set_num_threads(n_threads)
                _WORKER_PREDICTORS[key] = Predictor(load_model(model_path), **settings)
            network = _WORKER_PREDICTORS[key]
        for data in batch:
            check_finite(data["raw"], volume.source, data.read_roi)
        result = network.predict_batch(np.stack([data["raw"] for data in batch]), volume.voxel_size)
        # the network's output starts at the block's write offset; keep the part inside the volume
        return [np.ascontiguousarray(values[(slice(None),) + tuple(slice(0, s) for s in data.block.write_roi.shape)])
                for data, values in zip(batch, result)]

    return process_batch


def run_predict(
    run_dir_or_out: str | Path,
    raw_address: str | Path,
    model_path: str | Path | None = None,
    config: PredictConfig | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
    voxel_size: Sequence[float] | None = None,
) -> PredictResult:
    """Write ``RUN/volume.zarr/affinities`` from a raw EM array, blockwise and resumable.

    The run folder is locked while predict writes (``RUN/.lock``).

    Args:
        run_dir_or_out: the run folder (created if missing).
        raw_address: the raw array: ``store.zarr/dataset``, ``file.h5:dataset``, tif, npy, n5;
            zyx (or czyx for multi-channel models), with a voxel size in its metadata.
        model_path: a model file written by ``axonseg train``; None: the shipped model whose
            voxel size matches the raw's (``data/models/*/model.pt``).
        config: block shape (voxels), batch size, output dtype, precision, threads.
        scheduler: ``synchronous`` or ``threads[:N]`` run all blocks in this process (one
            network worker with a read-ahead thread: torch already uses every core);
            ``local[:N]`` or ``tcp://host:port`` send single blocks to dask workers.
        restart: drop the done markers of an interrupted run with another config.
        show_progress: draw a progress bar.
        voxel_size: nm (zyx), for a raw whose file carries none.

    Returns:
        A :class:`PredictResult`.

    Raises:
        InputError: unreadable raw, model channels or voxel size that differ from the raw's,
            an unsupported dtype, NaN or inf in float raw.
        StageError: no model given and none shipped for the voxel size; an interrupted run
            used another config and ``restart`` is False.
        RunLockedError: another process writes into the run folder.
    """
    from axonseg.pipelines.segment.inputs import open_raw  # inputs imports this module

    started = time.perf_counter()
    config = config or PredictConfig()
    run_dir = Path(run_dir_or_out)
    store = run_dir / "volume.zarr"
    volume = open_raw(raw_address, voxel_size)
    path = Path(model_path) if model_path is not None else default_model_path(volume.voxel_size)
    state = read_model_state(path)  # read once: the network, and its extra (threshold, its statistics)
    model = model_from_state(state, path)
    extra = state.get("extra") or {}
    check_model_fits(model, volume, path)
    cfg = model.config
    ctx = shapes.context(cfg)
    if any(v < c for v, c in zip(volume.spatial_shape, ctx)):
        logger.warning(
            "raw %s of shape %s is smaller than the network context %s (voxels z y x): padding by reflection",
            volume.source, volume.spatial_shape, ctx,
        )
    grid = predict_grid(cfg, volume.spatial_shape, config.block_shape)
    device = None if config.device == "auto" else config.device
    logger.info("predict: raw %s (%s voxels of %s nm) with the model %s", volume.source,
                "x".join(map(str, volume.spatial_shape)), "x".join(f"{v:g}" for v in volume.voxel_size), path)
    model_hash = _file_hash(path)
    precision = _recorded_precision(store, config.precision, device, model_hash)
    with run_lock(run_dir, MARKER_STAGE), _torch_threads(config.n_threads):
        check_threshold_statistics(model, extra, path, config.batchnorm)
        adapted = (volume_adapted_model(run_dir, model, extra, model_hash, volume, config.batchnorm_crops)
                   if config.batchnorm == "volume" else None)
        network_model, network_path = adapted if adapted is not None else (model, path)
        predictor = Predictor(network_model, device=device, output_dtype=config.output_dtype, precision=precision,
                              tta=config.tta)
        offsets = [list(o) for o in cfg.offsets]
        payload = {
            "raw": {"source": volume.source, "shape": list(volume.shape), "dtype": str(volume.dtype),
                    "voxel_size": list(volume.voxel_size), "offset": list(volume.offset)},
            "model": {"path": str(path), "sha256": model_hash},
            "block_shape": list(grid.write_shape),
            "output_dtype": config.output_dtype,
            "precision": predictor.precision,
            # tta and batchnorm came later: left out while they change nothing, so affinities predicted
            # before them keep their hash
            **({"tta": config.tta} if config.tta != "none" else {}),
            **({"batchnorm": {"statistics": "volume", "crops": config.batchnorm_crops}} if adapted else {}),
        }
        settings = {"device": device, "output_dtype": config.output_dtype, "precision": predictor.precision,
                    "tta": config.tta}
        kind, _, _ = parse_scheduler(scheduler)
        network = _network(predictor if kind in ("synchronous", "threads") else None, str(network_path), settings,
                           volume, config.n_threads)
        threshold = None if extra.get("threshold") is None else float(extra["threshold"])  # as calibrated_threshold
        output = ZarrOutput(store, STAGE, volume.spatial_shape,
                            np.uint8 if config.output_dtype == "uint8" else np.float16,
                            volume.voxel_size, volume.offset, chunk_shape_for(grid.write_shape),
                            # the model's calibrated threshold, so that jobs reading the run never import torch for it
                            attrs={"offsets": offsets, "model": str(path), "model_threshold": threshold},
                            channels=len(offsets))
        stage = Stage(
            name=MARKER_STAGE, volume_shape=volume.spatial_shape, block_shape=grid.write_shape,
            inputs={"raw": Input(_raw_reader(volume), volume.spatial_shape)}, output=output, process=None,
            process_batch=network, batch_size=config.batch_size, config=payload, fit="overhang", border="mirror",
            context=(grid.context, tuple(i - w - c for i, w, c in zip(grid.input_shape, grid.write_shape, grid.context))),
        )
        logger.info(
            "predict: %d blocks of %s voxels (input %s) with %s, precision %s, BatchNorm statistics of %s, on %s",
            len(grid.blocks), grid.write_shape, grid.input_shape, path, predictor.precision,
            "the volume" if adapted else "the model", predictor.device,
        )
        ran = run_stage(stage, run_dir, scheduler=scheduler, restart=restart, show_progress=show_progress)
    return PredictResult(store, path, volume.spatial_shape, offsets, ran.blocks, ran.skipped, predictor.precision,
                         time.perf_counter() - started, ran.config_hash, ran.up_to_date)
