"""A run's skeletons on disk, written and read a batch of segments at a time.

``nodes.parquet`` and ``edges.parquet`` (columns of :mod:`axonseg.skeleton.tables`) hold the
segments in ascending id order, one parquet row group per batch of whole segments, so that
row group ``i`` of both files covers the same segments. A reader then needs only one batch in
memory: :class:`SkeletonStore` is a read-only ``{segment_id: AxonGraph}`` mapping that loads
the row group holding a segment (found from the row groups' min/max statistics) and keeps the
last one loaded, so ascending-id access reads each batch once. Files written in one row group
(by ``pandas.to_parquet`` or an older axonseg) still read, as one batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from axonseg.errors import InputError
from axonseg.skeleton.graph import AxonGraph
from axonseg.skeleton.tables import from_tables, to_tables

NODES_FILE = "nodes.parquet"
EDGES_FILE = "edges.parquet"
DEFAULT_BATCH_NODES = 100_000


class SkeletonTableWriter:
    """Append skeletons to ``nodes.parquet`` / ``edges.parquet`` batch by batch.

    Segments must come in ascending id order across calls. Graphs are buffered until the batch
    holds ``batch_nodes`` nodes, then written as one row group in each file. The files are
    written under temporary names and renamed into place by :meth:`close` (or on leaving the
    ``with`` block without an error), so a reader never sees half a table.

    Args:
        out_dir: the skeleton folder (created).
        batch_nodes: nodes per row group (one segment is never split).
    """

    def __init__(self, out_dir: str | Path, batch_nodes: int = DEFAULT_BATCH_NODES) -> None:
        if batch_nodes < 1:
            raise InputError(f"batch_nodes={batch_nodes}: expected at least one node per batch")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.batch_nodes = batch_nodes
        self.n_segments = 0
        self.n_nodes = 0
        self.total_length_nm = 0.0
        self._buffer: list[AxonGraph] = []
        self._buffered_nodes = 0
        self._last_id: int | None = None
        self._writers: dict[str, pq.ParquetWriter] = {}

    def _tmp(self, name: str) -> Path:
        return self.out_dir / f"{name}.tmp"

    def write(self, graphs: Mapping[int, AxonGraph]) -> None:
        """Add ``{segment_id: AxonGraph}`` (nm, zyx); ids must exceed every id written before."""
        for segment_id in sorted(graphs):
            if self._last_id is not None and segment_id <= self._last_id:
                raise InputError(f"skeleton writer got segment {segment_id} after {self._last_id}: expected ascending ids")
            self._last_id = segment_id
            graph = graphs[segment_id]
            self._buffer.append(graph)
            self._buffered_nodes += graph.n_nodes
            self.n_segments += 1
            self.n_nodes += graph.n_nodes
            self.total_length_nm += graph.path_length_nm
            if self._buffered_nodes >= self.batch_nodes:
                self._flush()

    def _flush(self) -> None:
        if not self._buffer and self._writers:
            return
        nodes, edges = to_tables(self._buffer)
        for name, frame in ((NODES_FILE, nodes), (EDGES_FILE, edges)):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if name not in self._writers:
                self._writers[name] = pq.ParquetWriter(self._tmp(name), table.schema)
            # one row group per batch in both files keeps row group i of nodes and edges aligned
            self._writers[name].write_table(table, row_group_size=max(len(table), 1))
        self._buffer, self._buffered_nodes = [], 0

    def close(self) -> tuple[Path, Path]:
        """Write the last batch and move both files into place; returns (nodes, edges) paths."""
        self._flush()
        paths = []
        for name in (EDGES_FILE, NODES_FILE):  # nodes last: its presence means both are complete
            self._writers.pop(name).close()
            os.replace(self._tmp(name), self.out_dir / name)
            paths.append(self.out_dir / name)
        return paths[1], paths[0]

    def abort(self) -> None:
        """Drop what was written (the temporary files); the previous tables, if any, stay."""
        for name, writer in list(self._writers.items()):
            writer.close()
            self._tmp(name).unlink(missing_ok=True)
        self._writers.clear()

    def __enter__(self) -> SkeletonTableWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _id_ranges(parquet: pq.ParquetFile, path: Path) -> np.ndarray:
    """(row groups, 2) min/max segment id of each row group, from the file's statistics."""
    column = parquet.schema_arrow.get_field_index("segment_id")
    if column < 0:
        raise InputError(f"{path}: no segment_id column; expected a skeleton table")
    ranges = np.zeros((parquet.num_row_groups, 2), dtype=np.uint64)
    for group in range(parquet.num_row_groups):
        meta = parquet.metadata.row_group(group)
        stats = meta.column(column).statistics
        if meta.num_rows == 0:
            ranges[group] = (1, 0)  # empty: matches nothing
        elif stats is None or not stats.has_min_max:
            raise InputError(f"{path}: row group {group} has no segment_id statistics; rewrite it with axonseg skeletonize")
        else:
            ranges[group] = (stats.min, stats.max)
    return ranges


class SkeletonStore(Mapping[int, AxonGraph]):
    """Read-only ``{segment_id: AxonGraph}`` over a skeleton folder, one batch in memory.

    Args:
        folder: holds ``nodes.parquet`` and ``edges.parquet``.

    Raises:
        InputError: a table is missing or is not a skeleton table.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        paths = {name: self.folder / name for name in (NODES_FILE, EDGES_FILE)}
        for path in paths.values():
            if not path.exists():
                raise InputError(f"{path}: missing; run `axonseg skeletonize` first")
        self._nodes = pq.ParquetFile(paths[NODES_FILE])
        self._edges = pq.ParquetFile(paths[EDGES_FILE])
        self._node_ranges = _id_ranges(self._nodes, paths[NODES_FILE])
        self._edge_ranges = _id_ranges(self._edges, paths[EDGES_FILE])
        order = np.argsort(self._node_ranges[:, 0], kind="stable")
        if np.any(self._node_ranges[order[1:], 0] <= self._node_ranges[order[:-1], 1]):
            # overlapping batches (not written by SkeletonTableWriter): read the file as one batch
            self._node_ranges = np.array([[self._node_ranges[:, 0].min(), self._node_ranges[:, 1].max()]], dtype=np.uint64)
            self._groups: list[list[int] | None] = [None]
        else:
            self._groups = [[int(g)] for g in range(self._nodes.num_row_groups)]
        self._loaded: int | None = None
        self._batch: dict[int, AxonGraph] = {}

    @property
    def n_batches(self) -> int:
        """Row-group batches in the node table."""
        return len(self._groups)

    def _batch_of(self, segment_id: int) -> int | None:
        hits = np.flatnonzero((self._node_ranges[:, 0] <= segment_id) & (self._node_ranges[:, 1] >= segment_id))
        return int(hits[0]) if len(hits) else None

    def batch(self, index: int) -> dict[int, AxonGraph]:
        """The graphs of batch ``index`` (kept as the current batch)."""
        if self._loaded != index:
            self._batch = {}  # free the previous batch before reading the next
            groups = self._groups[index]
            nodes = (self._nodes.read_row_groups(groups) if groups is not None else self._nodes.read()).to_pandas()
            low, high = self._node_ranges[index]
            edge_groups = np.flatnonzero((self._edge_ranges[:, 0] <= high) & (self._edge_ranges[:, 1] >= low))
            edges = self._edges.read_row_groups(edge_groups.tolist()).to_pandas() if len(edge_groups) else \
                self._edges.schema_arrow.empty_table().to_pandas()
            ids = edges["segment_id"].to_numpy(dtype=np.uint64)
            edges = edges[(ids >= low) & (ids <= high)]
            self._batch, self._loaded = from_tables(nodes, edges), index
        return self._batch

    def batches(self) -> Iterator[dict[int, AxonGraph]]:
        """Every batch in ascending id order."""
        for index in np.argsort(self._node_ranges[:, 0], kind="stable").tolist():
            yield self.batch(index)

    def __getitem__(self, segment_id: int) -> AxonGraph:
        index = self._batch_of(int(segment_id))
        if index is None:
            raise KeyError(segment_id)
        return self.batch(index)[int(segment_id)]

    def __contains__(self, segment_id: object) -> bool:
        try:
            self[int(segment_id)]  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError):
            return False
        return True

    def __iter__(self) -> Iterator[int]:
        for graphs in self.batches():
            yield from list(graphs)

    def __len__(self) -> int:
        total = 0
        for groups in self._groups:  # a segment never spans two batches: count per batch
            column = (self._nodes.read_row_groups(groups, columns=["segment_id"]) if groups is not None
                      else self._nodes.read(columns=["segment_id"])).column("segment_id")
            total += len(np.unique(column.to_numpy()))
        return total
