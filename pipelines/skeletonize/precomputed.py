"""A run's skeletons as a neuroglancer precomputed skeleton folder (unsharded): ``info`` with a
``radius`` vertex attribute, and one file per segment with its nodes in nm (x y z in the
file; our tables are zyx) and its edges. Reads the skeleton tables a batch at a time.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from axonseg.io.precomputed import write_skeleton, write_skeleton_info
from axonseg.pipelines.skeletonize.job import open_run_skeletons

logger = logging.getLogger(__name__)

PRECOMPUTED_DIR = "precomputed"


@dataclass(frozen=True)
class PrecomputedSkeletons:
    """What :func:`write_precomputed_skeletons` wrote.

    Attributes:
        folder: the skeleton folder (``info`` + ``<segment_id>`` files).
        n_segments: skeletons written (segments without nodes are left out).
    """

    folder: Path
    n_segments: int


def write_precomputed_skeletons(run_dir: str | Path, out_dir: str | Path | None = None) -> PrecomputedSkeletons:
    """Write every skeleton of ``RUN/skeletons`` in neuroglancer's precomputed skeleton format.

    The folder is written under a temporary name and replaces ``out_dir`` whole when done.

    Args:
        run_dir: the run folder (with ``skeletons/{nodes,edges}.parquet`` from ``axonseg skeletonize``).
        out_dir: the folder to write; default ``RUN/skeletons/precomputed``.

    Returns:
        A :class:`PrecomputedSkeletons`.

    Raises:
        InputError: the run has no skeleton tables.
    """
    store = open_run_skeletons(run_dir)  # raises before anything is written
    folder = Path(out_dir) if out_dir is not None else Path(run_dir) / "skeletons" / PRECOMPUTED_DIR
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_skeleton_info(tmp)
    count = 0
    for batch in store.batches():
        for segment_id, graph in batch.items():
            if graph.n_nodes == 0:
                continue
            write_skeleton(tmp, segment_id, graph.nodes_nm, graph.edges, graph.radii_nm)
            count += 1
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    logger.info("precomputed skeletons: %d segments in %s", count, folder)
    return PrecomputedSkeletons(folder, count)
