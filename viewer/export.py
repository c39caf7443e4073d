"""Re-export after proofreading: skeletons and connectome for the segments the edits touched.

Touched segments are re-skeletonized inside the bounding box of their fragments (from the
region-graph centroids, padded), with the current LUT applied; untouched skeletons are reused.
The connectome export then runs with the current LUT and the updated skeletons.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from axonseg.errors import InputError
from axonseg.proofread import ProofreadSession
from axonseg.viewer.run_data import RunData

logger = logging.getLogger(__name__)

STATE_FILE = "proofread_export.json"


def last_exported_op(run_dir: Path) -> int:
    path = Path(run_dir) / "connectome" / STATE_FILE
    return int(json.loads(path.read_text())["op_id"]) if path.exists() else 0


def _touched_skeletons(run: RunData, session: ProofreadSession, segments: set[int], pad_voxels: int = 8) -> dict:
    """Fresh skeletons of ``segments``, each traced in the box (voxels, zyx) around its fragments'
    centroids, padded by a fragment's reach."""
    from axonseg.pipelines.skeletonize.reskeletonize import skeletonize_fragments  # kimimaro only when needed

    graphs = {}
    shape = np.asarray(run.fragments[0].spatial_shape)
    for segment in sorted(segments):
        fragments = session.fragments_of(segment)
        if len(fragments) == 0:
            continue
        index = session.state.index_of(fragments)
        centroids = (session.node_centroid[index] - run.offset) / run.voxel_size
        box = session.node_size[index].max() ** (1 / 3) + pad_voxels  # a fragment's reach, roughly
        begin = np.maximum(np.floor(np.nanmin(centroids, 0) - box), 0).astype(int)
        end = np.minimum(np.ceil(np.nanmax(centroids, 0) + box), shape).astype(int)
        graph = skeletonize_fragments(run.fragments[0], fragments, segment, begin, end)
        if graph is not None:
            graphs[segment] = graph
    return graphs


def export_touched(run: RunData, session: ProofreadSession, formats: str | list[str] = "sonata",
                   synapses: str | None = None) -> dict:
    """Re-skeletonize the segments edited since the last export and re-export the connectome.

    Returns:
        ``{"touched": [...], "removed": [...], "op_id": ..., "export": str}``.

    Raises:
        InputError: the export pipeline is not available in this install.
    """
    try:
        from axonseg.pipelines.export import run_export
    except ImportError as error:
        raise InputError(f"connectome export is unavailable ({error}): expected axonseg.pipelines.export") from None
    since = last_exported_op(run.run_dir)
    touched, removed = session.touched_segments(since_op=since)
    skeletons = {k: v for k, v in run.skeletons.items() if k not in touched and k not in removed}
    skeletons.update(_touched_skeletons(run, session, touched))
    run.skeletons = skeletons
    result = run_export(run.run_dir, formats=formats, synapses=synapses, overwrite=True,
                        lut=session.current_lut, skeletons=skeletons)
    summary = {"touched": sorted(touched), "removed": sorted(removed), "op_id": session.version,
               "export": str(result.folder)}
    (run.run_dir / "connectome" / STATE_FILE).write_text(json.dumps(summary, indent=1))
    logger.info("re-exported after op %d: %d touched segments re-skeletonized", session.version, len(touched))
    return summary
