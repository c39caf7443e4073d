"""Render a PNG preview of a synthetic volume: raw section, axon labels overlay and a zoom.

Usage:
    python scripts/synth_preview.py [--out docs/images/synth_preview.png] [--seed 0]
        [--shape 64 256 256] [--voxel-size 30 8 8] [--z 32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from axonseg.synth import generate_synth  # noqa: E402


def _colours(max_id: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lut = rng.uniform(0.15, 1.0, size=(max_id + 1, 3))
    lut[0] = 0.0
    return lut


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/synth_preview.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 256, 256))
    parser.add_argument("--voxel-size", type=float, nargs=3, default=(30.0, 8.0, 8.0))
    parser.add_argument("--z", type=int, default=None, help="section to show (default: middle)")
    args = parser.parse_args()

    start = time.perf_counter()
    vol = generate_synth(shape=tuple(args.shape), voxel_size=tuple(args.voxel_size), seed=args.seed)
    seconds = time.perf_counter() - start
    z = args.z if args.z is not None else args.shape[0] // 2
    vz, vy, vx = vol.voxel_size

    lut = _colours(int(vol.neurites.max()))
    raw = vol.raw[z]
    axons = vol.labels[z]
    overlay = np.repeat(raw[..., None] / 255.0, 3, axis=2)
    mask = axons > 0
    overlay[mask] = 0.45 * overlay[mask] + 0.55 * lut[axons[mask]]

    fig, panels = plt.subplots(1, 3, figsize=(18, 6.4))
    panels[0].imshow(raw, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    panels[0].set_title(f"raw, section z={z} ({vz:g} x {vy:g} x {vx:g} nm)")
    panels[1].imshow(overlay, interpolation="nearest")
    # Skeleton nodes and synapses within half a section of this one.
    for nodes, _ in vol.skeletons.values():
        near = np.abs(nodes[:, 0] - (z + 0.5) * vz) <= 0.5 * vz
        panels[1].plot(nodes[near, 2] / vx - 0.5, nodes[near, 1] / vy - 0.5, ".", ms=1.5, color="white")
    if vol.synapses is not None and len(vol.synapses):
        near = np.abs(vol.synapses.pre_nm[:, 0] - (z + 0.5) * vz) <= 2 * vz
        panels[1].plot(vol.synapses.pre_nm[near, 2] / vx, vol.synapses.pre_nm[near, 1] / vy, "r^", ms=6)
        panels[1].plot(vol.synapses.post_nm[near, 2] / vx, vol.synapses.post_nm[near, 1] / vy, "cv", ms=6)
    n_dendrites = sum(kind == "dendrite" for kind in vol.kinds.values())
    panels[1].set_title(f"axon labels ({len(vol.skeletons)} axons, {n_dendrites} dendrites), skeleton nodes")
    h, w = raw.shape
    zoom = raw[h // 4: h // 4 + h // 2, w // 4: w // 4 + w // 2]
    panels[2].imshow(zoom, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    panels[2].set_title("raw, 2x zoom of the centre")
    for panel in panels:
        panel.set_xticks([])
        panel.set_yticks([])
    defects = f"misaligned z={sorted(vol.defects.misaligned)}, missing z={vol.defects.missing}"
    fig.suptitle(f"axonseg synth: shape {tuple(args.shape)}, seed {args.seed}, {seconds:.1f} s; {defects}")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({seconds:.1f} s to generate)")


if __name__ == "__main__":
    main()
