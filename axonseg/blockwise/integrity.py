"""Fingerprints (size, crc32) of the files a block wrote, so that neither a resumed nor a finished
stage ever uses an output file that was deleted or truncated after its block was marked done.
"""

from __future__ import annotations

import itertools
import json
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

from axonseg.blockwise.block import Block

#: ``[size in bytes, crc32]`` of a file, or None where the block left no file (zarr stores no
#: chunk that holds only the fill value, and an empty graph block writes no table).
Fingerprint = list[int] | None
#: ``{path relative to the run folder: fingerprint}`` of one block.
Record = dict[str, Fingerprint]
#: The files a block writes (whether or not they exist after it ran).
BlockOutputs = Callable[[Block], Sequence[Path]]

_READ_SIZE = 1 << 20


def fingerprint(path: Path) -> Fingerprint:
    """``[size, crc32]`` of ``path``, or None when there is no such file."""
    try:
        with open(path, "rb") as handle:
            crc = 0
            size = 0
            while chunk := handle.read(_READ_SIZE):
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
    except FileNotFoundError:
        return None
    return [size, crc]


def record_outputs(paths: Sequence[Path], base: Path) -> Record:
    """The fingerprints of ``paths``, keyed by their path relative to ``base`` (the run folder)."""
    base = Path(base)
    return {_relative(Path(path), base): fingerprint(Path(path)) for path in paths}


def check_record(record: Record, base: Path, checksums: bool = False) -> list[str]:
    """What is wrong with the files of a record: ``["<path>: missing", "<path>: 10 bytes, expected 90"]``.

    Args:
        record: fingerprints as :func:`record_outputs` made them.
        base: the folder the record's paths are relative to.
        checksums: also read every file and compare its crc32; otherwise only ``stat`` is used
            (cheap; it catches deleted and truncated files, not same-size corruption).

    Returns:
        One line per damaged file; empty when every file is as recorded. A file that was
        recorded as absent is never a problem (a fill-value chunk or an empty block).
    """
    problems = []
    for name, expected in record.items():
        if expected is None:
            continue
        path = Path(base) / name
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{name}: missing")
            continue
        if size != expected[0]:
            problems.append(f"{name}: {size} bytes, expected {expected[0]}")
        elif checksums and fingerprint(path) != list(expected):
            problems.append(f"{name}: checksum differs")
    return problems


def summarize(problems: Sequence[str], limit: int = 3) -> str:
    """The first ``limit`` problems of :func:`check_record`, and how many more there are."""
    shown = "; ".join(problems[:limit])
    return shown + (f"; and {len(problems) - limit} more" if len(problems) > limit else "")


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


@dataclass(frozen=True)
class ZarrChunkFiles:
    """The chunk files of a local zarr v3 array that a block's write ROI covers.

    Blocks write whole chunks (stages choose chunks that tile their blocks), so these are
    exactly the files the block wrote. Picklable, for dask workers. The array's ``zarr.json``
    is read once, at the first block.

    Attributes:
        array_dir: the array's folder (with its ``zarr.json``), e.g. ``RUN/volume.zarr/fragments/s0``;
            its last three axes are z, y, x and any leading (channel) axes are covered whole.
    """

    array_dir: Path

    @cached_property
    def _layout(self) -> tuple[list[int], list[int], str, bool]:
        """(shape, chunk shape, key separator, default key encoding) from ``zarr.json``."""
        meta = json.loads((Path(self.array_dir) / "zarr.json").read_text())
        encoding = meta.get("chunk_key_encoding", {"name": "default"})
        default = encoding["name"] == "default"
        separator = encoding.get("configuration", {}).get("separator", "/" if default else ".")
        return meta["shape"], meta["chunk_grid"]["configuration"]["chunk_shape"], separator, default

    def __call__(self, block: Block) -> list[Path]:
        shape, chunks, separator, default = self._layout
        lead = len(shape) - 3
        ranges = [range(-(-s // c)) for s, c in zip(shape[:lead], chunks[:lead])]
        roi = block.write_roi
        for offset, size, chunk in zip(roi.offset, roi.shape, chunks[lead:]):
            ranges.append(range(offset // chunk, -(-(offset + size) // chunk)))
        paths = []
        for coords in itertools.product(*ranges):
            key = separator.join(str(c) for c in coords)
            if default:
                key = f"c{separator}{key}" if key else "c"
            paths.append(Path(self.array_dir) / key)
        return paths


@dataclass(frozen=True)
class BlockNamedFiles:
    """Files named after the block's id, e.g. ``graph/nodes/{block_id}.parquet``. Picklable.

    Attributes:
        folder: the folder the patterns are relative to.
        patterns: file names with a ``{block_id}`` field.
    """

    folder: Path
    patterns: tuple[str, ...]

    def __call__(self, block: Block) -> list[Path]:
        return [Path(self.folder) / p.format(block_id=block.block_id) for p in self.patterns]
