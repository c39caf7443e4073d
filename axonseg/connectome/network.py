"""Assemble the connectome: nodes (one per segment), per-synapse edges with weights and delays, pairs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from axonseg.connectome.delays import PathLengths, RootRule, delays_ms, synapse_path_lengths
from axonseg.connectome.filtering import DropReport
from axonseg.connectome.tables import POST_COLUMNS, PRE_COLUMNS
from axonseg.connectome.weights import aggregate_pairs, signs_from_table, synapse_weights
from axonseg.errors import InputError
from axonseg.skeleton import AxonGraph

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeParams:
    """How synapses become weighted, delayed edges.

    Attributes:
        synaptic_delay_ms: fixed delay of transmission, ms.
        conduction_velocity_m_per_s: axonal conduction speed, m/s (0.3 for thin unmyelinated axons).
        unit_weight: weight of one synapse.
        weight_by: ``count`` (every synapse weighs ``unit_weight``) or ``size``.
        with_delays: compute path lengths and delays (needs skeletons); else every delay is the
            synaptic delay and ``path_length_um`` is NaN.
    """

    synaptic_delay_ms: float = 0.5
    conduction_velocity_m_per_s: float = 0.3
    unit_weight: float = 1.0
    weight_by: str = "count"
    with_delays: bool = True


@dataclass
class Connectome:
    """The exported network.

    Attributes:
        nodes: one row per segment: ``node_id`` (0..N-1), ``segment_id``, ``node_type``, ``sign``,
            ``skeleton_length_um``, ``centroid_z_nm``, ``centroid_y_nm``, ``centroid_x_nm``.
        synapses: one row per synapse: ``synapse_id``, ``pre_id``, ``post_id``, ``source_node_id``,
            ``target_node_id``, pre/post points (nm, zyx), ``size``, ``confidence``,
            ``path_length_um``, ``delay_ms``, ``syn_weight``; sorted by target then source node.
        pairs: one row per (pre, post) pair (:func:`axonseg.connectome.weights.aggregate_pairs`).
        drops: why synapses were dropped.
        path_lengths: root choices and synapses without skeleton (None without delays).
        params: the edge settings used.
    """

    nodes: pd.DataFrame
    synapses: pd.DataFrame
    pairs: pd.DataFrame
    drops: DropReport = field(default_factory=DropReport)
    path_lengths: PathLengths | None = None
    params: EdgeParams = field(default_factory=EdgeParams)

    @property
    def n_nodes(self) -> int:
        return int(len(self.nodes))


def _centroids(segment_ids: np.ndarray, graphs: Mapping[int, AxonGraph], synapses: pd.DataFrame) -> np.ndarray:
    """Skeleton-node mean per segment (nm, zyx); segments without a skeleton use their synapse points."""
    centroids = np.full((len(segment_ids), 3), np.nan)
    points = np.concatenate([synapses[list(PRE_COLUMNS)].to_numpy(np.float64),
                             synapses[list(POST_COLUMNS)].to_numpy(np.float64)]).reshape(-1, 3)
    owners = np.concatenate([synapses["pre_id"].to_numpy(np.uint64), synapses["post_id"].to_numpy(np.uint64)])
    frame = pd.DataFrame(points, columns=["z", "y", "x"])
    frame["owner"] = owners
    means = frame.groupby("owner").mean()
    fallback = means.reindex(segment_ids).to_numpy(np.float64)
    for i, segment_id in enumerate(segment_ids.tolist()):
        graph = graphs.get(int(segment_id))
        centroids[i] = graph.nodes_nm.mean(axis=0) if graph is not None and graph.n_nodes else fallback[i]
    return centroids


def build_nodes(segment_ids: np.ndarray, graphs: Mapping[int, AxonGraph], synapses: pd.DataFrame,
                sign_table: pd.DataFrame | None = None, sign_column: str | None = None) -> pd.DataFrame:
    """One node per segment id (sorted), with its type, sign, skeleton length (µm) and centroid (nm)."""
    ids = np.unique(np.asarray(segment_ids, dtype=np.uint64))
    signs = signs_from_table(ids, sign_table, sign_column)
    lengths = np.array([graphs[s].path_length_nm / 1000.0 if s in graphs else 0.0 for s in ids.tolist()])
    types = np.where(signs < 0, "inhibitory", "excitatory").astype(object)
    if sign_table is not None and "cell_type" in sign_table.columns:
        names = pd.Series(sign_table["cell_type"].astype(str).to_numpy(),
                          index=sign_table["segment_id"].to_numpy(np.uint64))
        names = names[~names.index.duplicated(keep="last")].reindex(ids)
        types = np.where(names.isna().to_numpy(), types, names.to_numpy())
    centroids = _centroids(ids, graphs, synapses)
    return pd.DataFrame({
        "node_id": np.arange(len(ids), dtype=np.int64), "segment_id": ids, "node_type": types.astype(str),
        "sign": signs, "skeleton_length_um": lengths, "centroid_z_nm": centroids[:, 0],
        "centroid_y_nm": centroids[:, 1], "centroid_x_nm": centroids[:, 2],
    })


def build_connectome(synapses: pd.DataFrame, graphs: Mapping[int, AxonGraph], params: EdgeParams,
                     rule: RootRule | None = None, sign_table: pd.DataFrame | None = None,
                     sign_column: str | None = None, drops: DropReport | None = None) -> Connectome:
    """Turn kept synapses (with ``pre_id`` and ``post_id``) into nodes, edges and pairs.

    Args:
        synapses: canonical synapse table (:mod:`axonseg.connectome.tables`) with ``pre_id`` and
            ``post_id`` segment ids, already filtered (no 0 ids, no pre == post).
        graphs: presynaptic skeletons ``{segment_id: AxonGraph}`` (nm, zyx); may be empty when
            ``params.with_delays`` is False.
        params: delays and weights.
        rule: root choice for the path lengths (required with delays).
        sign_table: optional per-segment sign / cell type table.
        sign_column: its sign column (default: detected).
        drops: the drop report to attach.
    """
    for name in ("pre_id", "post_id"):
        if name not in synapses.columns:
            raise InputError(f"synapses lack column {name!r}: map the points to segments first")
    table = synapses.reset_index(drop=True).copy()
    table["pre_id"] = table["pre_id"].to_numpy(np.uint64)
    table["post_id"] = table["post_id"].to_numpy(np.uint64)
    if "synapse_id" not in table.columns:
        table.insert(0, "synapse_id", np.arange(len(table), dtype=np.int64))
    nodes = build_nodes(np.concatenate([table["pre_id"].to_numpy(), table["post_id"].to_numpy()]),
                        graphs, table, sign_table, sign_column)
    ids = nodes["segment_id"].to_numpy(np.uint64)
    table["source_node_id"] = np.searchsorted(ids, table["pre_id"].to_numpy()).astype(np.int64)
    table["target_node_id"] = np.searchsorted(ids, table["post_id"].to_numpy()).astype(np.int64)
    path_info = None
    if params.with_delays:
        if rule is None:
            raise InputError("build_connectome: delays need a root rule (volume box)")
        path_info = synapse_path_lengths(graphs, table["pre_id"].to_numpy(), table[list(PRE_COLUMNS)].to_numpy(), rule)
        if path_info.n_without_skeleton:
            logger.warning("%d synapses have a presynaptic segment without skeleton: their delay is the synaptic delay only",
                           path_info.n_without_skeleton)
        table["path_length_um"] = path_info.path_length_um
    else:
        table["path_length_um"] = np.nan
    table["delay_ms"] = delays_ms(table["path_length_um"].to_numpy(), params.synaptic_delay_ms,
                                  params.conduction_velocity_m_per_s)
    pre_signs = nodes["sign"].to_numpy()[table["source_node_id"].to_numpy()]
    table["syn_weight"] = synapse_weights(table["size"].to_numpy(), pre_signs, params.unit_weight, params.weight_by)
    # SONATA readers iterate afferent edges fastest when edges are sorted by target.
    table = table.sort_values(["target_node_id", "source_node_id", "synapse_id"], kind="stable").reset_index(drop=True)
    pairs = aggregate_pairs(table)
    return Connectome(nodes, table, pairs, drops or DropReport(len(table)), path_info, params)
