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

from axonseg.blockwise import Roi
from axonseg.io import Volume
from axonseg.model.adapt import adapt_batchnorm, adaptation_crop_shape, has_batchnorm, volume_crops
from axonseg.model.checkpoint import model_from_state, read_model_state, save_model
from axonseg.model.predict import normalize_raw
from axonseg.model.unet import AffinityNet

logger = logging.getLogger(__name__)

#: The run folder's model file with the volume's BatchNorm statistics.
ADAPTED_MODEL_FILE = "model_batchnorm.pt"
#: Seed of the crop places (a constant: the statistics are a pure function of volume and model).
CROP_SEED = 0
#: How crops are chosen (recorded, so that a file made under an older rule is recomputed): flat
#: crops without tissue are skipped (:func:`axonseg.model.adapt.volume_crops`).
CROP_RULE = "skip flat"


def check_threshold_statistics(model: AffinityNet, extra: dict, model_path: Path, statistics: str) -> None:
    """Warn when the calibrated threshold in a model file's ``extra`` belongs to other BatchNorm
    statistics than the ones predict uses (``statistics``: "volume" or "model"); the best threshold
    moves with them (fib_v4 on its validation slab: 0.4 with its stored statistics, 0.3 with the
    volume's). ``model_path`` names the file in the warning."""
    if not has_batchnorm(model):
        return
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
            "crops": n_crops, "crop_shape": list(crop_shape), "seed": CROP_SEED, "crop_rule": CROP_RULE}


def volume_adapted_model(run_dir: Path, model: AffinityNet, extra: dict, model_hash: str, volume: Volume,
                         n_crops: int) -> tuple[AffinityNet, Path] | None:
    """``(network with the volume's BatchNorm statistics, its model file in the run folder)``,
    or None when ``model`` has no BatchNorm (nothing to adapt).

    Args:
        run_dir: the run folder (it exists: the caller holds its lock).
        model: the model as loaded from its file.
        extra: that file's ``extra`` (the adapted file keeps it, e.g. the calibrated threshold).
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
            state = read_model_state(path)
            if (state.get("extra") or {}).get("batchnorm") == record:
                logger.info("predict: BatchNorm statistics of the volume from %s", path)
                return model_from_state(state, path), path
        except Exception:  # noqa: BLE001 - an unreadable file is recomputed, never trusted
            pass

    def read(start: tuple[int, int, int], shape: tuple[int, int, int]) -> np.ndarray:
        # the volume's own reader: direct store reads, damaged chunks named, mirrored beyond the faces
        data = normalize_raw(volume.read_roi(Roi.of(start, shape), border="mirror"), f"raw {volume.source}")
        return data[None] if data.ndim == 3 else data

    started = time.perf_counter()
    adapted, used = adapt_batchnorm(model, volume_crops(read, volume.spatial_shape, crop_shape, n_crops, CROP_SEED))
    save_model(adapted, path, extra={**extra, "batchnorm": record})
    logger.info("predict: BatchNorm statistics of the volume from %d crops of %s voxels (%.1f s), in %s",
                used, "x".join(map(str, crop_shape)), time.perf_counter() - started, path)
    return adapted, path
