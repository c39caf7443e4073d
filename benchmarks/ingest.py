"""Benchmark: ingest a lazily generated 1024^3 uint8 volume; MB/s and peak RSS.

Peer: ``dask.array.to_zarr`` with the same chunks and codec (the usual one-liner), measured
in the same run. Each method runs in its own subprocess so that its peak RSS is its own.
``ratio`` = our s0 write speed / the peer's (above 1: we are faster). The full ingest with
the OME-Zarr pyramid (s1..s4) is reported beside it.

    python benchmarks/ingest.py [--size 1024] [--chunk 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def lazy_volume(size: int, chunk: int):  # noqa: ANN201
    """A size^3 uint8 dask array made block by block on demand (never whole in memory)."""
    import dask.array as da

    def make(block_info=None):  # noqa: ANN001, ANN202
        info = block_info[None]
        (z0, z1), (y0, y1), (x0, x1) = info["array-location"]
        rng = np.random.default_rng(z0 * 1_000_003 + y0 * 1009 + x0)
        z, y, x = np.ogrid[z0:z1, y0:y1, x0:x1]
        pattern = (((z // 16 + y // 16 + x // 16) % 2) * 96 + 64).astype(np.uint8)  # compressible structure
        return pattern + rng.integers(0, 32, (z1 - z0, y1 - y0, x1 - x0), dtype=np.uint8)

    return da.map_blocks(make, dtype=np.uint8, chunks=((chunk * 2,) * (size // (chunk * 2)),) * 3)


def worker(method: str, size: int, chunk: int, out: Path) -> dict:
    import dask

    volume = lazy_volume(size, chunk)
    start = time.perf_counter()
    if method == "peer":
        import zarr

        array = zarr.create_array(str(out), shape=volume.shape, chunks=(chunk,) * 3, dtype=np.uint8)
        with dask.config.set(scheduler="threads"):
            volume.to_zarr(array)
    else:
        import logging

        logging.disable(logging.WARNING)
        from axonseg.config import IngestConfig
        from axonseg.io import Volume
        from axonseg.pipelines.ingest import ingest_volume

        levels = 0 if method == "ours-s0" else 4
        config = IngestConfig(voxel_size=(10, 10, 10), chunk_shape=(chunk,) * 3, levels=levels)
        ingest_volume(Volume(volume, (10.0, 10.0, 10.0)), out, "raw", config, show_progress=False)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": peak_mb, "mb_per_s": size**3 / 1e6 / seconds}


def run_in_subprocess(method: str, size: int, chunk: int, tmp: Path) -> dict:
    out = tmp / f"{method}.zarr"
    result = subprocess.run(
        [sys.executable, __file__, "--worker", method, "--size", str(size), "--chunk", str(chunk), "--out", str(out)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="edge of the cube in voxels")
    parser.add_argument("--chunk", type=int, default=64, help="chunk edge in voxels")
    parser.add_argument("--worker", choices=["ours", "ours-s0", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.size, args.chunk, args.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        figures = {m: run_in_subprocess(m, args.size, args.chunk, Path(tmp)) for m in ("peer", "ours-s0", "ours")}
    voxels = args.size**3
    print(f"lazy ingest of {args.size}^3 uint8 ({voxels / 1e9:.2f} Gvoxel), chunks {args.chunk}^3, 2 threads")
    print(f"{'method':<28}{'seconds':>10}{'MB/s':>10}{'Mvox/s':>10}{'peak RSS MB':>14}")
    names = {"peer": "dask.array.to_zarr (peer)", "ours-s0": "axonseg ingest, s0 only", "ours": "axonseg ingest + pyramid"}
    for method, row in figures.items():
        print(f"{names[method]:<28}{row['seconds']:>10.1f}{row['mb_per_s']:>10.1f}{voxels / 1e6 / row['seconds']:>10.1f}{row['peak_rss_mb']:>14.0f}")
    ratio = figures["peer"]["seconds"] / figures["ours-s0"]["seconds"]
    print(json.dumps({
        "benchmark": "ingest", "size": args.size, "voxels": voxels, "peer": "dask.array.to_zarr",
        "ours_mb_per_s": round(figures["ours-s0"]["mb_per_s"], 1),
        "ours_pyramid_mb_per_s": round(figures["ours"]["mb_per_s"], 1),
        "peer_mb_per_s": round(figures["peer"]["mb_per_s"], 1),
        "ours_peak_rss_mb": round(max(figures["ours"]["peak_rss_mb"], figures["ours-s0"]["peak_rss_mb"]), 1),
        "peer_peak_rss_mb": round(figures["peer"]["peak_rss_mb"], 1),
        "ratio": round(ratio, 3),
    }))


if __name__ == "__main__":
    main()
