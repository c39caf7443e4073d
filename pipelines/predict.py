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
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from axonseg.blockwise import Block, DoneMarkers, parse_scheduler, run_blockwise
from axonseg.blockwise.executor import full_disk_named
from axonseg.blockwise.progress import block_progress
from axonseg.config import ShapeTriple, StrictModel, load_config
from axonseg.errors import InputError, StageError
from axonseg.io import Volume, create_multiscale, mark_complete, open_level, open_volume, write_block
from axonseg.model import Predictor, load_model, shapes
from axonseg.model.checkpoint import model_config_from_json
from axonseg.model.config import ModelConfig
from axonseg.model.unet import AffinityNet
from axonseg.pipelines._predict_blocks import PredictGrid, check_finite, pad_mode, predict_grid, read_block
from axonseg.pipelines._segment_source import remove_if_empty
from axonseg.pipelines._segment_stage import begin_stage, chunk_shape_for, digest, group_state

logger = logging.getLogger(__name__)

STAGE = "affinities"
MARKER_STAGE = "predict"
MODELS_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
VOXEL_RTOL = 0.05  # the Predictor's tolerance: a model runs on voxel sizes within 5% of its own


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
    num_threads: int | None = Field(None, ge=1, description="torch CPU threads; null: torch's default (all cores)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU")


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


def default_model_path(voxel_size: Sequence[float], models_dir: Path | None = None) -> Path:
    """The shipped model (``data/models/*/model.pt``) trained at ``voxel_size`` (nm, zyx).

    Raises:
        StageError: no model is shipped, or none matches the voxel size (the message lists them).
    """
    models_dir = Path(models_dir or MODELS_DIR)
    candidates = sorted(models_dir.glob("*/model.pt"))
    if not candidates:
        raise StageError(f"no default model is shipped yet (nothing in {models_dir}/*/model.pt): pass --model PATH")
    wanted = np.asarray(voxel_size, dtype=float)
    found = []
    for path in candidates:
        cfg = _model_config(path)
        if cfg is None:
            continue
        found.append(f"{path.parent.name} ({' '.join(f'{v:g}' for v in cfg.voxel_size)} nm)")
        if np.allclose(cfg.voxel_size, wanted, rtol=VOXEL_RTOL):
            return path
    raise StageError(
        f"no shipped model is trained at voxel size {[float(v) for v in wanted]} nm (z y x); shipped: "
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
    if not np.allclose(volume.voxel_size, cfg.voxel_size, rtol=VOXEL_RTOL):
        raise InputError(
            f"raw {volume.source} has voxel size {list(volume.voxel_size)} nm but model {model_path} was "
            f"trained at {list(cfg.voxel_size)} nm (z y x): resample the volume or pass a matching --model"
        )
    if volume.dtype not in (np.uint8, np.uint16) and volume.dtype.kind != "f":
        raise InputError(f"raw {volume.source} has dtype {volume.dtype}: expected uint8, uint16 or float in [0, 1]")


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@contextmanager
def _torch_threads(num_threads: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batches(blocks: Sequence[Block], size: int) -> list[list[Block]]:
    return [list(blocks[i : i + size]) for i in range(0, len(blocks), size)]


def _write_outputs(target, batch: list[Block], grid: PredictGrid, result: np.ndarray, markers: DoneMarkers) -> None:  # noqa: ANN001
    for block, values in zip(batch, result):
        # the network's output starts at the block's write offset; keep the part inside the volume
        centre = (slice(None),) + tuple(slice(0, s) for s in block.write_roi.shape)
        with full_disk_named(markers.where or STAGE, block, len(grid.blocks)):
            write_block(target, np.ascontiguousarray(values[centre]), block.write_roi.offset)
            markers.mark_done(block)


def _run_local(
    volume: Volume, predictor: Predictor, grid: PredictGrid, todo: list[Block], target, markers: DoneMarkers,  # noqa: ANN001
    batch_size: int, progress,  # noqa: ANN001
) -> None:
    """One worker: the network runs batch i while one thread reads batch i+1 and another
    writes batch i-1 (zarr compression and dask reads release the GIL)."""
    mode = pad_mode(volume.spatial_shape)

    def read(batch: list[Block]) -> np.ndarray:
        raws = []
        for block in batch:
            raw = read_block(volume, block.read_roi, mode)
            check_finite(raw, volume.source, block.read_roi)
            raws.append(raw)
        return np.stack(raws)

    batches = _batches(todo, batch_size)
    with ThreadPoolExecutor(1, thread_name_prefix="predict-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="predict-write") as writer:
        pending_read: Future | None = reader.submit(read, batches[0]) if batches else None
        pending_write: Future | None = None
        for index, batch in enumerate(batches):
            raws = pending_read.result()  # type: ignore[union-attr]
            pending_read = reader.submit(read, batches[index + 1]) if index + 1 < len(batches) else None
            result = predictor.predict_batch(raws, volume.voxel_size)
            if pending_write is not None:
                pending_write.result()  # surfaces a write error, keeps at most one batch in flight
            pending_write = writer.submit(_write_outputs, target, batch, grid, result, markers)
            pending_write.add_done_callback(
                lambda f, n=sum(b.write_roi.size for b in batch), k=len(batch): f.exception() or progress.advance(n, blocks=k)
            )
        if pending_write is not None:
            pending_write.result()


_WORKER_PREDICTORS: dict[tuple, Predictor] = {}


def _distributed_process(model_path: str, settings: dict, volume: Volume, grid: PredictGrid, store: str,  # noqa: ANN202
                         num_threads: int | None = None):
    """A picklable per-block job for dask workers: each worker loads the model once and uses
    ``num_threads`` torch threads (None: torch's default, every core of the node)."""
    key = (model_path, tuple(sorted(settings.items())))

    def process(block: Block) -> None:
        if key not in _WORKER_PREDICTORS:
            if num_threads:  # several worker processes per node must not each take every core
                torch.set_num_threads(num_threads)
            _WORKER_PREDICTORS[key] = Predictor(load_model(model_path), **settings)
        predictor = _WORKER_PREDICTORS[key]
        raw = read_block(volume, block.read_roi, pad_mode(volume.spatial_shape))
        check_finite(raw, volume.source, block.read_roi)
        values = predictor(raw, volume.voxel_size)
        centre = (slice(None),) + tuple(slice(0, s) for s in block.write_roi.shape)
        write_block(open_level(Path(store), STAGE, 0), np.ascontiguousarray(values[centre]), block.write_roi.offset)

    return process


def run_predict(
    run_dir_or_out: str | Path,
    raw_address: str | Path,
    model_path: str | Path | None = None,
    config: PredictConfig | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> PredictResult:
    """Write ``RUN/volume.zarr/affinities`` from a raw EM array, blockwise and resumable.

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

    Returns:
        A :class:`PredictResult`.

    Raises:
        InputError: unreadable raw, model channels or voxel size that differ from the raw's,
            an unsupported dtype, NaN or inf in float raw.
        StageError: no model given and none shipped for the voxel size; an interrupted run
            used another config and ``restart`` is False.
    """
    started = time.perf_counter()
    config = config or PredictConfig()
    run_dir = Path(run_dir_or_out)
    store = run_dir / "volume.zarr"
    volume = open_volume(raw_address)
    path = Path(model_path) if model_path is not None else default_model_path(volume.voxel_size)
    model = load_model(path)
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
    with _torch_threads(config.num_threads):
        predictor = Predictor(model, device=device, output_dtype=config.output_dtype, precision=config.precision)
    offsets = [list(o) for o in cfg.offsets]
    payload = {
        "raw": {"source": volume.source, "shape": list(volume.shape), "dtype": str(volume.dtype),
                "voxel_size": list(volume.voxel_size), "offset": list(volume.offset)},
        "model": {"path": str(path), "sha256": _file_hash(path)},
        "block_shape": list(grid.write_shape),
        "output_dtype": config.output_dtype,
        "precision": predictor.precision,
    }
    config_hash = digest(payload)
    markers = DoneMarkers(run_dir / "blocks", MARKER_STAGE, payload, config_hash)
    state = group_state(store, STAGE) if store.is_dir() else None
    start = begin_stage(markers, state, config_hash, restart)

    def result(skipped: int, up_to_date: bool = False) -> PredictResult:
        return PredictResult(store, path, volume.spatial_shape, offsets, len(grid.blocks), skipped,
                             predictor.precision, time.perf_counter() - started, config_hash, up_to_date)

    if start == "done":
        logger.info("predict: up to date (config %s)", config_hash)
        return result(0, up_to_date=True)
    if start == "fresh":
        create_multiscale(
            store, STAGE, volume.spatial_shape, np.uint8 if config.output_dtype == "uint8" else np.float16,
            volume.voxel_size, volume.offset, chunk_shape_for(grid.write_shape), factors=[],
            channels=len(offsets), attrs={"offsets": offsets, "model": str(path), "config_hash": config_hash,
                                          "config": payload},
            overwrite=True,
        )
    target = open_level(store, STAGE, 0)
    todo = [b for b in grid.blocks if not markers.is_done(b)]
    skipped = len(grid.blocks) - len(todo)
    if skipped:
        logger.info("predict: resuming: %d of %d blocks already done, skipped", skipped, len(grid.blocks))
    logger.info(
        "predict: %d blocks of %s voxels (input %s) with %s, precision %s, on %s",
        len(todo), grid.write_shape, grid.input_shape, path, predictor.precision, predictor.device,
    )
    kind, _, _ = parse_scheduler(scheduler)
    with _torch_threads(config.num_threads):
        if kind in ("synchronous", "threads"):
            with block_progress("predict", total=len(grid.blocks), enabled=show_progress) as progress:
                progress.advance(sum(b.write_roi.size for b in grid.blocks) - sum(b.write_roi.size for b in todo), blocks=skipped)
                _run_local(volume, predictor, grid, todo, target, markers, config.batch_size, progress)
        else:
            settings = {"device": device, "output_dtype": config.output_dtype, "precision": predictor.precision}
            run_blockwise(todo, _distributed_process(str(path), settings, volume, grid, str(store), config.num_threads),
                          description="predict", markers=markers, scheduler=scheduler, show_progress=show_progress)
    mark_complete(store, STAGE)
    markers.clear()
    remove_if_empty(run_dir / "blocks")
    out = result(skipped)
    logger.info("predict: %d blocks (%d resumed) in %.1f s -> %s", out.blocks, skipped, out.seconds, store / STAGE)
    return out
