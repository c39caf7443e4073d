"""Augmentations keep raw and labels aligned, are deterministic, and respect anisotropy."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.model import augment as aug

LUT = np.random.default_rng(5).random(10_000).astype(np.float32)


def raw_of(labels: np.ndarray) -> np.ndarray:
    """Raw as a function of labels, so alignment can be checked voxel by voxel."""
    return LUT[labels % len(LUT)]


@pytest.fixture
def pair(make_blob_labels):
    labels = make_blob_labels((12, 16, 16), seed=3, sigma=2.0)
    return raw_of(labels), labels


def test_flip_transpose_keeps_alignment(pair):
    raw, labels = pair
    seen = set()
    for seed in range(12):
        r, lab = aug.flip_transpose(raw, labels, np.random.default_rng(seed), (10, 10, 10))
        np.testing.assert_array_equal(r, raw_of(lab))
        seen.add(r.shape)
        assert np.array_equal(np.sort(lab.ravel()), np.sort(labels.ravel()))
    assert seen == {(12, 16, 16)}  # z (length 12) is never swapped with y/x (length 16)


def test_isotropic_cube_transposes_all_axes_anisotropic_only_yx():
    labels = np.arange(4 * 4 * 4, dtype=np.uint32).reshape(4, 4, 4)
    z_moved = False
    for seed in range(30):
        _, lab = aug.flip_transpose(labels.astype(np.float32), labels, np.random.default_rng(seed), (10, 10, 10))
        # z planes are {16k .. 16k+15}; a transposed z axis mixes them
        z_moved |= len(np.unique(lab[0] // 16)) > 1
        _, lab_a = aug.flip_transpose(labels.astype(np.float32), labels, np.random.default_rng(seed), (30, 8, 8))
        assert len(np.unique(lab_a[0] // 16)) == 1  # sections stay sections
    assert z_moved


def test_elastic_keeps_alignment():
    z, y, x = np.indices((12, 18, 18))
    labels = ((z // 6) * 100 + (y // 6) * 10 + x // 6 + 1).astype(np.uint32)  # 6-voxel cubes
    raw = raw_of(labels)
    for seed in range(2):
        r, lab = aug.elastic(raw, labels, np.random.default_rng(seed), (10, 10, 10), spacing_nm=60, sigma_nm=15)
        assert (lab != labels).mean() > 0.1  # it did deform
        # linear raw interpolation equals f(nearest label) wherever a cell lies inside one cube
        assert np.isclose(r, raw_of(lab), atol=1e-6).mean() > 0.65
        error = np.abs(r - raw_of(lab)).mean()
        # labels off by a single voxel along any axis fit far worse
        for axis in range(3):
            for shift in (-1, 1):
                assert error < 0.5 * np.abs(r - raw_of(np.roll(lab, shift, axis=axis))).mean()


def test_elastic_anisotropic_moves_in_plane_only(pair):
    raw, labels = pair
    sections = np.broadcast_to(np.arange(12, dtype=np.uint32)[:, None, None] + 1, labels.shape).copy()
    _, lab = aug.elastic(raw, sections, np.random.default_rng(1), (30, 8, 8), spacing_nm=40, sigma_nm=30)
    np.testing.assert_array_equal(lab, sections)


def test_misalign_shifts_raw_and_labels_together(pair):
    raw, labels = pair
    r, lab = aug.misalign(raw, labels, np.random.default_rng(2), (3, 3))
    np.testing.assert_array_equal(r, raw_of(lab))
    assert not np.array_equal(lab, labels)


def test_intensity_and_section_defects_touch_raw_only(pair):
    raw, labels = pair
    rng = np.random.default_rng(0)
    assert aug.missing_sections(raw, rng, 1.0).max() == 0
    blurred = aug.blurred_sections(raw, np.random.default_rng(0), 1.0, 2.0)
    assert blurred.std() < raw.std()
    out = aug.intensity(raw, rng, (2.0, 2.0), (0.0, 0.0))
    np.testing.assert_allclose(out, np.clip(raw * 2, 0, 1))
    out = aug.gamma(raw, rng, (2.0, 2.0))
    np.testing.assert_allclose(out, raw**2, rtol=1e-5)
    noisy = aug.noise(raw, rng, 0.1)
    assert 0.03 < float(np.std(noisy - raw)) < 0.1


def test_augment_is_deterministic_and_aligned(pair):
    raw, labels = pair
    cfg = aug.AugmentConfig(elastic_p=0.0, intensity_p=0.0, gamma_p=0.0, noise_p=0.0, missing_section_p=0.0, blurred_section_p=0.0, misalign_p=1.0)
    a = aug.augment(raw, labels, np.random.default_rng(7), (10, 10, 10), cfg)
    b = aug.augment(raw, labels, np.random.default_rng(7), (10, 10, 10), cfg)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], raw_of(a[1]))  # geometric-only config keeps raw = f(labels)
    full = aug.augment(raw, labels, np.random.default_rng(7), (10, 10, 10))
    assert full[0].dtype == np.float32 and full[0].shape == raw.shape
    assert 0.0 <= full[0].min() and full[0].max() <= 1.0


def test_whole_crop_blur_and_drawn_noise_strength(pair):
    """blur_p smooths the crop (in-plane only for anisotropic z: each section keeps its own
    content), noise_sigma_range draws the strength per crop, and both leave labels alone."""
    _, labels = pair
    raw = np.random.default_rng(0).random(labels.shape).astype(np.float32)  # rough, so blur shows
    off = dict(elastic_p=0.0, intensity_p=0.0, gamma_p=0.0, missing_section_p=0.0, blurred_section_p=0.0,
               misalign_p=0.0, flip_transpose=False)

    def roughness(x: np.ndarray, axis: int) -> float:
        return float(np.abs(np.diff(x, axis=axis)).mean())

    blurred, lab = aug.augment(raw, labels, np.random.default_rng(1), (30, 8, 8),
                               aug.AugmentConfig(**off, noise_p=0.0, blur_p=1.0, blur_sigma_range=(1.5, 2.0)))
    np.testing.assert_array_equal(lab, labels)
    assert roughness(blurred, 2) < 0.6 * roughness(raw, 2) and roughness(blurred, 1) < 0.6 * roughness(raw, 1)
    # anisotropic: no mixing across sections, so a section's mean stays its own
    np.testing.assert_allclose(blurred.mean(axis=(1, 2)), raw.mean(axis=(1, 2)), atol=0.02)
    iso, _ = aug.augment(raw, labels, np.random.default_rng(1), (10, 10, 10),
                         aug.AugmentConfig(**off, noise_p=0.0, blur_p=1.0, blur_sigma_range=(1.5, 2.0)))
    assert roughness(iso, 0) < 0.6 * roughness(raw, 0)

    flat = np.full_like(raw, 0.5)
    strengths = [float(np.std(aug.augment(flat, labels, np.random.default_rng(seed), (30, 8, 8),
                                          aug.AugmentConfig(**off, noise_p=1.0, noise_sigma_range=(0.02, 0.2)))[0] - 0.5))
                 for seed in range(20)]
    assert 0.015 < min(strengths) < 0.06 and 0.14 < max(strengths) < 0.21  # drawn per crop across the range
    # off by default, and then no extra random draw: a run resumed with the defaults stays bit-exact
    default = aug.AugmentConfig()
    assert default.blur_p == 0.0 and default.noise_sigma_range is None
    with pytest.raises(ValueError, match="noise_sigma_range is \\[0.3, 0.1\\]"):
        aug.AugmentConfig(noise_sigma_range=(0.3, 0.1))
