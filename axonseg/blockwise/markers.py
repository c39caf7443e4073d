"""Done markers per stage and block, keyed by the config hash, so a killed run resumes safely."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from axonseg.blockwise.block import Block
from axonseg.errors import StageError


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted names of the keys whose values differ between two (nested) configs."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    return sorted(k for k in flat_old.keys() | flat_new.keys() if flat_old.get(k) != flat_new.get(k))


class DoneMarkers:
    """One empty file per finished block under ``root/stage/``, plus the config they belong to.

    A marker is written only after the block's data is written, so a marker never claims
    a block that is not on disk.
    """

    def __init__(self, root: Path, stage: str, config: dict[str, Any], config_hash: str) -> None:
        self.directory = Path(root) / stage
        self.stage = stage
        self.config = config
        self.config_hash = config_hash

    def prepare(self, restart: bool = False) -> None:
        """Create the marker folder; refuse to resume with a changed config unless ``restart``.

        Raises:
            StageError: markers exist for another config; names the keys that changed.
        """
        meta_file = self.directory / "_config.json"
        if meta_file.exists():
            meta = json.loads(meta_file.read_text())
            if meta.get("config_hash") != self.config_hash:
                if not restart:
                    keys = changed_keys(meta.get("config", {}), self.config) or ["(unknown)"]
                    raise StageError(
                        f"stage '{self.stage}' in {self.directory.parent} was started with another config "
                        f"(changed: {', '.join(keys)}); pass --restart to start it again"
                    )
                shutil.rmtree(self.directory)
        elif restart and self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not meta_file.exists():
            tmp = meta_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"config_hash": self.config_hash, "config": self.config}, default=str))
            os.replace(tmp, meta_file)

    def is_done(self, block: Block) -> bool:
        return (self.directory / block.block_id).exists()

    def mark_done(self, block: Block) -> None:
        (self.directory / block.block_id).touch()

    def count(self) -> int:
        return sum(1 for p in self.directory.iterdir() if not p.name.startswith("_")) if self.directory.exists() else 0

    def clear(self) -> None:
        if self.directory.exists():
            shutil.rmtree(self.directory)
