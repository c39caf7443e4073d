"""Synapse weights and signs, per-pair aggregation, and the BrainScaleS-2 hardware limits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from axonseg.errors import InputError

logger = logging.getLogger(__name__)

INHIBITORY_VALUES = ("inhibitory", "gaba", "gabaergic", "glycine", "glycinergic", "-1", "i")
SIGN_COLUMNS = ("sign", "transmitter", "nt", "cell_type", "ei")
BRAINSCALES2_MAX_NEURONS = 512
BRAINSCALES2_MAX_WEIGHT = 63


def signs_from_table(segment_ids: np.ndarray, table: pd.DataFrame | None, column: str | None = None,
                     inhibitory_values: Sequence[str] = INHIBITORY_VALUES) -> np.ndarray:
    """+1 (excitatory) or -1 (inhibitory) per segment.

    Args:
        segment_ids: ``(N,)`` segment ids.
        table: per-segment table with ``segment_id`` and a sign column (a number whose sign is
            used, or a cell type / transmitter name); None: every segment is excitatory.
        column: the sign column; default the first of ``sign, transmitter, nt, cell_type, ei``.
        inhibitory_values: names (case-insensitive) that mean inhibitory.

    Returns:
        ``(N,)`` int8; segments missing from the table are excitatory.
    """
    ids = np.asarray(segment_ids, dtype=np.uint64)
    signs = np.ones(len(ids), dtype=np.int8)
    if table is None:
        return signs
    if "segment_id" not in table.columns:
        raise InputError(f"sign table lacks column 'segment_id' (has {list(table.columns)})")
    column = column or next((c for c in SIGN_COLUMNS if c in table.columns), None)
    if column is None or column not in table.columns:
        raise InputError(f"sign table lacks a sign column: expected one of {list(SIGN_COLUMNS)} (has {list(table.columns)})")
    values = table[column]
    if pd.api.types.is_numeric_dtype(values):
        table_signs = np.where(values.to_numpy(np.float64) < 0, -1, 1)
    else:
        lowered = values.astype(str).str.strip().str.lower()
        table_signs = np.where(lowered.isin([v.lower() for v in inhibitory_values]), -1, 1)
    lookup = pd.Series(table_signs, index=table["segment_id"].to_numpy(np.uint64))
    lookup = lookup[~lookup.index.duplicated(keep="last")]
    found = lookup.reindex(ids).to_numpy()
    signs[~np.isnan(found)] = found[~np.isnan(found)].astype(np.int8)
    return signs


def synapse_weights(sizes: np.ndarray, pre_signs: np.ndarray, unit_weight: float = 1.0,
                    weight_by: str = "count") -> np.ndarray:
    """Signed weight of each synapse: ``unit_weight`` (``count``) or ``unit_weight * size`` (``size``)."""
    if weight_by not in ("count", "size"):
        raise InputError(f"weight_by={weight_by!r}: expected 'count' or 'size'")
    magnitude = np.full(len(pre_signs), float(unit_weight)) if weight_by == "count" else \
        float(unit_weight) * np.nan_to_num(np.asarray(sizes, dtype=np.float64), nan=1.0)
    return magnitude * np.asarray(pre_signs, dtype=np.float64)


def aggregate_pairs(synapses: pd.DataFrame) -> pd.DataFrame:
    """One row per (pre, post) segment pair.

    Args:
        synapses: per synapse ``pre_id, post_id, size, syn_weight, delay_ms`` (and optionally
            ``source_node_id, target_node_id``).

    Returns:
        ``pre_id, post_id, count, total_size, weight`` (summed signed weight), ``mean_delay_ms``,
        ``min_delay_ms`` (and node ids when given), sorted by pre then post.
    """
    keys = ["pre_id", "post_id"] + [c for c in ("source_node_id", "target_node_id") if c in synapses.columns]
    grouped = synapses.groupby(keys, sort=True)
    pairs = grouped.agg(count=("size", "size"), total_size=("size", "sum"), weight=("syn_weight", "sum"),
                        mean_delay_ms=("delay_ms", "mean"), min_delay_ms=("delay_ms", "min")).reset_index()
    pairs["count"] = pairs["count"].astype(np.int64)
    return pairs


def brainscales2_pairs(pairs: pd.DataFrame, n_neurons: int) -> pd.DataFrame:
    """Apply BrainScaleS-2 limits to per-pair connections.

    Delays are dropped (the hardware has none; a warning is logged), weights become integers
    0..63 proportional to ``|weight|`` (the largest maps to 63) and the sign becomes the
    receptor type.

    Args:
        pairs: from :func:`aggregate_pairs`.
        n_neurons: neurons of the network.

    Returns:
        ``pairs`` with ``hw_weight`` (int64 0..63) and ``receptor_type`` (``excitatory`` /
        ``inhibitory``), without delay columns.

    Raises:
        InputError: more than 512 neurons.
    """
    if n_neurons > BRAINSCALES2_MAX_NEURONS:
        raise InputError(
            f"the connectome has {n_neurons} neurons: BrainScaleS-2 holds at most {BRAINSCALES2_MAX_NEURONS}; "
            "export a smaller region or without --target brainscales2"
        )
    out = pairs.drop(columns=[c for c in ("mean_delay_ms", "min_delay_ms") if c in pairs.columns]).copy()
    logger.warning("brainscales2: synaptic delays dropped (the hardware has no programmable delays)")
    magnitude = out["weight"].abs().to_numpy(np.float64)
    top = magnitude.max() if len(magnitude) else 0.0
    scaled = np.zeros(len(out)) if top == 0 else magnitude / top * BRAINSCALES2_MAX_WEIGHT
    out["hw_weight"] = np.clip(np.rint(scaled), 0, BRAINSCALES2_MAX_WEIGHT).astype(np.int64)
    out["receptor_type"] = np.where(out["weight"].to_numpy() < 0, "inhibitory", "excitatory")
    return out
