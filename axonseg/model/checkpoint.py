"""Saving and loading model weights (with their config) and full training state.

Writes are atomic (temporary file, then rename), so a run killed while saving keeps its
previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from axonseg.errors import InputError
from axonseg.model.config import ModelConfig
from axonseg.model.unet import AffinityNet

_CHECKPOINT = re.compile(r"step_(\d+)\.pt$")


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_model(model: AffinityNet, path: str | Path, extra: dict[str, Any] | None = None) -> None:
    """Write weights plus the ``ModelConfig`` (JSON) to ``path`` (a .pt file)."""
    _atomic_save({"model_config": model.config.model_dump_json(), "state_dict": model.state_dict(), "extra": extra or {}}, Path(path))


#: What ``--model`` must be, said in every refusal of a file that is not one.
MODEL_FILE_HELP = "expected a .pt written by `axonseg train` (model.pt) or axonseg.model.save_model"


def _not_a_model(path: Path, reason: str) -> InputError:
    return InputError(f"model file {path} is not an axonseg model file ({reason}): {MODEL_FILE_HELP}")


def _unreadable_reason(path: Path) -> str:
    """Why torch could not read ``path``, in the user's words (never torch's own advice)."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        return "it is empty, 0 bytes"
    if b"\0" not in head:
        try:
            head.decode("utf-8")
            return "it is a text file"
        except UnicodeDecodeError:
            pass
    return "torch cannot read it as plain weights"


def read_model_state(path: str | Path, map_location: str = "cpu") -> dict[str, Any]:
    """The dict in a model file, read as plain weights: no object in the file is ever
    unpickled as code (``weights_only=True``, never False).

    Raises:
        InputError: the file is missing, unreadable as weights, or holds no dict with a
            ``model_config`` (one line that says what a model file is).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist: {MODEL_FILE_HELP}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # noqa: BLE001 - whatever torch says, the file is no model of ours
        raise _not_a_model(path, _unreadable_reason(path)) from None
    if not isinstance(state, dict):
        raise _not_a_model(path, f"it holds a {type(state).__name__}, not a dict with model_config and state_dict")
    if "model_config" not in state:
        raise _not_a_model(path, "it has no model_config")
    return state


def load_model(path: str | Path, map_location: str = "cpu") -> AffinityNet:
    """Rebuild an ``AffinityNet`` from a file written by ``save_model`` or a training checkpoint.

    Raises:
        InputError: if the file is missing or holds no model whose weights fit its config.
    """
    path = Path(path)
    return model_from_state(read_model_state(path, map_location), path)


def model_from_state(state: dict[str, Any], path: str | Path) -> AffinityNet:
    """The ``AffinityNet`` of a dict read by :func:`read_model_state` (``path`` names it in errors).

    Raises:
        InputError: its model_config is invalid or its weights do not fit it.
    """
    path = Path(path)
    try:
        config = model_config_from_json(state["model_config"])
    except (ValueError, TypeError) as err:  # pydantic's ValidationError is a ValueError
        problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise _not_a_model(path, f"its model_config is not valid: {problem}") from None
    weights = state.get("model", state.get("state_dict"))
    if not isinstance(weights, dict):
        raise _not_a_model(path, "it has no state_dict")
    model = AffinityNet(config)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        lines = str(err).splitlines()
        detail = lines[1].strip() if len(lines) > 1 else "other shapes"
        detail = detail if len(detail) <= 120 else detail[:117] + "..."
        raise _not_a_model(path, f"its weights do not fit its model_config: {detail}") from None
    return model


def calibrated_threshold(path: str | Path) -> float | None:
    """The agglomeration threshold a model file was calibrated at on validation data
    (``extra["threshold"]``, written by training), or None for a model without calibration.

    Raises:
        InputError: the file is not a model file (as :func:`read_model_state`).
    """
    value = (read_model_state(path).get("extra") or {}).get("threshold")
    return None if value is None else float(value)


def model_config_from_json(text: str) -> ModelConfig:
    """Parse a saved ``ModelConfig``; files written before ``norm`` existed have no norm layers."""
    data = json.loads(text)
    data.setdefault("norm", "none")
    return ModelConfig.model_validate(data)


def save_training_state(directory: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` as ``directory/step_<step>.pt`` and drop all but the newest ``keep``."""
    directory = Path(directory)
    path = directory / f"step_{step:08d}.pt"
    _atomic_save(state, path)
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Training checkpoints in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _CHECKPOINT.search(p.name)]
    return sorted(found, key=lambda p: int(_CHECKPOINT.search(p.name).group(1)))  # type: ignore[union-attr]


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_training_state`` (tensors on the CPU)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)
