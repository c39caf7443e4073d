"""Benchmark the connectome export: map 1,000,000 synapse points on a 256^3 segmentation (zarr,
64^3 chunks) and export SONATA, end to end through ``run_export`` (table read, chunk-grouped
point lookup, drops, pairs, SONATA write; delays off: the volume has no skeletons).

Peer: a plain Python loop that looks each point up in the in-memory numpy array
(``seg[z, y, x]`` per point, pre and post), measured in the same run on a subsample of
``--loop-sample`` synapses and scaled to synapses/s. ``ratio`` = our end-to-end synapses/s over
the loop's synapses/s (the loop does only the lookup, so the ratio is conservative).
Last line printed: one JSON object.

Run: .venv/bin/python benchmarks/connectome.py [--size 256] [--synapses 1000000] [--loop-sample 50000]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from axonseg.io import create_multiscale, mark_complete, open_level, open_volume, write_block
from axonseg.pipelines.export._lookup import make_source, segment_ids_at
from axonseg.pipelines.export import ExportConfig, run_export

VOXEL_SIZE = (8.0, 8.0, 8.0)


def segmentation(size: int) -> np.ndarray:
    """Cubes of 16 voxels with distinct ids (4,096 segments at 256^3), a 0-valued plane every 64."""
    z, y, x = np.ogrid[:size, :size, :size]
    cells = size // 16
    labels = ((z // 16) * cells * cells + (y // 16) * cells + x // 16 + 1).astype(np.uint64)
    labels[::64] = 0
    return labels


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--synapses", type=int, default=1_000_000)
    parser.add_argument("--loop-sample", type=int, default=50_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="axonseg_bench_connectome_"))
    try:
        labels = segmentation(args.size)
        store = folder / "run" / "volume.zarr"
        create_multiscale(store, "segmentation", labels.shape, labels.dtype, VOXEL_SIZE, chunk_shape=(64, 64, 64))
        write_block(open_level(store, "segmentation"), labels, (0, 0, 0))
        mark_complete(store, "segmentation")
        extent = args.size * np.asarray(VOXEL_SIZE)
        pre = rng.uniform(0, extent, (args.synapses, 3))
        post = np.clip(pre + rng.normal(0, 200.0, (args.synapses, 3)), 0, extent - 1e-6)  # partners ~200 nm away
        table = pd.DataFrame({"pre_z_nm": pre[:, 0], "pre_y_nm": pre[:, 1], "pre_x_nm": pre[:, 2],
                              "post_z_nm": post[:, 0], "post_y_nm": post[:, 1], "post_x_nm": post[:, 2]})
        table_path = folder / "synapses.parquet"
        table.to_parquet(table_path)

        # ours, lookup only (zarr chunks read on demand)
        source = make_source(open_volume(store / "segmentation"), None, "bench")
        clock = time.perf_counter()
        ids, _ = segment_ids_at(source, np.concatenate([pre, post]))
        lookup_s = time.perf_counter() - clock
        # ours, end to end to SONATA
        clock = time.perf_counter()
        result = run_export(folder / "run", "sonata", table_path, config=ExportConfig(delays=False))
        export_s = time.perf_counter() - clock

        # peer: a plain loop over points on the in-memory array
        n_loop = min(args.loop_sample, args.synapses)
        pre_vox = np.floor(pre[:n_loop] / VOXEL_SIZE).astype(np.int64)
        post_vox = np.floor(post[:n_loop] / VOXEL_SIZE).astype(np.int64)
        clock = time.perf_counter()
        loop_pre = [labels[z, y, x] for z, y, x in pre_vox.tolist()]
        loop_post = [labels[z, y, x] for z, y, x in post_vox.tolist()]
        loop_s = time.perf_counter() - clock
        assert np.array_equal(np.asarray(loop_pre, np.uint64), ids[:n_loop]), "lookup differs from the loop"
        assert np.array_equal(np.asarray(loop_post, np.uint64), ids[args.synapses:args.synapses + n_loop])

        ours = args.synapses / export_s
        loop = n_loop / loop_s
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"volume {args.size}^3 uint64 in 64^3 zarr chunks, {args.synapses:,} synapses (2 points each)")
        print(f"lookup only      : {lookup_s:7.2f} s  {args.synapses / lookup_s:12,.0f} synapses/s")
        print(f"export to SONATA : {export_s:7.2f} s  {ours:12,.0f} synapses/s "
              f"({result.n_synapses:,} kept, {result.n_pairs:,} pairs, {result.n_nodes:,} nodes)")
        print(f"plain numpy loop : {loop_s:7.2f} s  {loop:12,.0f} synapses/s (measured on {n_loop:,}, scaled)")
        print(f"peak RSS         : {peak_mb:.0f} MB")
        print(json.dumps({"synapses": args.synapses, "size": args.size, "lookup_s": round(lookup_s, 3),
                          "export_s": round(export_s, 3), "synapses_per_s": round(ours),
                          "lookup_synapses_per_s": round(args.synapses / lookup_s), "loop_synapses_per_s": round(loop),
                          "loop_sample": n_loop, "kept": result.n_synapses, "drops": result.drops["dropped"],
                          "peak_rss_mb": round(peak_mb), "ratio": round(ours / loop, 2)}))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
