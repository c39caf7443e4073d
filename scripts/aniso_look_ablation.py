"""Which setting of a held-out look makes an anisotropic model miss the membranes (issue #15)?

Generates the look (``TEST_LOOKS_V3`` of scripts/aniso_training_set.py, default test_03) with the
same seed, then again with one group of its settings moved back inside the v3 training ranges,
predicts each with the model (float32, one block) and prints, per variant, how many true y/x
boundary faces the network calls boundary (affinity < 0.5: recall) and how many faces inside a
neurite it cuts (false boundary). The variants are generated here, at 32x192x192 voxels; the
held-out volumes themselves are only read by scripts/aniso_eval.py. Nothing is chosen on them:
this names the cause of a failure, it does not tune anything.

    python scripts/aniso_look_ablation.py --model data/models/aniso_v3/model.pt

With ``--volumes`` it scores volumes of a set instead (``--data``, e.g. runs/aniso_v3), once
with the model's stored BatchNorm statistics and once with statistics recomputed over 16 crops
of each volume (what predict does by default, ``batchnorm: volume``):

    python scripts/aniso_look_ablation.py --model data/models/aniso_v3/model.pt --volumes val_00 test_03
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from aniso_training_set import TEST_LOOKS, TEST_LOOKS_V3

#: variant name -> the settings it changes (None: the look as held out; "voxel": 30x8x8 nm).
VARIANTS: dict[str, dict | str | None] = {
    "as held out": None,
    "noise 30": {"noise": 30.0},
    "noise 15": {"noise": 15.0},
    "blur 6 nm": {"blur_nm": 6.0},
    "texture 1.5": {"texture": 1.5},
    "membrane 20 nm, depth 0.8": {"membrane_nm": 20.0, "membrane_depth": 0.8},
    "gap, fill 0.85": {"gap": True, "fill_fraction": 0.85},
    "morphology in range": {"mitochondria_per_um": 0.8, "branch_probability": 0.4, "dendrite_fraction": 0.3},
    "voxel 30x8x8 nm": "voxel",
}


def face_scores(affinities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(recall of true y/x boundary faces, fraction of same-neurite faces called boundary).

    Args:
        affinities: ``(3+, z, y, x)`` float affinities in [0, 1]; channels 1 and 2 are the
            direct y and x neighbours (offsets (0, -1, 0) and (0, 0, -1)).
        labels: ``(z, y, x)`` neurite ids, 0 = extracellular space.
    """
    hits, boundary, cuts, inside = 0, 0, 0, 0
    for channel, axis in ((1, 1), (2, 2)):
        here = [slice(None)] * 3
        here[axis] = slice(1, None)
        before = [slice(None)] * 3
        before[axis] = slice(None, -1)
        a, b = labels[tuple(here)], labels[tuple(before)]
        cut = affinities[channel][tuple(here)] < 0.5
        differs = a != b
        same = ~differs & (a != 0)
        hits += int((cut & differs).sum())
        boundary += int(differs.sum())
        cuts += int((cut & same).sum())
        inside += int(same.sum())
    return hits / max(boundary, 1), cuts / max(inside, 1)


def compare_statistics(model_path: Path, data: Path, names: list[str], n_crops: int = 16) -> None:
    """Face scores of each volume with the model's BatchNorm statistics and with the volume's."""
    from axonseg.io import open_volume
    from axonseg.model.adapt import adapt_to_volume
    from axonseg.model.checkpoint import load_model
    from axonseg.model.predict import Predictor, normalize_raw, predict_volume

    model = load_model(model_path)
    rows = {}
    for name in names:
        raw = normalize_raw(np.asarray(open_volume(f"{data}/{name}.zarr/raw").data.compute()))
        labels = np.asarray(open_volume(f"{data}/{name}.zarr/neurites").data.compute())
        adapted, _ = adapt_to_volume(model, raw, n_crops)
        rows[name] = {}
        for kind, network in (("model", model.eval()), ("volume", adapted)):
            affinities = predict_volume(raw, Predictor(network, device="cpu", precision="float32"), raw.shape)
            recall, cut = face_scores(affinities[:3].astype(np.float32) / 255.0, labels)
            rows[name][kind] = {"boundary_recall": round(recall, 3), "false_boundary": round(cut, 3)}
        print(f"{name:8s} " + " | ".join(f"{kind} statistics: recall {row['boundary_recall']:.3f} false "
                                         f"{row['false_boundary']:.3f}" for kind, row in rows[name].items()), flush=True)
    print(json.dumps({"model": str(model_path), "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--look", default="test_03", help="a name in TEST_LOOKS or TEST_LOOKS_V3")
    parser.add_argument("--seed", type=int, default=9003, help="the look's seed (test_03: 9003)")
    parser.add_argument("--shape", type=int, nargs=3, default=[32, 192, 192], help="voxels, z y x")
    parser.add_argument("--data", type=Path, default=Path("runs/aniso_v3"), help="the set --volumes come from")
    parser.add_argument("--volumes", nargs="*", help="score these volumes of --data with both statistics instead")
    args = parser.parse_args()
    if args.volumes:
        compare_statistics(args.model, args.data, args.volumes)
        return

    from axonseg.model.checkpoint import load_model
    from axonseg.model.predict import Predictor, normalize_raw, predict_volume
    from axonseg.synth.generate import generate_synth

    looks = {**TEST_LOOKS, **TEST_LOOKS_V3}
    if args.look not in looks:
        raise SystemExit(f"--look {args.look!r}: expected one of {sorted(looks)}")
    look = looks[args.look]
    predictor = Predictor(load_model(args.model), device="cpu", precision="float32")
    rows = {}
    for name, change in VARIANTS.items():
        options, voxel_size = dict(look["options"]), look["voxel_size"]
        if change == "voxel":
            voxel_size = [30.0, 8.0, 8.0]
        elif change:
            options.update(change)
        volume = generate_synth(tuple(args.shape), voxel_size, args.seed, **options)
        affinities = predict_volume(normalize_raw(volume.raw), predictor, tuple(args.shape))
        recall, cut = face_scores(affinities[:3].astype(np.float32) / 255.0, volume.neurites)
        rows[name] = {"raw_std": round(float(volume.raw.std()), 1), "boundary_recall": round(recall, 3),
                      "false_boundary": round(cut, 3)}
        print(f"{name:28s} raw std {rows[name]['raw_std']:5.1f}  boundary recall {recall:.3f}  "
              f"false boundary {cut:.3f}", flush=True)
    print(json.dumps({"model": str(args.model), "look": args.look, "rows": rows}))


if __name__ == "__main__":
    main()
