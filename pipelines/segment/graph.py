"""Region-graph stage: per block, the fragments it owns and the contacts (edges) it owns, as
parquet tables ``RUN/graph/{nodes,edges}/<block_id>.parquet``, blockwise and resumable.

A block reads the stored fragments of its write ROI grown by one voxel towards negative z, y
and x (0 outside the volume) and the affinities of its write ROI, so every voxel face of the
volume is counted by exactly one block. It needs the whole fragments stage finished first.

With ``graph.node_values`` (on for agglomerate method ``learned``) each node row also sums its
fragment's raw intensity and boundary (1 - lowest nearest-neighbour affinity, in [0, 1]) over
the voxels the block owns (columns ``sum_raw``, ``sum_boundary``), read from the run's raw.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from axonseg.blockwise.outputs import TablesOutput, read_json
from axonseg.blockwise.stage import BlockData, Input, Stage
from axonseg.errors import InputError
from axonseg.io import open_level
from axonseg.segment import RegionGraph, block_region_graph, graph_from_tables, graph_to_tables, merge_block_graphs
from axonseg.segment.affinities import as_unit_float, check_affinities
from axonseg.segment.edge_classifier import NODE_VALUES
from axonseg.segment.edge_features import node_sums
from axonseg.pipelines.run_folder import RunFolder, run_store
from axonseg.io import group_state
from axonseg.pipelines.segment._stage import Affinities, declared, open_affinities, stage_runner
from axonseg.pipelines.segment.config import SegmentConfig

logger = logging.getLogger(__name__)

STAGE = "graph"
STATE_FILE = "graph.json"
TABLES = ("nodes", "edges")


def graph_dir(run_dir: Path) -> Path:
    return Path(run_dir) / STAGE


def graph_state(run_dir: Path) -> dict | None:
    """``RUN/graph/graph.json``: ``complete``, ``config_hash`` and the config, or None."""
    return read_json(graph_dir(run_dir) / STATE_FILE)


def voxel_boundary(affinities: np.ndarray, offsets: list) -> np.ndarray:
    """(Z, Y, X) float32 boundary in [0, 1]: 1 - the lowest of the three nearest-neighbour
    affinities stored at each voxel (czyx, uint8 0-255 or float in [0, 1]).

    Not :func:`axonseg.segment.boundary_map`, which also takes the affinity stored at the next
    voxel of each axis: at a block's positive faces that lives in the next block, so a per-block
    sum would depend on the block shape. These three are the block's own, and the sums are exact.
    """
    return 1.0 - np.min(np.stack([as_unit_float(affinities[c]) for c in check_affinities(affinities, offsets)]), axis=0)


def _region_graph(affinities: Affinities, node_values: bool):  # noqa: ANN202
    """``process`` of the stage: the region graph of the faces the block owns, as two tables."""
    voxel_size = np.asarray(affinities.voxel_size)
    origin_nm = np.asarray(affinities.offset_nm)

    def process(data: BlockData) -> tuple:
        fragments = data["fragments"]
        if not fragments[1:, 1:, 1:].any():
            return ()  # an empty block owns nothing, not even rows of an earlier try
        graph = block_region_graph(
            fragments, data["affinities"], affinities.offsets, affinities.voxel_size,
            write_offset_nm=tuple(origin_nm + np.asarray(data.block.write_roi.offset) * voxel_size),
        )
        if node_values:
            owned = fragments[1:, 1:, 1:]
            values = {"raw": data["raw"], "boundary": voxel_boundary(data["affinities"], affinities.offsets)}
            graph.node_sums = {name: node_sums(owned, values[name], graph.node_id)[0] for name in NODE_VALUES}
        return tuple(graph_to_tables(graph))

    return process


def _raw_input(run_dir: Path, shape: tuple[int, int, int]) -> Input:
    """The run's raw EM (the predict input, on the affinities' grid) as a stage input.

    Raises:
        InputError: the run does not record its raw, or the raw is not on the affinities' grid.
    """
    from axonseg.io import open_volume

    address = RunFolder(run_dir).raw_address()
    if address is None:
        raise InputError(f"{run_dir}: graph.node_values (agglomerate method learned) needs the raw EM, but the run "
                         "records none (inputs.json); predict into this run with axonseg predict or segment")
    raw = open_volume(address)
    if tuple(raw.spatial_shape) != tuple(shape) or raw.data.ndim != 3:
        raise InputError(f"{address} has shape {raw.shape}: graph.node_values needs the raw on the affinities' "
                         f"grid {tuple(shape)} (z, y, x)")
    data = raw.data
    return Input(lambda roi: np.asarray(data[roi.to_slices()]), tuple(shape), with_context=False)


def graph_stage(run_dir: Path, config: SegmentConfig) -> Stage:
    """The region-graph stage of a run, declared: each block reads its fragments grown by one
    voxel towards negative z, y and x (zeros outside the volume), so that every voxel face of
    the volume is counted by exactly one block.

    Raises:
        InputError: no complete fragments, or affinities that do not match them.
    """
    store = run_store(run_dir)
    affinities = open_affinities(store, config)
    fragments_info = group_state(store, "fragments")
    if not fragments_info or not fragments_info.get("complete"):
        raise InputError(f"{store / 'fragments'}: no complete fragments; run the fragments stage first")
    fragments = open_level(store, "fragments", 0, mode="r")
    if tuple(fragments.shape) != affinities.shape:
        raise InputError(
            f"{store / 'fragments'} has shape {tuple(fragments.shape)} but the affinities have "
            f"{affinities.shape}: expected equal shapes (z, y, x); run the fragments stage again"
        )
    inputs = {"fragments": Input(lambda roi: np.asarray(fragments[roi.to_slices()]), affinities.shape),
              "affinities": Input(affinities.read, affinities.shape, with_context=False)}
    recorded = {"fragments": fragments_info.get("config_hash"), "block_shape": list(config.block_shape)}
    if config.graph.node_values:  # recorded only when on, so runs made before the option keep their hash
        inputs["raw"] = _raw_input(run_dir, affinities.shape)
        recorded["node_values"] = list(NODE_VALUES)
    return Stage(
        name=STAGE, volume_shape=affinities.shape, block_shape=tuple(config.block_shape), inputs=inputs,
        output=TablesOutput(graph_dir(run_dir), TABLES, STATE_FILE),
        process=_region_graph(affinities, config.graph.node_values), config=recorded,
        context=((1, 1, 1), (0, 0, 0)), border="zero",
    )


run_graph = stage_runner(
    declared(graph_stage), "run_graph",
    "Write the region graph of ``RUN/volume.zarr/fragments`` as parquet tables per block.",
    needs="; its fragments stage must be complete", config="block shape (voxels) and offsets",
    raises="no complete fragments, or affinities that do not match them",
)


def read_graph(run_dir: str | Path) -> RegionGraph:
    """The run's whole region graph: every block's tables, merged (edges unique, u < v).

    Raises:
        InputError: the graph stage has not completed.
    """
    folder = graph_dir(Path(run_dir))
    state = graph_state(Path(run_dir))
    if not state or not state.get("complete"):
        raise InputError(f"{folder}: no complete region graph; run the graph stage first")
    tables = []
    for name in TABLES:
        files = sorted((folder / name).glob("*.parquet"))
        parts = [pq.read_table(path) for path in files]
        tables.append(pa.concat_tables(parts, promote_options="permissive") if parts else None)
    if tables[0] is None:
        return merge_block_graphs([])
    nodes, edges = tables
    if edges is None:
        edges = graph_to_tables(merge_block_graphs([]))[1]
    # a fragment spanning blocks has one node row per block: merging sums them
    return merge_block_graphs([graph_from_tables(nodes, edges)])
