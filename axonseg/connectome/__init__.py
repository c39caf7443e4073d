"""Synapses to a connectome: point -> segment mapping, drops with reasons, weights, delays, pairs.

Pure numpy/pandas; file formats (SONATA, NIR files, tables) live in :mod:`axonseg.io`.
``nir`` and ``brian2`` are imported only by :mod:`axonseg.connectome.nir_graph` and
:mod:`axonseg.connectome.brian` when they are used.

Example::

    from axonseg.connectome import EdgeParams, build_connectome, normalize_synapse_table
    table = normalize_synapse_table(df)                 # presets: axonseg, xyz, cave
    table["pre_id"], table["post_id"] = ...             # ids at the points (pipelines/export/job.py)
    connectome = build_connectome(table, skeletons, EdgeParams(), rule)
"""

from axonseg.connectome.contacts import combine_contacts, contact_faces, contacts_to_synapses
from axonseg.connectome.delays import (
    PathLengths,
    RootRule,
    choose_roots,
    delays_ms,
    path_lengths_from_roots,
    synapse_path_lengths,
    volume_box_nm,
)
from axonseg.connectome.filtering import REASONS, DropReport, classify_synapses
from axonseg.connectome.mapping import (
    ChunkGroups,
    apply_lut_to_ids,
    group_by_chunk,
    inside_volume,
    lookup_in_block,
    points_to_voxels,
)
from axonseg.connectome.network import Connectome, EdgeParams, build_connectome, build_nodes
from axonseg.connectome.tables import (
    POST_COLUMNS,
    PRE_COLUMNS,
    PRESETS,
    detect_preset,
    normalize_synapse_table,
    synapse_points,
    synapses_from_arrays,
)
from axonseg.connectome.weights import (
    BRAINSCALES2_MAX_NEURONS,
    BRAINSCALES2_MAX_WEIGHT,
    aggregate_pairs,
    brainscales2_pairs,
    signs_from_table,
    synapse_weights,
)

__all__ = [
    "BRAINSCALES2_MAX_NEURONS", "BRAINSCALES2_MAX_WEIGHT", "POST_COLUMNS", "PRESETS", "PRE_COLUMNS", "REASONS",
    "ChunkGroups", "Connectome", "DropReport", "EdgeParams", "PathLengths", "RootRule",
    "aggregate_pairs", "apply_lut_to_ids", "brainscales2_pairs", "build_connectome", "build_nodes",
    "choose_roots", "classify_synapses", "combine_contacts", "contact_faces", "contacts_to_synapses",
    "delays_ms", "detect_preset", "group_by_chunk", "inside_volume", "lookup_in_block",
    "normalize_synapse_table", "path_lengths_from_roots", "points_to_voxels", "signs_from_table",
    "synapse_path_lengths", "synapse_points", "synapse_weights", "synapses_from_arrays", "volume_box_nm",
]
