"""``axonseg agglomerate``: the segment stages in order, fragments -> graph -> agglomerate ->
relabel, on a run whose affinities exist (config: ``configs/agglomerate.yaml``). Each stage
skips itself when its output is up to date for the config.
"""

from __future__ import annotations

import logging
from pathlib import Path

from axonseg.blockwise.stage import StageResult
from axonseg.pipelines.run_lock import run_lock
from axonseg.pipelines.segment.agglomerate import run_agglomerate
from axonseg.pipelines.segment.config import SegmentConfig, load_segment_config
from axonseg.pipelines.segment.fragments import run_fragments
from axonseg.pipelines.segment.graph import run_graph
from axonseg.pipelines.segment.relabel import run_relabel

logger = logging.getLogger(__name__)

__all__ = ["SegmentConfig", "StageResult", "load_segment_config", "run_segment_stages"]


def run_segment_stages(
    run_dir: str | Path,
    config: SegmentConfig | None = None,
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
    threshold: float | None = None,
) -> dict[str, StageResult]:
    """Run fragments, graph, agglomerate and relabel on ``run_dir`` (affinities must exist).

    Args:
        run_dir: the run folder with ``volume.zarr/affinities``.
        config: the segment config; defaults when None.
        scheduler: ``synchronous``, ``threads[:N]``, ``local[:N]`` or ``tcp://host:port``.
        restart: start every stage again, even where its output is up to date.
        show_progress: draw progress bars.
        threshold: LUT threshold in [0, 1] for the segmentation (see :func:`run_relabel`).

    Returns:
        ``{stage: StageResult}`` in stage order.

    Raises:
        RunLockedError: another process writes into ``run_dir`` (``RUN/.lock``).
    """
    config = config or SegmentConfig()
    common = {"scheduler": scheduler, "restart": restart, "show_progress": show_progress}
    with run_lock(run_dir, "agglomerate"):
        results = {
            "fragments": run_fragments(run_dir, config, **common),
            "graph": run_graph(run_dir, config, **common),
            "agglomerate": run_agglomerate(run_dir, config, **common),
        }
        results["relabel"] = run_relabel(run_dir, config, threshold=threshold, **common)
    return results
