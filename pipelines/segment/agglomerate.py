"""Agglomeration stage (global, not blockwise): the run's whole region graph merged into one
fragment -> segment LUT per threshold, written to ``RUN/luts/``.

The global graph is the one thing that grows with the volume, so its size and the time taken
are logged and recorded in ``RUN/luts/agglomerate.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from axonseg.errors import InputError
from axonseg.io.luts import write_luts
from axonseg.segment import Lut, RegionGraph, agglomerate, mutex_watershed
from axonseg.blockwise.outputs import read_json, write_json
from axonseg.blockwise.stage import StageResult, digest
from axonseg.pipelines.segment._stage import stage_runner
from axonseg.pipelines.segment.config import AgglomerateConfig, SegmentConfig
from axonseg.pipelines.segment.graph import graph_state, read_graph

logger = logging.getLogger(__name__)

STAGE = "agglomerate"
STATE_FILE = Path("luts") / "agglomerate.json"


def agglomerate_state(run_dir: Path) -> dict | None:
    """``RUN/luts/agglomerate.json``: the hash, graph size and thresholds of the last run, or None."""
    return read_json(Path(run_dir) / STATE_FILE)


def make_luts(graph: RegionGraph, settings: AgglomerateConfig) -> dict[float, Lut]:
    """``{threshold: Lut}`` for every configured threshold.

    ``mean`` and ``quantile`` merge hierarchically while 1 - affinity statistic <= threshold;
    ``mutex`` runs the mutex watershed with bias = 1 - threshold, so that a higher threshold
    merges more for every method and the LUTs of one run read alike.
    """
    if settings.method == "mutex":
        luts = [mutex_watershed(graph, bias=1.0 - t, score=settings.mutex_score, quantile=settings.quantile)
                for t in settings.thresholds]
        return {t: made.lut for t, made in zip(settings.thresholds, luts)}
    luts = agglomerate(graph, settings.thresholds, score=settings.method, quantile=settings.quantile)
    return {made.threshold: made.lut for made in luts}


def _agglomerate(run_dir: Path, config: SegmentConfig, *, restart: bool, **_: Any) -> StageResult:
    """The global step of :func:`run_agglomerate` (scheduler and progress bar do not apply)."""
    started = time.perf_counter()
    graph_info = graph_state(run_dir)
    if not graph_info or not graph_info.get("complete"):
        raise InputError(f"{run_dir / 'graph'}: no complete region graph; run the graph stage first")
    payload = {"graph": graph_info.get("config_hash"), "agglomerate": config.agglomerate.model_dump(mode="json")}
    config_hash = digest(payload)
    state = agglomerate_state(run_dir)
    if state and state.get("config_hash") == config_hash and not restart:
        logger.info("agglomerate: up to date (config %s)", config_hash)
        return StageResult(STAGE, config_hash, 1, 0, time.perf_counter() - started, up_to_date=True, details=state)
    graph = read_graph(run_dir)
    read_seconds = time.perf_counter() - started
    logger.info("agglomerate: global graph of %d nodes and %d edges read in %.1f s",
                graph.n_nodes, graph.n_edges, read_seconds)
    merge_start = time.perf_counter()
    luts = make_luts(graph, config.agglomerate)
    merge_seconds = time.perf_counter() - merge_start
    write_luts(run_dir, luts, method=f"agglomerate:{config.agglomerate.method}")
    details = {
        "config_hash": config_hash, "config": payload, "n_nodes": int(graph.n_nodes),
        "n_edges": int(graph.n_edges), "thresholds": sorted(luts), "read_seconds": read_seconds,
        "agglomerate_seconds": merge_seconds,
        "segments": {str(t): int(len(np.unique(lut.segment_ids))) for t, lut in luts.items()},
    }
    # written last: a run killed before this line recomputes instead of trusting partial LUTs
    write_json(run_dir / STATE_FILE, details)
    seconds = time.perf_counter() - started
    logger.info("agglomerate (%s): %d LUTs in %.1f s (merging %.1f s)", config.agglomerate.method, len(luts),
                seconds, merge_seconds)
    return StageResult(STAGE, config_hash, 1, 0, seconds, details=details)


run_agglomerate = stage_runner(
    _agglomerate, "run_agglomerate", "Agglomerate the run's region graph and write one LUT per threshold.",
    needs="; its graph stage must be complete",
    config="its ``agglomerate`` section (method, quantile, thresholds in [0, 1]) is used",
    scheduler=" (accepted for a uniform stage signature: the global merge runs in this process)",
    returns=("; ``details`` hold ``n_nodes``, ``n_edges``, ``thresholds``, ``read_seconds`` and "
             "``agglomerate_seconds``"),
    raises="no complete region graph",
)
