"""Physical geometry of the synthetic scene: diameters in nm and voxel-size invariance."""

from __future__ import annotations

import cc3d
import edt
import numpy as np
import pytest

from axonseg.synth import generate_synth


def _max_diameters_nm(labels: np.ndarray, voxel_size: tuple[float, float, float]) -> dict[int, float]:
    """Twice the largest inscribed-ball radius (nm) of every object; the volume faces count as walls."""
    distance = edt.edt(labels, anisotropy=voxel_size, black_border=True)
    ids = labels.ravel()
    maxima = np.zeros(int(ids.max()) + 1)
    np.maximum.at(maxima, ids, distance.ravel())
    return {int(i): 2.0 * float(maxima[i]) for i in np.unique(ids) if i != 0}


@pytest.mark.parametrize("voxel_size,shape", [((30.0, 8.0, 8.0), (24, 128, 128)), ((10.0, 10.0, 10.0), (64, 96, 96))])
def test_axon_and_dendrite_diameters_in_range(voxel_size, shape) -> None:
    vol = generate_synth(shape=shape, voxel_size=voxel_size, seed=11)
    diameters = _max_diameters_nm(vol.neurites, voxel_size)
    axons = np.array([d for i, d in diameters.items() if vol.kinds[i] == "axon"])
    dendrites = np.array([d for i, d in diameters.items() if vol.kinds[i] == "dendrite"])
    # A voxel-centred edt overestimates by up to one voxel diagonal; allow that much.
    slack = float(np.linalg.norm(voxel_size))
    assert axons.max() <= 300.0 + slack
    assert 100.0 <= np.median(axons) <= 300.0
    assert len(dendrites) >= 1 and dendrites.max() <= 1500.0 + slack
    assert np.median(dendrites) > np.median(axons) * 1.5


@pytest.mark.parametrize("dendrite_fraction", [0.3, 0.0])
def test_same_seed_gives_the_same_scene_at_another_voxel_size(dendrite_fraction: float) -> None:
    # Both volumes span 480 x 512 x 512 nm.
    fine = generate_synth(shape=(16, 64, 64), voxel_size=(30.0, 8.0, 8.0), seed=5, dendrite_fraction=dendrite_fraction)
    iso = generate_synth(shape=(30, 32, 32), voxel_size=(16.0, 16.0, 16.0), seed=5, dendrite_fraction=dendrite_fraction)
    assert fine.raw.shape != iso.raw.shape
    common = set(fine.kinds) & set(iso.kinds)
    assert len(common) >= 0.8 * max(len(fine.kinds), len(iso.kinds))
    assert all(fine.kinds[i] == iso.kinds[i] for i in common)
    # Compare the labels at the centres of the 16 nm voxels, in nm.
    centres = [(np.arange(n) + 0.5) * v for n, v in zip(iso.neurites.shape, (16.0, 16.0, 16.0))]
    zz, yy, xx = np.meshgrid(*centres, indexing="ij")
    fine_index = tuple(np.floor(c / v).astype(int) for c, v in zip((zz, yy, xx), (30.0, 8.0, 8.0)))
    a, b = fine.neurites[fine_index], iso.neurites
    either = (a > 0) | (b > 0)
    agreement = float(np.mean(a[either] == b[either]))
    assert agreement > 0.75
    if dendrite_fraction == 0.0:
        # Without a dendrite that fills much of this small volume, another seed agrees by chance only.
        assert all(kind == "axon" for kind in fine.kinds.values())
        other = generate_synth(shape=(30, 32, 32), voxel_size=(16.0, 16.0, 16.0), seed=6, dendrite_fraction=0.0)
        either = (a > 0) | (other.neurites > 0)
        assert float(np.mean(a[either] == other.neurites[either])) < 0.2


def test_isotropic_volume_is_valid() -> None:
    vol = generate_synth(shape=(48, 64, 64), voxel_size=(10.0, 10.0, 10.0), seed=2)
    components = cc3d.connected_components(vol.neurites, connectivity=6)
    assert int(components.max()) == len(vol.kinds)
    inside = vol.labels > 0
    assert np.array_equal(vol.labels[inside], vol.neurites[inside])
    assert 0.15 < float(np.mean(inside)) < 0.85
    # Skeleton nodes are spaced about one (10 nm) voxel apart.
    nodes, edges = next(iter(vol.skeletons.values()))
    steps = np.linalg.norm(nodes[edges[:, 0]] - nodes[edges[:, 1]], axis=1)
    assert 5.0 < np.median(steps) < 12.0


def test_axons_run_through_the_volume() -> None:
    vol = generate_synth(shape=(24, 128, 128), voxel_size=(30.0, 8.0, 8.0), seed=8)
    extent = np.asarray(vol.raw.shape) * np.asarray(vol.voxel_size)
    # Most axons reach the volume's faces at two ends (within two voxels of a face).
    touching = 0
    for nodes, _ in vol.skeletons.values():
        near = (nodes < 2 * np.asarray(vol.voxel_size)) | (nodes > extent - 2 * np.asarray(vol.voxel_size))
        ends = np.flatnonzero(near.any(axis=1))
        if len(ends) and np.linalg.norm(nodes[ends].max(axis=0) - nodes[ends].min(axis=0)) > 300.0:
            touching += 1
    assert touching >= 0.6 * len(vol.skeletons)
    # The paths curve: the straight end-to-end distance is shorter than the path.
    curved = 0
    for nodes, edges in vol.skeletons.values():
        length = float(np.linalg.norm(nodes[edges[:, 0]] - nodes[edges[:, 1]], axis=1).sum())
        span = float(np.linalg.norm(nodes.max(axis=0) - nodes.min(axis=0)))
        curved += length > 1.02 * span
    assert curved >= 0.3 * len(vol.skeletons)
