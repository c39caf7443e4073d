"""Done markers per stage and block, keyed by the config hash, so a killed run resumes safely.

A stage that names its output files (:meth:`DoneMarkers.track`) gets more: each marker holds
the size and crc32 of what its block wrote, and the same records go to an append-only log
``RUN/manifests/<stage>.jsonl`` that outlives the markers. A block whose files were deleted or
truncated afterwards is not taken as done, during a resume or after the stage finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Iterable

from axonseg.blockwise.block import Block
from axonseg.blockwise.integrity import BlockOutputs, Record, check_record, record_outputs, summarize
from axonseg.errors import StageError

logger = logging.getLogger(__name__)

MANIFESTS = "manifests"
_LOG_LOCK = threading.Lock()


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
        self.outputs: BlockOutputs | None = None
        self.base = Path(root).parent
        self.where: str | None = None
        self.checksums = False

    def track(self, outputs: BlockOutputs, base: Path, where: str | None = None, checksums: bool = False) -> None:
        """Record and verify the files each block writes.

        Args:
            outputs: the files a block writes (picklable, e.g. :class:`ZarrChunkFiles`).
            base: the run folder; records hold paths relative to it, the log lives in
                ``base/manifests/<stage>.jsonl``.
            where: the output's name in messages, e.g. ``run/volume.zarr/fragments``.
            checksums: verify crc32 too (reads every file); default: sizes only (``stat``).
        """
        self.outputs = outputs
        self.base = Path(base)
        self.where = where
        self.checksums = checksums

    @property
    def log_path(self) -> Path:
        return self.base / MANIFESTS / f"{self.stage}.jsonl"

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

    def belongs_to_other_config(self) -> bool:
        """Markers of an interrupted run with another config are in the folder."""
        meta_file = self.directory / "_config.json"
        return meta_file.exists() and json.loads(meta_file.read_text()).get("config_hash") != self.config_hash

    def is_done(self, block: Block) -> bool:
        """The block has a marker and its recorded files are intact; a damaged block loses its
        marker (logged) so that it is computed again."""
        path = self.directory / block.block_id
        try:
            text = path.read_text()
        except FileNotFoundError:
            return False
        record = _parse_record(text)
        if not record:
            return True  # a marker without a record (an untracked stage) is trusted
        problems = check_record(record, self.base, self.checksums)
        if problems:
            logger.warning("%s: block %s is marked done but its output is damaged (%s); computing it again",
                           self.stage, block.block_id, summarize(problems))
            path.unlink(missing_ok=True)
            return False
        return True

    def mark_done(self, block: Block) -> None:
        """Mark ``block`` done, recording its files' fingerprints when the stage is tracked."""
        path = self.directory / block.block_id
        if self.outputs is None:
            path.touch()
            return
        record = record_outputs(self.outputs(block), self.base)
        self._append_log({"block": block.block_id, "files": record})
        tmp = path.with_name(f"_{block.block_id}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)

    def reset_log(self) -> None:
        """Start the manifest log for a fresh output of this config (drops earlier records)."""
        if self.outputs is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.log_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"stage": self.stage, "config_hash": self.config_hash}) + "\n")
        os.replace(tmp, self.log_path)

    def logged_records(self) -> dict[str, Record]:
        """``{block_id: record}`` from the manifest log (the latest record per block); empty when
        there is no log or it belongs to another config."""
        try:
            lines = self.log_path.read_text().splitlines()
        except FileNotFoundError:
            return {}
        if not lines or _parse_record(lines[0]).get("config_hash") != self.config_hash:
            return {}
        records: dict[str, Record] = {}
        for line in lines[1:]:
            entry = _parse_record(line)  # a line torn by a kill is skipped: its block has no marker
            if "block" in entry:
                records[str(entry["block"])] = entry.get("files") or {}
        return records

    def damaged_blocks(self) -> dict[str, list[str]]:
        """``{block_id: problems}`` for logged blocks whose files were deleted or truncated."""
        damaged = {}
        for block_id, record in self.logged_records().items():
            problems = check_record(record, self.base, self.checksums)
            if problems:
                damaged[block_id] = problems
        return damaged

    def reopen(self, damaged: Iterable[str]) -> int:
        """Re-create the markers of a finished stage from its log, leaving out ``damaged`` blocks,
        so that the stage resumes and computes only those. Returns the markers written."""
        self.prepare()
        skip = set(damaged)
        written = 0
        for block_id, record in self.logged_records().items():
            if block_id not in skip:
                (self.directory / block_id).write_text(json.dumps(record))
                written += 1
        return written

    def _append_log(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # one write() per line in append mode: concurrent blocks never interleave their lines
        with _LOG_LOCK, open(self.log_path, "a") as handle:
            handle.write(line)

    def count(self) -> int:
        return len(self.done_ids())

    def done_ids(self) -> list[str]:
        """Ids of the blocks with a marker (unverified)."""
        if not self.directory.exists():
            return []
        return sorted(p.name for p in self.directory.iterdir() if not p.name.startswith("_"))

    def clear(self) -> None:
        if self.directory.exists():
            shutil.rmtree(self.directory)


def _parse_record(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
