"""Benchmark: ``axonseg mesh`` (blockwise zmesh + join + seam simplification + smoothing,
resumable, written as neuroglancer legacy meshes) against zmesh on the whole volume.

The segmentation is a dense synthetic one: the ``neurites`` labels of ``axonseg synth`` (every
axon and other neurite, ~90% of the voxels) at 30x8x8 nm, generated once at the smallest size
and mirror-tiled to the larger sizes with the ids of each tile offset (so segments stay as
dense and as large per voxel; a 512³ volume is eight 256³ tiles). For each size, each side runs
in its own fresh process (forked from a server that has only imported the libraries), so its
peak RSS (ru_maxrss) is its own:

- ours: :func:`axonseg.pipelines.mesh.run_mesh` on the run folder (default config; ``--block``
  sets the block shape), scheduler ``threads`` (one block at a time: zmesh holds the GIL);
- peer: zmesh on the whole volume as igneous would run one task: read the whole
  segmentation, renumber, ``Mesher.mesh``, ``get`` every segment with the same reduction
  factor and max error, and write each mesh's precomputed bytes (``Mesh.to_precomputed``)
  to a folder. No smoothing, no join, no resume.

Prints per size and side: seconds, Mvoxels/s, meshes/s, triangles, peak RSS; ``ratio`` in the
last JSON line is peer seconds / our seconds at the largest size (above 1: we are faster),
and ``rss_ratio_512_vs_256`` is our peak RSS at the largest size over the smallest (the issue
asks <= 1.3: memory bounded by the block).

Run: ``.venv/bin/python benchmarks/mesh.py [--sizes 256 512] [--block 64 256 256]``;
``--quick`` is a smoke run (sizes 32 and 64) for the tests. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import isa_flags, measure as run_measured, task_child

VOXEL_SIZE = (30.0, 8.0, 8.0)
PRELOAD = ["numpy", "zarr", "zmesh", "fastremap", "scipy.sparse", "axonseg.pipelines.mesh", "axonseg.pipelines.synth"]
# ---------------------------------------------------------------- child side (forked per task)

def _prepare(spec: dict) -> dict:
    """The synthetic segmentation at every size, each as ``run_<size>/volume.zarr/segmentation``."""
    import numpy as np
    import zarr

    from axonseg.io import create_multiscale, mark_complete, open_level, write_block
    from axonseg.pipelines.synth import write_synth

    base = min(spec["sizes"])
    store = Path(spec["workdir"]) / f"synth_{base}.zarr"
    write_synth(store, shape=(base,) * 3, voxel_size=VOXEL_SIZE, seed=0, overwrite=True, show_progress=False)
    tile = zarr.open_group(str(store), mode="r")["neurites"]["s0"][:].astype(np.uint64)
    step = int(tile.max()) + 1
    counts = {}
    for size in spec["sizes"]:
        reps = -(-size // base)
        run_store = Path(spec["workdir"]) / f"run_{size}" / "volume.zarr"
        shutil.rmtree(run_store.parent, ignore_errors=True)
        chunks = tuple(min(64, size) for _ in range(3))
        create_multiscale(run_store, "segmentation", (size,) * 3, np.uint64, VOXEL_SIZE, (0.0, 0.0, 0.0), chunks)
        array = open_level(run_store, "segmentation", 0)
        ids = set()
        for index in np.ndindex(reps, reps, reps):
            part = tile
            for axis, i in enumerate(index):
                if i % 2:
                    part = np.flip(part, axis=axis)  # mirrored: objects continue across the tile face
            number = (index[0] * reps + index[1]) * reps + index[2]
            part = np.where(part > 0, part + np.uint64(number * step), np.uint64(0))
            begin = [i * base for i in index]
            crop = tuple(slice(0, min(base, size - b)) for b in begin)
            write_block(array, part[crop], begin)
            ids.update(np.unique(part[crop]).tolist())
        mark_complete(run_store, "segmentation")
        counts[size] = len(ids - {0})
    return {"segments": counts}


def _ours(spec: dict) -> dict:
    from axonseg.pipelines.mesh import MeshConfig, run_mesh

    config = MeshConfig(block_shape=tuple(spec["block"])) if spec["block"] else MeshConfig()
    result = run_mesh(spec["run_dir"], config, scheduler="threads", restart=True, show_progress=False)
    return {"meshes": result.n_segments, "triangles": result.n_faces, "not_watertight": result.not_watertight,
            "block": list(config.block_shape)}


def _peer(spec: dict) -> dict:
    """zmesh on the whole volume, simplified like ours, each mesh written as precomputed bytes."""
    import fastremap
    import zmesh

    from axonseg.io import open_level
    from axonseg.pipelines.mesh import MeshConfig

    params = MeshConfig()
    labels = open_level(Path(spec["run_dir"]) / "volume.zarr", "segmentation", 0)[:]
    labels, mapping = fastremap.renumber(labels, preserve_zero=True, in_place=True)
    original = {new: old for old, new in mapping.items()}
    out = Path(spec["run_dir"]) / "peer_meshes"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    mesher = zmesh.Mesher(VOXEL_SIZE)
    mesher.mesh(labels)
    del labels
    meshes = triangles = 0
    for label in mesher.ids():
        mesh = mesher.get(label, reduction_factor=params.reduction_factor,
                          max_error=params.max_error_nm or max(VOXEL_SIZE))
        mesher.erase(label)
        (out / str(original[int(label)])).write_bytes(mesh.to_precomputed())
        meshes += 1
        triangles += len(mesh.faces)
    mesher.clear()
    return {"meshes": meshes, "triangles": triangles}


TASKS = {"prepare": _prepare, "ours": _ours, "peer": _peer}


def measure(context, task: str, spec: dict) -> dict:  # noqa: ANN001
    return run_measured(context, task_child, TASKS, task, spec)


# ---------------------------------------------------------------- parent side

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="volume edge lengths, voxels")
    parser.add_argument("--block", type=int, nargs=3, default=None, help="our block shape, voxels zyx (default: configs/mesh.yaml's)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temp folder, removed)")
    parser.add_argument("--quick", action="store_true", help="smoke run: sizes 32 and 64, blocks 16 32 32")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.block = [32, 64], [16, 32, 32]
    sizes = sorted(args.sizes)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="axonseg_bench_mesh_"))
    workdir.mkdir(parents=True, exist_ok=True)
    flags = isa_flags()
    print(f"sizes {sizes}; block {args.block or 'default'}; {os.cpu_count()} cores; ISA {' '.join(flags) or '?'}; "
          f"load average {os.getloadavg()[0]:.1f}; workdir {workdir}", flush=True)
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    started = time.perf_counter()
    prepared = measure(context, "prepare", {"sizes": sizes, "workdir": str(workdir)})
    print(f"segmentation: synth neurites at {sizes[0]}^3, mirror-tiled; segments {prepared['details']['segments']} "
          f"({prepared['seconds']:.0f} s)", flush=True)
    rows: dict[int, dict[str, dict]] = {}
    for size in sizes:
        spec = {"run_dir": str(workdir / f"run_{size}"), "block": args.block}
        rows[size] = {}
        for side in ("ours", "peer"):
            row = measure(context, side, spec)
            rows[size][side] = row
            print(f"  {size}^3 {side:<5} {row['seconds']:8.1f} s  peak {row['peak_rss_mb']:7.0f} MB  "
                  f"{row['details']['meshes']} meshes", flush=True)

    print(f"\n{'size':>6} {'side':<5} {'seconds':>9} {'Mvoxels/s':>10} {'meshes/s':>9} {'triangles':>10} {'peak RSS MB':>12}")
    for size, sides in rows.items():
        for side, row in sides.items():
            d = row["details"]
            print(f"{size:>5}^3 {side:<5} {row['seconds']:9.1f} {size**3 / row['seconds'] / 1e6:10.3f} "
                  f"{d['meshes'] / row['seconds']:9.1f} {d['triangles']:10d} {row['peak_rss_mb']:12.0f}")
    small, large = rows[sizes[0]], rows[sizes[-1]]
    ratio = large["peer"]["seconds"] / large["ours"]["seconds"]
    rss_ratio = large["ours"]["peak_rss_mb"] / small["ours"]["peak_rss_mb"]
    peer_rss_ratio = large["peer"]["peak_rss_mb"] / small["peer"]["peak_rss_mb"]
    print(f"\nratio (zmesh whole-volume seconds / ours) at {sizes[-1]}^3: {ratio:.2f}  (above 1: we are faster)")
    print(f"peak RSS {sizes[-1]}^3 / {sizes[0]}^3: ours {rss_ratio:.2f} (issue asks <= 1.3), "
          f"zmesh whole volume {peer_rss_ratio:.2f}")
    print(f"our meshes not watertight: {large['ours']['details']['not_watertight']} of {large['ours']['details']['meshes']}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {
        "benchmark": "mesh", "sizes": sizes, "block": large["ours"]["details"]["block"],
        "ratio": ratio, "ratio_peer": "zmesh on the whole volume (same reduction factor and max error), precomputed bytes written",
        "rss_ratio_512_vs_256": rss_ratio, "rss_ratio_sizes": [sizes[-1], sizes[0]], "peer_rss_ratio": peer_rss_ratio,
        "isa": flags, "cores": os.cpu_count(),
        "sides": {str(size): {side: {"seconds": row["seconds"], "voxels_per_s": size**3 / row["seconds"],
                                     "meshes_per_s": row["details"]["meshes"] / row["seconds"],
                                     "peak_rss_mb": row["peak_rss_mb"], "cpu_seconds": row["cpu_seconds"],
                                     **row["details"]}
                              for side, row in sides.items()} for size, sides in rows.items()},
        "total_seconds": time.perf_counter() - started,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
