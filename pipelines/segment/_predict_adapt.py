"""The predict stage's network with BatchNorm statistics of the raw volume (``batchnorm: volume``).

The statistics are computed once per run and written as a model file in the run folder
(``RUN/model_batchnorm.pt``), so that every block, every dask worker and a resumed run use the
same network. A later run reuses the file when it was made from the same model file, raw and
settings; otherwise it is recomputed. See :mod:`axonseg.model.adapt` for why and what.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from axonseg.io import Volume
from axonseg.model import load_model
from axonseg.model.adapt import adapt_batchnorm, adaptation_crop_shape, has_batchnorm, volume_crops
from axonseg.model.checkpoint import read_model_state, save_model
from axonseg.model.predict import normalize_raw
from axonseg.model.unet import AffinityNet

logger = logging.getLogger(__name__)

#: The run folder's model file with the volume's BatchNorm statistics.
ADAPTED_MODEL_FILE = "model_batchnorm.pt"
#: Seed of the crop places (a constant: the statistics are a pure function of volume and model).
CROP_SEED = 0


def check_threshold_statistics(model: AffinityNet, model_path: Path, statistics: str) -> None:
    """Warn when ``model_path``'s calibrated threshold belongs to other BatchNorm statistics than
    the ones predict uses (``statistics``: "volume" or "model"); the best threshold moves with
    them (fib_v4 on its validation slab: 0.4 with its stored statistics, 0.3 with the volume's)."""
    if not has_batchnorm(model):
        return
    extra = read_model_state(model_path).get("extra") or {}
    if extra.get("threshold") is None:
        return
    calibrated_with = extra.get("threshold_batchnorm", "model")
    if calibrated_with != statistics:
        logger.warning(
            "model %s: its threshold %s was calibrated with the %s BatchNorm statistics, but predict uses the %s's "
            "(batchnorm: %s); set batchnorm: %s, or recalibrate with `axonseg train CONFIG --recalibrate-bn %s`",
            model_path, extra["threshold"], "volume's" if calibrated_with == "volume" else "model's stored",
            statistics, statistics, calibrated_with, model_path,
        )


def _record(model_hash: str, volume: Volume, n_crops: int, crop_shape: tuple[int, int, int]) -> dict:
    return {"source_sha256": model_hash, "raw": volume.source, "raw_shape": list(volume.shape),
            "crops": n_crops, "crop_shape": list(crop_shape), "seed": CROP_SEED}


def volume_adapted_model(run_dir: Path, model: AffinityNet, model_path: Path, model_hash: str, volume: Volume,
                         n_crops: int) -> tuple[AffinityNet, Path] | None:
    """``(network with the volume's BatchNorm statistics, its model file in the run folder)``,
    or None when ``model`` has no BatchNorm (nothing to adapt).

    Args:
        run_dir: the run folder (it exists: the caller holds its lock).
        model: the model as loaded from ``model_path``.
        model_path: its file (the adapted file keeps its ``extra``, e.g. the calibrated threshold).
        model_hash: the model file's hash (a recorded adaptation of another file is redone).
        volume: the raw volume (zyx or czyx); crops are read lazily.
        n_crops: crops the statistics average over.
    """
    if not has_batchnorm(model):
        return None
    path = Path(run_dir) / ADAPTED_MODEL_FILE
    crop_shape = adaptation_crop_shape(model, volume.spatial_shape)
    record = _record(model_hash, volume, n_crops, crop_shape)
    if path.is_file():
        try:
            recorded = (read_model_state(path).get("extra") or {}).get("batchnorm")
        except Exception:  # noqa: BLE001 - an unreadable file is recomputed, never trusted
            recorded = None
        if recorded == record:
            logger.info("predict: BatchNorm statistics of the volume from %s", path)
            return load_model(path), path
    lead = (slice(None),) * (volume.data.ndim - 3)

    def read(start: tuple[int, int, int], shape: tuple[int, int, int]) -> np.ndarray:
        window = tuple(slice(s, s + n) for s, n in zip(start, shape))
        data = np.asarray(volume.data[lead + window].compute(scheduler="synchronous"))
        data = normalize_raw(data, f"raw {volume.source}")
        return data[None] if data.ndim == 3 else data

    started = time.perf_counter()
    adapted, used = adapt_batchnorm(model, volume_crops(read, volume.spatial_shape, crop_shape, n_crops, CROP_SEED))
    extra = {**(read_model_state(model_path).get("extra") or {}), "batchnorm": record}
    save_model(adapted, path, extra=extra)
    logger.info("predict: BatchNorm statistics of the volume from %d crops of %s voxels (%.1f s), in %s",
                used, "x".join(map(str, crop_shape)), time.perf_counter() - started, path)
    return adapted, path
