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
from axonseg.segment.edge_classifier import EdgeClassifier, graph_edge_features, learned_graph, load_classifier
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


CLASSIFIER_FILE = "edge_classifier.json"


def classifier_path(run_dir: Path, settings: AgglomerateConfig) -> Path:
    """The edge classifier of method ``learned``: ``settings.classifier``, else
    ``edge_classifier.json`` beside the run's model file.

    Raises:
        InputError: neither is given or found.
    """
    if settings.classifier is not None:
        return Path(settings.classifier)
    from axonseg.pipelines.run_folder import RunFolder

    model = RunFolder(run_dir).model_path()
    if model and model != "default" and (Path(model).parent / CLASSIFIER_FILE).is_file():
        return Path(model).parent / CLASSIFIER_FILE
    raise InputError(f"agglomerate method learned: no classifier given (agglomerate.classifier) and no {CLASSIFIER_FILE} "
                     f"beside the run's model ({model}); train one with axonseg train-agglomeration")


def make_luts(graph: RegionGraph, settings: AgglomerateConfig, classifier: EdgeClassifier | None = None) -> dict[float, Lut]:
    """``{threshold: Lut}`` for every configured threshold.

    ``mean`` and ``quantile`` merge hierarchically while 1 - affinity statistic <= threshold;
    ``mutex`` runs the mutex watershed with bias = 1 - threshold, so that a higher threshold
    merges more for every method and the LUTs of one run read alike. ``learned`` merges like
    ``mean`` on the classifier's merge probability instead of the mean affinity, and adds a LUT
    at the classifier's calibrated threshold to the configured ones.
    """
    if settings.method == "mutex":
        luts = [mutex_watershed(graph, bias=1.0 - t, score=settings.mutex_score, quantile=settings.quantile)
                for t in settings.thresholds]
        return {t: made.lut for t, made in zip(settings.thresholds, luts)}
    score, thresholds = settings.method, list(settings.thresholds)
    if settings.method == "learned":
        if classifier is None:
            raise InputError("agglomerate method learned needs an edge classifier")
        graph, score = learned_graph(graph, classifier.predict(graph_edge_features(graph))), "mean"
        if classifier.threshold is not None:  # its calibrated threshold always gets a LUT: the run's default
            thresholds = sorted(set(thresholds) | {round(classifier.threshold, 6)})
    luts = agglomerate(graph, thresholds, score=score, quantile=settings.quantile)
    return {made.threshold: made.lut for made in luts}


def _agglomerate(run_dir: Path, config: SegmentConfig, *, restart: bool, **_: Any) -> StageResult:
    """The global step of :func:`run_agglomerate` (scheduler and progress bar do not apply)."""
    started = time.perf_counter()
    graph_info = graph_state(run_dir)
    if not graph_info or not graph_info.get("complete"):
        raise InputError(f"{run_dir / 'graph'}: no complete region graph; run the graph stage first")
    payload = {"graph": graph_info.get("config_hash"), "agglomerate": config.agglomerate.model_dump(mode="json")}
    classifier = None
    if config.agglomerate.method == "learned":
        path = classifier_path(run_dir, config.agglomerate)
        classifier = load_classifier(path)  # checked before the graph is read
        payload["classifier"] = {"path": str(path), "sha256": classifier.sha256}
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
    luts = make_luts(graph, config.agglomerate, classifier)
    merge_seconds = time.perf_counter() - merge_start
    write_luts(run_dir, luts, method=f"agglomerate:{config.agglomerate.method}")
    details = {
        "config_hash": config_hash, "config": payload, "n_nodes": int(graph.n_nodes),
        "n_edges": int(graph.n_edges), "thresholds": sorted(luts), "read_seconds": read_seconds,
        "agglomerate_seconds": merge_seconds,
        "segments": {str(t): int(len(np.unique(lut.segment_ids))) for t, lut in luts.items()},
    }
    if classifier is not None:  # its calibrated threshold is the run's default (RunFolder.model_threshold)
        details["classifier_threshold"] = classifier.threshold
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
