"""Training pipeline: read a train YAML, load its volumes (small: read once into memory),
run ``axonseg.model.train_loop.train`` and save the resolved config next to the output.

Run: ``python -m axonseg.pipelines.train configs/train_fib.yaml [--resume]``.
"""

from __future__ import annotations

import argparse
import os
import logging
from pathlib import Path

import numpy as np
import yaml
from pydantic import ValidationError

from axonseg.errors import AxonsegError, ConfigError, InputError
from axonseg.io.address import Address, parse_address
from axonseg.model.sampler import TrainingVolume
from axonseg.model.train_config import DatasetSpec, TrainConfig
from axonseg.model.train_loop import ValidateHook, initial_weights, train

log = logging.getLogger(__name__)


def read_array(address: str, voxel_size: tuple[float, float, float] | None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Read a whole array into memory; returns ``(array zyx, voxel_size nm zyx)``."""
    try:
        from axonseg.io import open_volume
    except ImportError:  # the io layer is not there yet: read h5 directly
        return _read_h5(address, voxel_size)
    volume = open_volume(address, voxel_size=voxel_size)
    return np.asarray(volume.data.compute()), tuple(float(v) for v in volume.voxel_size)  # type: ignore[return-value]


def _read_h5(address: str, voxel_size: tuple[float, float, float] | None) -> tuple[np.ndarray, tuple[float, float, float]]:
    import h5py

    path, _, dataset = address.partition(":")
    if not Path(path).is_file():
        raise InputError(f"{path}: no such file")
    with h5py.File(path, "r") as handle:
        if dataset not in handle:
            raise InputError(f"{address}: dataset {dataset!r} not found")
        array = handle[dataset][...]
        stored = handle[dataset].attrs.get("resolution_nm_zyx")
    size = voxel_size or (tuple(float(v) for v in stored) if stored is not None else None)
    if size is None:
        raise InputError(f"{address} has no voxel size: set voxel_size in the dataset entry")
    return array, size  # type: ignore[return-value]


def load_volumes(cfg: TrainConfig) -> tuple[list[TrainingVolume], list[TrainingVolume]]:
    """Read every dataset entry once (arrays shared between entries of the same address) and
    cut it to its ROI. Returns ``(train_volumes, val_volumes)``."""
    cache: dict[tuple[str, object], tuple[np.ndarray, tuple[float, float, float]]] = {}

    def get(address: str, spec: DatasetSpec) -> tuple[np.ndarray, tuple[float, float, float]]:
        key = (address, spec.voxel_size)
        if key not in cache:
            cache[key] = read_array(address, spec.voxel_size)
        return cache[key]

    train_volumes, val_volumes = [], []
    for spec in cfg.datasets:
        raw, voxel_size = get(spec.raw, spec)
        labels, _ = get(spec.labels, spec)
        if not np.allclose(voxel_size, cfg.model.voxel_size, rtol=0.05):
            raise ConfigError(f"{spec.raw} has voxel_size {list(voxel_size)} nm but model.voxel_size is {list(cfg.model.voxel_size)} nm")
        window = spec.roi_slices(voxel_size)
        cut = labels[window].astype(np.uint64)
        keep = spec.labels_slices(voxel_size)
        if keep is not None:
            inside = np.zeros(labels.shape, dtype=bool)
            inside[keep] = True
            cut[~inside[window]] = 0
            if not cut.any():
                raise ConfigError(f"{spec.labels}: labels_roi {spec.labels_roi!r} holds no labels inside roi {spec.roi!r}")
        volume = TrainingVolume(raw[window], cut, voxel_size, name=f"{spec.raw}[{spec.roi}]")
        (train_volumes if spec.split == "train" else val_volumes).append(volume)
        log.info("%s split %s: %s voxels", volume.name, spec.split, volume.raw.shape)
    if not train_volumes:
        raise ConfigError("datasets has no entry with split: train")
    return train_volumes, val_volumes


def resolve_address(address: str, base: Path) -> str:
    """An array address whose file part is relative is taken relative to ``base`` (the config's
    folder), so configs in the repository name data without a machine's absolute path.
    Environment variables (``${AXONSEG_SHARED_DATA}/...``) are expanded first."""
    address = os.path.expandvars(address)
    try:
        parsed = parse_address(address)
    except InputError:
        return address  # not an address we can place (e.g. a missing file): the reader names it
    if parsed.path.is_absolute():
        return address
    return str(Address(parsed.kind, (base / parsed.path).resolve(), parsed.dataset))


def relative_addresses(cfg: TrainConfig, folder: Path) -> TrainConfig:
    """``cfg`` with each dataset address that names a file given relative to ``folder`` (where
    the record is written), so a model folder committed with its records names the data the
    same way on every machine (``../../../../shared/...``), never this machine's absolute path."""
    base = Path(folder).resolve()

    def relative(address: str) -> str:
        try:
            parsed = parse_address(address)
        except InputError:
            return address
        return str(Address(parsed.kind, Path(os.path.relpath(parsed.path.resolve(), base)), parsed.dataset))

    datasets = [d.model_copy(update={"raw": relative(d.raw), "labels": relative(d.labels)}) for d in cfg.datasets]
    return cfg.model_copy(update={"datasets": datasets})


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``data`` with each ``KEY=VALUE`` of ``overrides`` set; a dotted key reaches into a
    section (``model.num_fmaps=16``), and the value is read as YAML (``0.5``, ``true``,
    ``[1, 2, 2]``). The config's own validation then checks each key and value.

    Raises:
        ConfigError: an override without ``=``, or a dotted key through a value that is no section.
    """
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. --set steps=2000")
        *sections, leaf = key.strip().split(".")
        target = data
        for section in sections:
            target = target.setdefault(section, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {override!r}: {section!r} is not a section of the config")
        target[leaf] = yaml.safe_load(text)
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Parse a train YAML into a ``TrainConfig``; errors name the file and the bad key. Relative
    dataset paths are relative to the YAML's folder. ``overrides`` (``KEY=VALUE``, see
    :func:`apply_overrides`) replace the file's values before validation."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
        if isinstance(data, dict):
            apply_overrides(data, overrides or [])
            for entry in data.get("datasets") or []:
                if isinstance(entry, dict):
                    for key in ("raw", "labels"):
                        if isinstance(entry.get(key), str):
                            entry[key] = resolve_address(entry[key], path.parent)
        return TrainConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def run(config_path: str | Path, resume: bool = False, validate_hook: ValidateHook | None = None, out_dir: str | None = None,
        overrides: list[str] | None = None, time_limit_s: float | None = None) -> dict:
    """Train from a YAML config; writes the resolved config to ``out_dir/config.yaml``.
    ``overrides``: ``KEY=VALUE`` strings applied over the YAML; ``time_limit_s``: stop with a
    checkpoint after this many seconds of training (see :func:`~axonseg.model.train_loop.train`)."""
    if time_limit_s is not None and time_limit_s <= 0:
        raise ConfigError(f"--time-limit {time_limit_s / 60:g}: expected a positive number of minutes")
    cfg = load_config(config_path, overrides)
    if out_dir is not None:
        cfg = cfg.model_copy(update={"out_dir": out_dir})
    if cfg.init_from:
        initial_weights(cfg)  # a wrong file fails here, before the data are read
    train_volumes, val_volumes = load_volumes(cfg)
    Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
    # the data are loaded: from here on the config is a record, written relative to out_dir
    cfg = relative_addresses(cfg, Path(cfg.out_dir))
    (Path(cfg.out_dir) / "config.yaml").write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    if validate_hook is None and cfg.segment_validation_every and val_volumes:
        from axonseg.pipelines.train_validation import segmentation_validation_hook

        validate_hook = segmentation_validation_hook(val_volumes[0], cfg, Path(cfg.out_dir) / "validation")
    return train(cfg, train_volumes, val_volumes, resume=resume, validate_hook=validate_hook, time_limit_s=time_limit_s)


def recalibrate_model_file(config_path: str | Path, model_path: str | Path, crops: int | None = None) -> int:
    """Recompute the BatchNorm statistics of a model file over the training crops of a train
    config (what validation does since #15, :mod:`axonseg.model.batchnorm`), in place.

    Args:
        config_path: the train YAML whose training datasets give the crops.
        model_path: a model file written by ``axonseg train``; its architecture must be the
            config's. Rewritten atomically, its ``extra`` (step, threshold, ...) kept, with
            ``bn_calibration_crops`` added.
        crops: number of crops; None: the config's ``bn_calibration_crops``.

    When the config has a validation dataset and ``segment_validation_every`` > 0, the
    recalibrated network is then scored through the pipeline on it (as training's segmentation
    validation does) and the file's calibration (``threshold``, ``val_nerl``, ``val_voi_split``,
    ``val_voi_merge``) is replaced by that score: the default threshold always belongs to the
    statistics in the file.

    Returns:
        The number of crops used.

    Raises:
        InputError: the model file is missing or not a model, or has no BatchNorm layer.
        ConfigError: the model's architecture differs from the config's, or crops < 1.
    """
    from axonseg.model.batchnorm import batchnorm_layers, recalibrate_batchnorm
    from axonseg.model.checkpoint import model_from_state, read_model_state, save_model
    from axonseg.model.sampler import calibration_inputs

    cfg = load_config(config_path)
    n = cfg.bn_calibration_crops if crops is None else crops
    if n < 1:
        raise ConfigError(f"--crops {n}: expected at least 1 crop")
    state = read_model_state(model_path)
    model = model_from_state(state, model_path)
    if not model.config.same_architecture(cfg.model):
        raise ConfigError(f"{model_path}: its architecture differs from the model section of {config_path}")
    model.config = cfg.model  # the same network; the config's voxel_size_range is the one to record
    if not batchnorm_layers(model):
        raise InputError(f"{model_path}: the model has no BatchNorm layer, so there are no statistics to recompute")
    extra = dict(state.get("extra") or {})
    train_volumes, val_volumes = load_volumes(cfg)
    calibrated, used = recalibrate_batchnorm(model, calibration_inputs(train_volumes, cfg, n))
    extra["bn_calibration_crops"] = used
    if val_volumes and cfg.segment_validation_every:
        import tempfile

        from axonseg.model.train_loop import calibration_record
        from axonseg.pipelines.train_validation import segmentation_validation_hook

        with tempfile.TemporaryDirectory(prefix="axonseg-recalibrate-") as work:
            step = int(extra.get("step", 0))
            hook = segmentation_validation_hook(val_volumes[0], cfg, work)
            metrics = hook(step, calibrated, force=True)  # type: ignore[arg-type]
        extra.update(calibration_record({"step": step, **{f"hook_{k}": v for k, v in metrics.items()}}))
    save_model(calibrated, model_path, extra=extra)  # type: ignore[arg-type]
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="train YAML (see configs/train_fib.yaml)")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--out-dir", default=None, help="override out_dir of the config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value (repeatable; dotted keys reach into sections: model.num_fmaps=16)")
    parser.add_argument("--time-limit", type=float, default=None, metavar="MINUTES",
                        help="stop after this many minutes of training, with a checkpoint to resume from")
    parser.add_argument("--recalibrate-bn", default=None, metavar="MODEL",
                        help="do not train: recompute MODEL's BatchNorm statistics over the config's training crops, in place")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.recalibrate_bn:
            used = recalibrate_model_file(args.config, args.recalibrate_bn)
            log.info("%s: BatchNorm statistics recomputed over %d training crops", args.recalibrate_bn, used)
            return 0
        result = run(args.config, resume=args.resume, out_dir=args.out_dir, overrides=args.overrides,
                     time_limit_s=None if args.time_limit is None else 60.0 * args.time_limit)
    except AxonsegError as error:
        print(f"error: {error}")
        return 1
    log.info("finished at step %d", result["step"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
