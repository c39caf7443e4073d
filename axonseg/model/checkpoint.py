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


def load_model(path: str | Path, map_location: str = "cpu") -> AffinityNet:
    """Rebuild an ``AffinityNet`` from a file written by ``save_model`` or a training checkpoint.

    Raises:
        InputError: if the file is missing or holds no model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    state = torch.load(path, map_location=map_location, weights_only=True)
    if "model_config" not in state:
        raise InputError(f"model file {path} has no 'model_config': expected a file written by axonseg")
    model = AffinityNet(model_config_from_json(state["model_config"]))
    model.load_state_dict(state["model"] if "model" in state else state["state_dict"])
    return model


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
