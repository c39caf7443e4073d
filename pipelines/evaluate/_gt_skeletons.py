"""Ground-truth skeletons for evaluation: the synth store's own, or the GT labels skeletonized
blockwise with the AxonEM parameters and cached on disk keyed by what they were made from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from axonseg.blockwise import Roi
from axonseg.io import Volume, group_exists, parse_address
from axonseg.skeleton import SkeletonParams
from axonseg.pipelines.labels import read_roi
from axonseg.pipelines.skeletonize.blocks import join_distances, read_skeletons, skeletonize_blocks
from axonseg.pipelines.skeletonize.join import join_to_disk

logger = logging.getLogger(__name__)

CACHE_FILE = "cache.json"


def synth_skeleton_store(gt_address: str | Path) -> Path | None:
    """The zarr store of ``gt_address`` if it holds a ``skeletons`` group (``axonseg synth`` output)."""
    try:
        address = parse_address(gt_address)
    except Exception:  # noqa: BLE001 - an unparsable address simply has no store skeletons
        return None
    if address.kind == "zarr" and group_exists(address.path, "skeletons"):
        return address.path
    return None


def _cache_key(gt: Volume, gt_address: str | Path, params: SkeletonParams, block_shape: Sequence[int]) -> dict:
    address = parse_address(gt_address)
    target = address.path / address.dataset if address.kind in ("zarr", "n5") else address.path
    stamp = os.stat(target).st_mtime_ns if target.exists() else None
    return {
        "gt": gt.source,
        "modified_ns": stamp,
        "shape": list(gt.spatial_shape),
        "voxel_size": list(gt.voxel_size),
        "offset_nm": list(gt.offset),
        "params": params.model_dump(mode="json"),
        "block_shape": list(block_shape),
    }


def gt_skeletons(
    gt_address: str | Path,
    gt: Volume,
    params: SkeletonParams,
    block_shape: Sequence[int],
    cache_dir: Path,
    markers_root: Path | None = None,
    scheduler: str = "threads",
    show_progress: bool = True,
) -> tuple[dict, str]:
    """Skeletons of the ground truth, in world nm (zyx).

    Args:
        gt_address: the GT array's address; a zarr store with a ``skeletons`` group is read.
        gt: the opened GT labels.
        params: kimimaro settings for skeletonizing GT labels (AxonEM defaults).
        block_shape: write block shape in voxels (zyx).
        cache_dir: folder that caches skeletonized GT (``nodes.parquet``, ``edges.parquet``).
        markers_root: the run's ``blocks/`` folder for done markers (resume); None: they stay
            in the cache folder until the skeletons are cached.
        scheduler: dask scheduler spec.
        show_progress: draw a progress bar.

    Returns:
        ``(skeletons, description)``: ``{id: (nodes_nm, edges)}`` or ``{id: AxonGraph}``, and
        where they came from.
    """
    store = synth_skeleton_store(gt_address)
    if store is not None:
        from axonseg.pipelines.synth import read_skeletons as read_store_skeletons

        skeletons = read_store_skeletons(store)
        logger.info("gt skeletons: %d from %s/skeletons", len(skeletons), store)
        return skeletons, f"{store}/skeletons"

    cache_dir = Path(cache_dir)
    key = _cache_key(gt, gt_address, params, block_shape)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    cache_file = cache_dir / CACHE_FILE
    if cache_file.exists() and json.loads(cache_file.read_text()).get("hash") == digest:
        skeletons = read_skeletons(cache_dir)
        logger.info("gt skeletons: %d cached in %s", len(skeletons), cache_dir)
        return skeletons, f"cached skeletons of {gt.source} in {cache_dir}"

    # markers of an evaluation run live in its blocks/; a standalone evaluation keeps them in the cache
    run_dir = Path(markers_root).parent if markers_root is not None else cache_dir / "run"

    def read_labels(roi: Roi):  # noqa: ANN202
        return read_roi(gt, roi)

    block_ids = skeletonize_blocks(
        read_labels, gt.spatial_shape, gt.voxel_size, gt.offset, params, block_shape, cache_dir / "blocks",
        run_dir, key, name="evaluate-gt-skeletons", cache=True, scheduler=scheduler, show_progress=show_progress,
    )
    cache_file.unlink(missing_ok=True)
    join_to_disk(cache_dir / "blocks", block_ids, cache_dir, *join_distances(gt.voxel_size, None, None), swc=False)
    skeletons = read_skeletons(cache_dir)
    tmp = cache_file.with_name(CACHE_FILE + ".tmp")
    tmp.write_text(json.dumps({"hash": digest, "key": key}, indent=1))
    os.replace(tmp, cache_file)
    shutil.rmtree(cache_dir / "blocks", ignore_errors=True)
    shutil.rmtree(cache_dir / "run", ignore_errors=True)
    logger.info("gt skeletons: %d skeletonized from %s, cached in %s", len(skeletons), gt.source, cache_dir)
    return skeletons, f"skeletons of {gt.source} (kimimaro, cached in {cache_dir})"
