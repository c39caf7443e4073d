"""The training loop: batches from ``sampler``, masked weighted loss, periodic validation,
checkpoints that resume exactly (weights, optimizer, step, torch RNG; the sampler's numpy
generator is a pure function of (seed, step)), a CSV of losses and a PNG plot.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from axonseg.errors import ConfigError, OutputExistsError, StageError
from axonseg.model.activity import active_fractions, dead_layers
from axonseg.model.adapt import CALIBRATION_STATISTICS
from axonseg.model.batchnorm import recalibrate_batchnorm
from axonseg.model import shapes
from axonseg.model.config import nearest_channels
from axonseg.model.checkpoint import (
    list_checkpoints, load_training_state, model_config_from_json, model_from_state, read_model_state,
    save_model, save_training_state,
)
from axonseg.model.losses import malis_loss, masked_mse, weighted_bce
from axonseg.model.malis import malis_pair_counts
from axonseg.model.predict import cpu_bf16_is_fast
from axonseg.model.sampler import BatchStream, TrainingVolume, calibration_inputs, validation_batches
from axonseg.model.schedule import learning_rate
from axonseg.model.train_config import TrainConfig
from axonseg.model.unet import AffinityNet

log = logging.getLogger(__name__)

ValidateHook = Callable[[int, AffinityNet], dict[str, float]]


def loss_terms(logits: torch.Tensor, batch: dict[str, torch.Tensor], cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The loss's terms, in the order they are summed: ``"affinity"`` (weighted BCE on logits,
    or weighted MSE on sigmoids); with the LSD head ``"lsd"``, ``lsd_weight`` times the masked
    MSE of the LSDs; with ``malis_weight`` > 0 ``"malis"``, that times the constrained MALIS
    loss of the nearest-neighbour affinities (pair counts from the batch's ``labels``)."""
    n = cfg.model.num_affinities
    affinity_logits = logits[:, :n]
    if cfg.loss == "bce":
        terms = {"affinity": weighted_bce(affinity_logits, batch["affinities"], batch["weights"])}
    else:
        terms = {"affinity": masked_mse(torch.sigmoid(affinity_logits.float()), batch["affinities"], batch["weights"])}
    if cfg.model.lsd and cfg.lsd_weight > 0:
        lsd_mask = batch["lsd_mask"].expand_as(batch["lsds"])
        terms["lsd"] = cfg.lsd_weight * masked_mse(torch.sigmoid(logits[:, n:].float()), batch["lsds"], lsd_mask)
    if cfg.malis_weight > 0:
        nearest = torch.sigmoid(logits[:, nearest_channels(cfg.model.offsets)].float())
        counts = [malis_pair_counts(a.detach().cpu().numpy(), labels[0].cpu().numpy().astype(np.int64))
                  for a, labels in zip(nearest, batch["labels"])]
        positive, negative = (torch.from_numpy(np.stack(c).astype(np.float32)).to(nearest.device) for c in zip(*counts))
        terms["malis"] = cfg.malis_weight * malis_loss(nearest, positive, negative)
    return terms


def compute_loss(logits: torch.Tensor, batch: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    """The training loss: :func:`loss_terms` summed in their order."""
    return sum(loss_terms(logits, batch, cfg).values())


def term_losses(prefix: str, terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """``{prefix_<term>_loss: value}`` for a loss of several terms; empty for one (it is the total)."""
    return {f"{prefix}_{key}_loss": float(value.detach()) for key, value in terms.items()} if len(terms) > 1 else {}


def training_device(cfg: TrainConfig) -> torch.device:
    """The device ``cfg.device`` names; "auto" is CUDA when torch sees a GPU, else the CPU.

    Raises:
        ConfigError: ``device: cuda`` on a machine where torch sees no GPU.
    """
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda, but torch sees no CUDA GPU here: use device: cpu or auto")
    return torch.device("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")


def _use_bf16(cfg: TrainConfig, device: torch.device) -> bool:
    if cfg.amp == "bfloat16":
        return True
    if cfg.amp == "off":
        return False
    return device.type == "cuda" or cpu_bf16_is_fast(cfg.n_threads)


def _on(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The batch's tensors on ``device`` (copied asynchronously from pinned memory on CUDA)."""
    if device.type == "cpu":
        return batch
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def validation_losses(model: AffinityNet, batches: list[dict[str, np.ndarray]], cfg: TrainConfig) -> dict[str, float]:
    """Mean loss over fixed validation batches (no augmentation, no gradient), one network pass
    per batch: ``{"val_loss"}``, plus ``"val_affinity_loss"`` (the affinity term alone,
    comparable with a run of the plain loss) and ``"val_<term>_loss"`` for each further term
    (LSD, MALIS) when the loss has more than one."""
    if not batches:
        return {"val_loss": math.nan}
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows: list[dict[str, float]] = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=_use_bf16(cfg, device)):
        for batch in batches:
            tensors = _on({k: torch.from_numpy(v) for k, v in batch.items()}, device)
            terms = loss_terms(model(tensors["raw"]), tensors, cfg)
            rows.append({"val_loss": float(sum(terms.values())), **term_losses("val", terms)})
    model.train(was_training)
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def validation_loss(model: AffinityNet, batches: list[dict[str, np.ndarray]], cfg: TrainConfig) -> float:
    """Mean loss over fixed validation batches (no augmentation, no gradient)."""
    return validation_losses(model, batches, cfg)["val_loss"]


def write_history(history: list[dict[str, float]], out_dir: Path) -> None:
    """``losses.csv`` (step, loss, val_loss, then any ``lr``, ``hook_*`` metrics such as
    validation NERL/VOI, ``train_<term>_loss`` and ``val_<term>_loss`` (with an LSD head or
    MALIS: the loss of each term, ``*_affinity_loss`` the affinities alone), and ``active_min`` / ``active_<layer>`` ReLU fractions; empty where not
    measured at that step) and ``losses.png``."""
    hooks = sorted({key for row in history for key in row} - {"step", "loss", "val_loss"})
    with open(out_dir / "losses.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "loss", "val_loss", *hooks])
        for row in history:
            extra = [row.get(key, math.nan) for key in ("val_loss", *hooks)]
            writer.writerow([int(row["step"]), f"{row['loss']:.6g}", *("" if math.isnan(v) else f"{v:.6g}" for v in extra)])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["step"] for r in history])
    loss = np.array([r["loss"] for r in history])
    val = np.array([r["val_loss"] for r in history])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, loss, lw=0.5, alpha=0.4, label="train loss")
    if len(loss) >= 10:
        window = max(5, len(loss) // 50)
        ax.plot(steps[window - 1 :], np.convolve(loss, np.ones(window) / window, mode="valid"), label=f"train (mean of {window})")
    seen = ~np.isnan(val)
    if seen.any():
        ax.plot(steps[seen], val[seen], "o-", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "losses.png", dpi=100)
    plt.close(fig)


def _check_activity(model: AffinityNet, batches: list[dict], cfg: TrainConfig, step: int) -> dict[str, float]:
    """Measure each ReLU's active fraction on the first two batches; warn (or stop) on dead ones.

    Returns ``{"active_min": lowest fraction, "active_<layer>": fraction, ...}`` for the history.
    """
    device = next(model.parameters()).device
    inputs = [torch.as_tensor(b["raw"]).to(device) for b in batches[:2]]
    fractions = active_fractions(model, inputs)
    if not fractions:
        return {}
    dead = dead_layers(fractions, cfg.dead_fraction)
    if dead:
        message = (f"step {step}: {len(dead)} layer(s) fire on fewer than {cfg.dead_fraction:.0%} of voxels "
                   f"(dead: {', '.join(f'{n} {fractions[n]:.3f}' for n in dead)})")
        if cfg.stop_on_dead_layer:
            raise StageError(message + ": stopped (stop_on_dead_layer); lower lr or add norm")
        log.warning(message)
    row = {"active_min": min(fractions.values())}
    row.update({f"active_{name}": value for name, value in fractions.items()})
    return row


def evaluation_model(model: AffinityNet, volumes: list[TrainingVolume], cfg: TrainConfig) -> AffinityNet:
    """The network that validation scores and ``model.pt`` stores: a copy of ``model`` in eval
    mode, with BatchNorm statistics recomputed over ``cfg.bn_calibration_crops`` fixed training
    crops (:mod:`axonseg.model.batchnorm`); with 0 crops or no BatchNorm, the running statistics."""
    if cfg.bn_calibration_crops == 0 or not volumes:
        return copy.deepcopy(model).eval()
    device = next(model.parameters()).device
    crops = (crop.to(device) for crop in calibration_inputs(volumes, cfg, cfg.bn_calibration_crops))
    calibrated, _ = recalibrate_batchnorm(model, crops)
    return calibrated  # type: ignore[return-value]


def _is_best_validation(row: dict[str, float], history: list[dict[str, float]],
                        recorded: dict[str, float] | None = None) -> bool:
    """This row holds a segmentation validation whose NERL beats every earlier one, and the
    figure ``model.pt`` records (``recorded``), if any (ties: lower VOI split + merge)."""
    if not math.isfinite(row.get("hook_nerl", math.nan)):
        return False

    def rank(r: dict[str, float]) -> tuple[float, float]:
        return (r["hook_nerl"], -(r.get("hook_voi_split", 0.0) + r.get("hook_voi_merge", 0.0)))

    earlier = [r for r in history[:-1] if math.isfinite(r.get("hook_nerl", math.nan))]
    return all(rank(row) > rank(r) for r in earlier + ([recorded] if recorded else []))


def recorded_validation(path: Path) -> dict[str, float] | None:
    """The validation figure a model file records, as a history row (``hook_nerl``, ...), or None.

    A file re-scored after training (``--recalibrate-bn``) records a figure that no history row
    holds; a resumed run replaces it only with a checkpoint that beats it."""
    if not path.is_file():
        return None
    extra = read_model_state(path).get("extra") or {}
    if not isinstance(extra.get("val_nerl"), (int, float)):
        return None
    return {"hook_nerl": float(extra["val_nerl"]), "hook_voi_split": float(extra.get("val_voi_split", 0.0)),
            "hook_voi_merge": float(extra.get("val_voi_merge", 0.0))}


def calibration_record(row: dict[str, float]) -> dict[str, float]:
    """What a model file records of the validation that chose it: step, the agglomeration
    threshold that scored best there (the pipeline's default for this model), the BatchNorm
    statistics that validation predicted with (``threshold_batchnorm``), NERL and VOI."""
    extra = {"step": int(row["step"]), "threshold": row.get("hook_threshold", math.nan), "val_nerl": row["hook_nerl"],
             "val_voi_split": row.get("hook_voi_split", math.nan), "val_voi_merge": row.get("hook_voi_merge", math.nan)}
    record = {key: value for key, value in extra.items() if not (isinstance(value, float) and math.isnan(value))}
    if "threshold" in record:
        record["threshold_batchnorm"] = CALIBRATION_STATISTICS
    return record


def _checkpoint(model: AffinityNet, evaluated: AffinityNet | None, optimizer: torch.optim.Optimizer, done: int,
                history: list[dict[str, float]], cfg: TrainConfig, out_dir: Path) -> None:
    """Write the resumable state after ``done`` steps (read back onto the CPU, whatever trained
    it), ``losses.csv``/``.png``, and, when no segmentation validation has chosen ``model.pt``,
    the latest weights as ``model.pt`` (``evaluated``, the recalibrated copy, where this step
    validated)."""
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": done,
        "torch_rng": torch.get_rng_state(), "history": history,
        "model_config": cfg.model.model_dump_json(), "sampler": json.dumps({"seed": cfg.seed, "next_step": done}),
    }
    save_training_state(out_dir / "checkpoints", done, state, keep=cfg.keep_checkpoints)
    if not any("hook_nerl" in r for r in history):  # no segmentation validation: the latest
        save_model(model if evaluated is None else evaluated, out_dir / "model.pt", extra={"step": done})
    write_history(history, out_dir)


def initial_weights(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The state dict of ``cfg.init_from`` (a model file or training checkpoint).

    Raises:
        InputError: the file is no model file.
        ConfigError: its network is another architecture than ``cfg.model``.
    """
    path = str(cfg.init_from)
    initial = model_from_state(read_model_state(path), path)
    if not initial.config.same_architecture(cfg.model):
        raise ConfigError(f"init_from={path}: its model is another architecture than the config's model")
    return initial.state_dict()


def train(
    cfg: TrainConfig,
    train_volumes: list[TrainingVolume],
    val_volumes: list[TrainingVolume] | None = None,
    resume: bool = False,
    validate_hook: ValidateHook | None = None,
    stop_at: int | None = None,
    time_limit_s: float | None = None,
) -> dict[str, Any]:
    """Train (or resume training) an ``AffinityNet``.

    Args:
        cfg: the run's config; ``cfg.out_dir`` receives ``checkpoints/`` (the resumable state),
            ``model.pt`` (with a segmentation validation hook: the weights of the best validation
            NERL, recording its step and threshold; else the latest weights; either way with
            BatchNorm statistics recomputed over ``cfg.bn_calibration_crops`` training crops at
            validation steps, see :func:`evaluation_model`),
            ``losses.csv``, ``losses.png`` and ``train_config.json``.
        train_volumes: volumes cut to their training ROIs.
        val_volumes: validation volumes (validation loss every ``validate_every`` steps).
        resume: continue from the newest checkpoint in ``out_dir/checkpoints`` (a fresh start
            when there is none).
        validate_hook: called as ``hook(step, model)`` at each validation; its metrics are
            logged and stored in the history (the place for VOI/NERL once segmentation exists).
        stop_at: stop after this many steps in total (simulates an interruption; for tests).
        time_limit_s: stop once this many seconds have passed, after writing a checkpoint of
            the last step done (a run with a fixed budget of time, e.g. a lent GPU); resume
            continues from it. None: no limit.

    Returns:
        ``{"step": steps done, "history": rows, "model": the trained AffinityNet}``.

    Raises:
        OutputExistsError: checkpoints exist and ``resume`` is False.
        ConfigError: resuming with a different model architecture.
    """
    torch.set_num_threads(cfg.n_threads)
    out_dir = Path(cfg.out_dir)
    checkpoint_dir = out_dir / "checkpoints"
    existing = list_checkpoints(checkpoint_dir)
    if existing and not resume:
        raise OutputExistsError(f"{checkpoint_dir} holds checkpoints: pass resume=True (--resume) or choose another out_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train_config.json").write_text(cfg.model_dump_json(indent=2))

    device = training_device(cfg)
    torch.manual_seed(cfg.seed)
    model = AffinityNet(cfg.model).to(device)  # weights drawn on the CPU: the same start on every device
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, history = 0, []
    if resume and existing:
        state = load_training_state(existing[-1])
        if not model_config_from_json(state["model_config"]).same_architecture(cfg.model):
            raise ConfigError(f"model config differs from the one in {existing[-1]}: cannot resume with another architecture")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start, history = int(state["step"]), list(state["history"])
        log.info("resumed from %s at step %d", existing[-1], start)
    elif cfg.init_from:
        model.load_state_dict(initial_weights(cfg))
        log.info("initialised from the weights of %s", cfg.init_from)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one crop shape all run long: let cuDNN pick its fastest kernels
        log.info("training on %s", torch.cuda.get_device_name(device))
    recorded = recorded_validation(out_dir / "model.pt") if resume and existing else None

    in_shape = shapes.valid_input_shape(cfg.model, cfg.output_shape)
    log.info("input %s -> output %s voxels, context %s", in_shape, shapes.valid_output_shape(cfg.model, in_shape), shapes.context(cfg.model))
    val_batches = validation_batches(val_volumes, cfg) if val_volumes else []
    loader = DataLoader(
        BatchStream(train_volumes, cfg, start), batch_size=None, num_workers=cfg.num_workers,
        prefetch_factor=2 if cfg.num_workers else None, pin_memory=device.type == "cuda",
    )
    bf16 = _use_bf16(cfg, device)
    model.train()
    done, tic = start, time.perf_counter()
    for step, batch in loader:
        if stop_at is not None and done >= stop_at:
            break
        if time_limit_s is not None and time.perf_counter() - tic >= time_limit_s:
            if done > start and done % cfg.checkpoint_every:  # else the last step wrote it
                _checkpoint(model, None, optimizer, done, history, cfg, out_dir)
            log.info("time limit of %.0f s reached at step %d: stopped (resume continues from here)", time_limit_s, done)
            break
        batch = _on(batch, device)
        rate = learning_rate(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = rate
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(batch["raw"])
        terms = loss_terms(logits, batch, cfg)
        loss = sum(terms.values())  # in order, as compute_loss: a resumed run stays bit-exact
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        done = step + 1
        row: dict[str, float] = {"step": float(done), "loss": float(loss.detach()), "val_loss": math.nan, "lr": rate}
        row.update(term_losses("train", terms))  # train and validation compare term by term
        evaluated = None
        if done % cfg.validate_every == 0 or done == cfg.steps:
            # validation scores (and model.pt stores) a recalibrated copy; training goes on with `model`
            evaluated = evaluation_model(model, train_volumes, cfg)
            row.update(validation_losses(evaluated, val_batches, cfg))
            row.update(_check_activity(evaluated, val_batches or [batch], cfg, done))
            if validate_hook is not None:
                for key, value in validate_hook(done, evaluated).items():
                    row[f"hook_{key}"] = float(value)
            hooked = "".join(f" {key[5:]} {value:.4g}" for key, value in row.items() if key.startswith("hook_"))
            hooked += f" lr {rate:.2e} active_min {row.get('active_min', math.nan):.3f}"
            log.info("step %d loss %.4f val_loss %.4f%s (%.2f s/step)", done, row["loss"], row["val_loss"], hooked,
                     (time.perf_counter() - tic) / max(1, done - start))
        history.append(row)
        if _is_best_validation(row, history, recorded):
            # the model file is the checkpoint chosen on validation, with its calibrated threshold
            save_model(evaluated, out_dir / "model.pt", extra=calibration_record(row))  # type: ignore[arg-type]
            recorded = None  # the history holds it now
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            _checkpoint(model, evaluated, optimizer, done, history, cfg, out_dir)
    return {"step": done, "history": history, "model": model}
