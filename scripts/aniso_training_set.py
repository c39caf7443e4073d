"""Make the randomised-appearance training set of the anisotropic model (issue #15).

Every volume comes from `axonseg synth` with its own seed and its own look, drawn from wide
ranges: voxel size 30-40 nm in z and 6-10 nm in y/x, membrane width and darkness, cytoplasm
texture, blur, noise, section brightness, misaligned and missing sections, axon calibre. The
training config (configs/train_aniso.yaml) presents every volume to the network as 30x8x8 nm,
so the voxel-size draw is a scale augmentation. Training-time augmentation adds contrast, gamma,
noise and section defects on top.

Three sets, disjoint seeds:
- ``train_XX``: seeds 2000+, settings drawn from TRAIN_RANGES;
- ``val_XX``: seeds 3000+, drawn from the same ranges (checkpoints and the threshold are chosen here);
- ``test_XX``: seeds 9000+, fixed looks *outside* the training ranges (TEST_LOOKS), never used to
  choose anything: the figure the card reports for unseen generator settings.

Usage: python scripts/aniso_training_set.py [--out runs/aniso] [--n-train 8] [--n-val 2]
Writes <out>/<name>.zarr and <out>/settings.json (the options of every volume).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

#: (low, high) of each uniformly drawn setting; lengths in nm.
TRAIN_RANGES: dict[str, tuple[float, float]] = {
    "voxel_z": (30.0, 40.0),
    "voxel_yx": (6.0, 10.0),
    "membrane_nm": (8.0, 24.0),
    "membrane_depth": (0.45, 0.9),
    "texture": (0.3, 1.8),
    "blur_nm": (2.0, 10.0),
    "noise": (6.0, 35.0),
    "section_jitter": (0.02, 0.12),
    "misaligned_rate": (0.0, 0.06),
    "missing_rate": (0.0, 0.03),
    "axon_min_nm": (70.0, 130.0),
    "axon_max_nm": (220.0, 380.0),
}

#: Held-out looks, each outside the training ranges in several settings at once.
TEST_LOOKS: dict[str, dict] = {
    "test_00": {"voxel_size": [30.0, 8.0, 8.0], "options": {}},  # the generator's stock look
    "test_01": {"voxel_size": [42.0, 10.5, 10.5],  # coarse, thick dark membranes, heavy noise
                "options": {"membrane_nm": 28.0, "membrane_depth": 0.95, "noise": 42.0, "blur_nm": 3.0,
                            "texture": 2.2, "section_jitter": 0.15}},
    "test_02": {"voxel_size": [28.0, 5.5, 5.5],  # fine, faint thin membranes, blurry, flat cytoplasm
                "options": {"membrane_nm": 7.0, "membrane_depth": 0.4, "noise": 5.0, "blur_nm": 11.0,
                            "texture": 0.15, "misaligned_rate": 0.08}},
}


def draw_look(rng: np.random.Generator) -> dict:
    """One volume's voxel size (nm, zyx) and generator options, drawn from TRAIN_RANGES."""
    v = {key: float(rng.uniform(low, high)) for key, (low, high) in TRAIN_RANGES.items()}
    options = {key: round(v[key], 3) for key in ("membrane_nm", "membrane_depth", "texture", "blur_nm", "noise",
                                                "section_jitter", "misaligned_rate", "missing_rate")}
    options["axon_diameter_nm"] = (round(v["axon_min_nm"], 1), round(v["axon_max_nm"], 1))
    return {"voxel_size": [round(v["voxel_z"], 2), round(v["voxel_yx"], 2), round(v["voxel_yx"], 2)], "options": options}


def plan(n_train: int, n_val: int) -> dict[str, dict]:
    """Name -> {seed, voxel_size, options} of every volume of the set."""
    volumes = {}
    for prefix, base, n in (("train", 2000, n_train), ("val", 3000, n_val)):
        for i in range(n):
            look = draw_look(np.random.default_rng([base, i]))
            volumes[f"{prefix}_{i:02d}"] = {"seed": base + i, **look}
    for i, (name, look) in enumerate(TEST_LOOKS.items()):
        volumes[name] = {"seed": 9000 + i, **look}
    return volumes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/aniso", help="folder for the .zarr stores and settings.json")
    parser.add_argument("--n-train", type=int, default=8)
    parser.add_argument("--n-val", type=int, default=2)
    parser.add_argument("--shape", type=int, nargs=3, default=[48, 256, 256], help="voxels, z y x")
    args = parser.parse_args()

    from axonseg.pipelines.synth import write_synth

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    volumes = plan(args.n_train, args.n_val)
    (out / "settings.json").write_text(json.dumps({"shape": args.shape, "volumes": volumes}, indent=1))
    for name, spec in volumes.items():
        store = out / f"{name}.zarr"
        if store.exists():
            continue
        result = write_synth(store.with_suffix(".tmp.zarr"), tuple(args.shape), tuple(spec["voxel_size"]), spec["seed"],
                             overwrite=True, show_progress=False, options=spec["options"])
        result.store.rename(store)  # a store under its final name is complete
        print(f"{store}: voxel size {spec['voxel_size']} nm, {result.n_neurites} neurites", flush=True)


if __name__ == "__main__":
    main()
