"""A learned merge classifier for region-graph edges (agglomerate method ``learned``, #15).

Gradient-boosted trees (LightGBM) learn from the edges of a labelled region graph whether the
two fragments are one body (:mod:`axonseg.segment.edge_targets`), from the edge's affinity
statistics, the fragments' sizes and degrees, and their mean raw intensity and boundary
(:mod:`axonseg.segment.edge_features`). The merge probability ``p`` then replaces the mean
affinity in the same hierarchical agglomeration: an edge's score is ``1 - p``, and merged edges
average ``p`` weighted by their contact area, as the mean score does.

The file is JSON: LightGBM's own text model (a stable, documented format, no pickles) plus the
feature names, the threshold calibrated on validation data and a record of how it was trained.
Pure numpy in, numpy out, apart from :func:`load_classifier` / :meth:`EdgeClassifier.save`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from axonseg.errors import InputError
from axonseg.segment.edge_features import edge_features, feature_names, graph_node_means
from axonseg.segment.edge_targets import MERGE, SPLIT
from axonseg.segment.region_graph import RegionGraph

FORMAT = "axonseg-edge-classifier/1"
#: The node values the classifier reads (the graph stage's ``node_values``), in feature order.
NODE_VALUES = ("raw", "boundary")
#: LightGBM settings: up to 200 trees of 31 leaves, one thread and a fixed seed, so that training
#: is reproducible bit for bit on one machine.
PARAMS: dict[str, Any] = {"objective": "binary", "learning_rate": 0.1, "num_leaves": 31, "min_data_in_leaf": 20,
                          "max_bin": 255, "num_threads": 1, "seed": 0, "deterministic": True, "verbose": -1}
ROUNDS = 200
#: Early stopping: a fixed 10% of the training edges is held out, and training stops once their
#: loss has not improved for this many rounds (as scikit-learn's HistGradientBoostingClassifier
#: does by default; the study of #15 that measured the method used it). The training ROI's
#: affinities are better than unseen data's, so more trees fit them too closely.
STOP_ROUNDS = 10
HOLDOUT = 0.1


@dataclass
class EdgeClassifier:
    """A trained edge classifier.

    Attributes:
        model: LightGBM's text model.
        features: the feature names, in column order (:func:`axonseg.segment.edge_features.feature_names`).
        threshold: the agglomeration threshold (on ``1 - p``) calibrated on validation data, or None.
        record: how it was trained (model file, data, edge counts, validation figures).
        sha256: the hash of the file it was loaded from (None for one not loaded from a file):
            a run's agglomeration records it, so a retrained classifier is not mistaken for it.
    """

    model: str
    features: tuple[str, ...]
    threshold: float | None = None
    record: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None

    def _booster(self):  # noqa: ANN202
        import lightgbm

        return lightgbm.Booster(model_str=self.model)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(E,) float64 merge probability of each row of an (E, F) feature matrix."""
        if features.ndim != 2 or features.shape[1] != len(self.features):
            raise InputError(f"edge features have shape {features.shape}: the classifier expects "
                             f"{len(self.features)} columns {list(self.features)}")
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self._booster().predict(features, num_threads=1), dtype=np.float64)

    def save(self, path: str | Path) -> Path:
        """Write the classifier as JSON (atomically: a temporary file, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"format": FORMAT, "features": list(self.features), "threshold": self.threshold,
                   "record": self.record, "lightgbm": self.model}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, path)
        return path


def load_classifier(path: str | Path) -> EdgeClassifier:
    """Read a classifier written by :meth:`EdgeClassifier.save`.

    Raises:
        InputError: the file is missing, not JSON, or not an edge classifier of this format.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no edge classifier file; train one with axonseg train-agglomeration")
    try:
        content = path.read_bytes()
        payload = json.loads(content)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable edge classifier ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "lightgbm" not in payload:
        raise InputError(f"{path}: not an edge classifier: expected JSON with format {FORMAT!r}")
    threshold = payload.get("threshold")
    return EdgeClassifier(str(payload["lightgbm"]), tuple(payload["features"]),
                          None if threshold is None else float(threshold), dict(payload.get("record") or {}),
                          hashlib.sha256(content).hexdigest())


def graph_edge_features(graph: RegionGraph) -> np.ndarray:
    """The classifier's (E, F) features of a region graph that carries the node sums ``raw`` and
    ``boundary`` (the graph stage with ``graph.node_values``).

    Raises:
        InputError: the graph lacks those node sums.
    """
    missing = [name for name in NODE_VALUES if name not in graph.node_sums]
    if missing:
        raise InputError(f"the region graph has no node sums {missing}: agglomerate method learned needs the graph "
                         "stage run with graph.node_values: true (re-run it with method learned)")
    means = graph_node_means(graph)
    return edge_features(graph, {name: means[name] for name in NODE_VALUES})


def train_classifier(features: np.ndarray, targets: np.ndarray, record: dict[str, Any] | None = None) -> EdgeClassifier:
    """Fit the classifier on the edges whose target is known (merge 1 or split 0; -1 is left out).

    The two classes are weighted to equal total weight, since splits outnumber merges.

    Raises:
        InputError: shapes disagree, or either class has no edge.
    """
    import lightgbm

    if features.ndim != 2 or len(features) != len(targets):
        raise InputError(f"features {features.shape} and targets {np.shape(targets)}: expected one row per edge")
    names = feature_names(NODE_VALUES)
    if features.shape[1] != len(names):
        raise InputError(f"features have {features.shape[1]} columns: expected {len(names)} {list(names)}")
    known = (targets == MERGE) | (targets == SPLIT)
    x, y = features[known], (targets[known] == MERGE).astype(np.float64)
    n_merge, n_split = int(y.sum()), int(len(y) - y.sum())
    if n_merge == 0 or n_split == 0:
        raise InputError(f"the training edges hold {n_merge} merges and {n_split} splits: expected both; "
                         "label more of the training volume")
    weight = np.where(y == 1, 0.5 / n_merge, 0.5 / n_split) * len(y)
    held = np.random.default_rng(0).random(len(y)) < HOLDOUT
    fit = lightgbm.Dataset(x[~held], y[~held], weight=weight[~held], free_raw_data=True)
    check = lightgbm.Dataset(x[held], y[held], weight=weight[held], reference=fit, free_raw_data=True)
    booster = lightgbm.train(PARAMS, fit, num_boost_round=ROUNDS, valid_sets=[check],
                             callbacks=[lightgbm.early_stopping(STOP_ROUNDS, verbose=False)])
    return EdgeClassifier(booster.model_to_string(num_iteration=booster.best_iteration), names, None,
                          {**(record or {}), "trees": int(booster.best_iteration or booster.current_iteration()),
                           "edges": {"merge": n_merge, "split": n_split, "unknown": int((~known).sum())}})


def edge_auc(scores: np.ndarray, targets: np.ndarray) -> float | None:
    """Area under the ROC curve of ``scores`` (higher: merge) on the edges of known target
    (ties share ranks); None when either class is absent."""
    from scipy.stats import rankdata

    known = (targets == MERGE) | (targets == SPLIT)
    positive = targets[known] == MERGE
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=np.float64)[known])
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def learned_graph(graph: RegionGraph, probability: np.ndarray) -> RegionGraph:
    """A copy of ``graph`` whose edges' mean affinity is the merge probability: agglomerating it
    with score ``mean`` merges by ``1 - p``, averaging ``p`` over merged contacts by area."""
    if np.shape(probability) != (graph.n_edges,):
        raise InputError(f"probability has shape {np.shape(probability)}: expected ({graph.n_edges},), one per edge")
    scored = copy.copy(graph)
    scored.aff_sum = np.clip(probability, 0.0, 1.0) * graph.count
    return scored
