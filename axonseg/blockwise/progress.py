"""A rich progress bar for blockwise stages: blocks done/total, voxels/s and ETA."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class VoxelRateColumn(ProgressColumn):
    """Voxels per second, from the ``voxels`` field each update adds to."""

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        voxels = task.fields.get("voxels", 0)
        if not elapsed or not voxels:
            return Text("-- vox/s", style="progress.data.speed")
        rate = voxels / elapsed
        for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if rate >= scale:
                return Text(f"{rate / scale:.1f} {unit}vox/s", style="progress.data.speed")
        return Text(f"{rate:.0f} vox/s", style="progress.data.speed")


@contextmanager
def block_progress(description: str, total: int, enabled: bool = True) -> Iterator["BlockProgress"]:
    """Show a progress bar on stderr while the body runs (hidden when ``enabled`` is False)."""
    console = Console(file=sys.stderr)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks"),
        VoxelRateColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, voxels=0)
        yield BlockProgress(progress, task)


class BlockProgress:
    """Handle to advance one progress task by finished blocks (safe to call from several threads)."""

    def __init__(self, progress: Progress, task: int) -> None:
        self._progress = progress
        self._task = task
        self._voxels = 0
        self._lock = threading.Lock()

    def advance(self, voxels: int, blocks: int = 1) -> None:
        with self._lock:
            self._voxels += voxels
            self._progress.update(self._task, advance=blocks, voxels=self._voxels)
