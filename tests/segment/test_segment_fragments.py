"""Watershed fragments: ids, purity against ground truth, empty blocks, masks, options."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.segment import watershed_fragments

NN_OFFSETS = [(-1, 0, 0), (0, -1, 0), (0, 0, -1)]
LONG_OFFSETS = NN_OFFSETS + [(0, -3, 0), (0, 0, -3), (0, -9, 0), (0, 0, -9), (-2, 0, 0)]



def two_cubes(shape=(16, 24, 24)) -> np.ndarray:
    labels = np.ones(shape, dtype=np.int64)
    labels[:, :, shape[2] // 2:] = 2
    return labels


def purity(fragments: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of voxels whose fragment's majority label is their own label."""
    pairs, counts = np.unique(np.stack([fragments.ravel().astype(np.int64), labels.ravel()]), axis=1, return_counts=True)
    best = {}
    for (frag, lab), c in zip(pairs.T, counts):
        if c > best.get(frag, (0, 0))[0]:
            best[frag] = (c, lab)
    return sum(c for c, _ in best.values()) / labels.size


def test_ids_are_offset_uint64_and_consecutive(make_affinities):
    labels = two_cubes()
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.1)
    offset = 7 * 2**32
    fragments, n_ids = watershed_fragments(affinities, NN_OFFSETS, id_offset=offset)
    assert fragments.dtype == np.uint64
    ids = np.unique(fragments)
    assert n_ids == len(ids) >= 2
    np.testing.assert_array_equal(ids, offset + np.arange(1, n_ids + 1, dtype=np.uint64))


def test_fragments_do_not_cross_a_one_voxel_thin_boundary(make_affinities):
    # a 1-voxel thin sheet of object 3 between two cubes: faces, not voxels, separate them
    labels = two_cubes((12, 20, 21))
    labels[:, :, 10] = 3
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.05, seed=1)
    fragments, _ = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(40, 8, 8))
    assert purity(fragments, labels) == 1.0


def test_real_labels_fragments_are_pure(real_labels, make_affinities):
    affinities = make_affinities(real_labels, NN_OFFSETS, noise=0.2, seed=2)
    fragments, n_ids = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(10, 10, 10))
    assert purity(fragments, real_labels) > 0.995
    assert n_ids < real_labels.size / 50  # supervoxels, not voxels


def test_all_background_block_is_zero():
    affinities = np.zeros((3, 8, 16, 16), dtype=np.uint8)
    fragments, n_ids = watershed_fragments(affinities, NN_OFFSETS, id_offset=100)
    assert n_ids == 0 and fragments.dtype == np.uint64 and not fragments.any()


def test_mask_zeroes_outside_and_labels_inside(make_affinities):
    labels = two_cubes()
    affinities = make_affinities(labels, NN_OFFSETS)
    mask = np.zeros(labels.shape, dtype=bool)
    mask[2:10, 3:20, 3:20] = True
    fragments, _ = watershed_fragments(affinities, NN_OFFSETS, mask=mask)
    assert not fragments[~mask].any()
    assert fragments[mask].all()
    masked_out, n_ids = watershed_fragments(affinities, NN_OFFSETS, mask=np.zeros_like(mask))
    assert n_ids == 0 and not masked_out.any()


def test_per_section_fragments_stay_in_their_section(make_affinities):
    labels = two_cubes((6, 24, 24))
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.05)
    fragments, n_ids = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(40, 4, 4), per_section=True)
    per_section = [set(np.unique(fragments[z]).tolist()) for z in range(labels.shape[0])]
    for z in range(1, labels.shape[0]):
        assert not per_section[z] & per_section[z - 1]
    assert n_ids >= 2 * labels.shape[0]
    assert purity(fragments, labels) == 1.0


def test_min_size_merges_small_fragments():
    rng = np.random.default_rng(3)
    affinities = rng.uniform(0.3, 1.0, size=(3, 16, 32, 32)).astype(np.float32)
    small, n_small = watershed_fragments(affinities, NN_OFFSETS, seed_radius=1)
    merged, n_merged = watershed_fragments(affinities, NN_OFFSETS, seed_radius=1, min_size=40)
    sizes = np.bincount(merged.ravel().astype(np.int64))[1:]
    assert n_merged < n_small
    assert sizes.min() >= 40


def test_min_size_with_more_ids_than_int32_pair_keys_hold():
    """80,000 two-voxel fragments: the pair key a * n + b needs 6.4e9 > 2**31. With int32 ids it
    crashed (negative index) or merged wrong pairs; every result must be a connected fragment of
    at least min_size voxels, the same for int32 and int64 input."""
    import cc3d

    from axonseg.segment.fragments import _merge_small

    shape = (4, 200, 200)
    labels = (np.arange(np.prod(shape)) // 2 + 1).reshape(shape).astype(np.int32)
    affinities = np.random.default_rng(0).uniform(0.0, 1.0, size=(3, *shape)).astype(np.float32)
    merged = _merge_small(labels, affinities, np.arange(3), min_size=3)
    reference = _merge_small(labels.astype(np.int64), affinities, np.arange(3), min_size=3)
    np.testing.assert_array_equal(merged, reference)
    sizes = np.bincount(merged.ravel())
    assert sizes[1:][sizes[1:] > 0].min() >= 3
    n_ids = int((sizes[1:] > 0).sum())
    assert 1_000 < n_ids < 40_000
    # a wrong pair merges fragments that do not touch: each id must be one 6-connected piece
    pieces = cc3d.connected_components(merged, connectivity=6)
    assert int(pieces.max()) == n_ids


def test_long_range_offsets_are_accepted_and_uint8_works(make_affinities):
    labels = two_cubes()
    affinities = make_affinities(labels, LONG_OFFSETS)
    as_uint8 = (affinities * 255).astype(np.uint8)
    fragments_float, n_float = watershed_fragments(affinities, LONG_OFFSETS)
    fragments_uint8, n_uint8 = watershed_fragments(as_uint8, LONG_OFFSETS)
    assert n_float == n_uint8
    np.testing.assert_array_equal(fragments_float, fragments_uint8)


def test_bad_offsets_raise_input_error():
    affinities = np.zeros((3, 4, 4, 4), dtype=np.float32)
    with pytest.raises(InputError, match="affinities have 3 channels but 5 offsets were given"):
        watershed_fragments(affinities, LONG_OFFSETS[:5])
    with pytest.raises(InputError, match=r"lack the nearest-neighbour offset \[0, 0, -1\]"):
        watershed_fragments(affinities, [(-1, 0, 0), (0, -1, 0), (0, 0, 1)])
    with pytest.raises(InputError, match="mask has shape"):
        watershed_fragments(affinities, NN_OFFSETS, mask=np.ones((4, 4, 5), bool))
    with pytest.raises(InputError, match="dtype int32"):
        watershed_fragments(affinities.astype(np.int32), NN_OFFSETS)


def test_flood_joins_every_lonely_membrane_voxel_to_a_neighbour(make_affinities):
    # a membrane sheet whose every edge is weak: no seed, no confident edge. Without flooding
    # each of its voxels stays a fragment of one voxel (98% of the fragments on the real slab)
    labels = two_cubes((12, 20, 21))
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.0)
    affinities[:, :, :, 10] = 0.05  # every edge from a sheet voxel back to its neighbours
    affinities[2, :, :, 11] = 0.05  # and the x edge from the next voxel to the sheet
    plain, n_plain = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(10, 10, 10))
    flooded, n_flooded = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(10, 10, 10), flood=True)
    sizes = np.bincount(plain.ravel().astype(np.int64))[1:]
    assert (sizes == 1).sum() == 12 * 20 and n_plain == 2 + 12 * 20
    assert n_flooded == 2 and flooded.all()  # every sheet voxel joined one of the two cubes
    np.testing.assert_array_equal(np.unique(flooded[:, :, :10]).size + np.unique(flooded[:, :, 11:]).size, 2)
    assert np.unique(flooded[:, :, :10]) != np.unique(flooded[:, :, 11:])  # the cubes stay apart


def test_attach_threshold_joins_unsure_membrane_voxels_under_strict_seeds(make_affinities):
    """Seeds and confident joins at boundary 0.3, attachment up to 0.5: a sheet of voxels whose
    edges have affinity 0.6 (boundary 0.4) is no seed and no confident edge, so at 0.3 alone
    each of its voxels stays a fragment of one voxel; with attach_threshold 0.5 each joins a
    side, and the two cubes stay apart."""
    labels = two_cubes((12, 20, 21))
    affinities = make_affinities(labels, NN_OFFSETS, noise=0.0)
    affinities[:, :, :, 10] = 0.6
    affinities[2, :, :, 11] = 0.6
    strict, n_strict = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(10, 10, 10), boundary_threshold=0.3)
    assert n_strict == 2 + 12 * 20
    attached, n_attached = watershed_fragments(affinities, NN_OFFSETS, voxel_size=(10, 10, 10),
                                               boundary_threshold=0.3, attach_threshold=0.5)
    assert n_attached == 2 and attached.all()
    assert np.unique(attached[:, :, :10]).size == np.unique(attached[:, :, 11:]).size == 1
    assert np.unique(attached[:, :, :10]) != np.unique(attached[:, :, 11:])
    with pytest.raises(InputError, match="attach_threshold is 0.5: .*not with flood"):
        watershed_fragments(affinities, NN_OFFSETS, flood=True, attach_threshold=0.5)
    from axonseg.pipelines.segment.config import FragmentsConfig

    with pytest.raises(ValueError, match="attach_threshold and flood: true exclude each other"):
        FragmentsConfig(flood=True, attach_threshold=0.5)


def test_best_neighbours_matches_a_brute_force_mean_with_ties_to_the_smaller_id():
    """min_size's kernel: per small fragment, the neighbour with the highest mean face affinity
    over all faces they share (both orientations), ties to the smaller id, -1 when none."""
    from axonseg.segment._small_kernel import best_neighbours

    rng = np.random.default_rng(7)
    n_ids = 40
    here = rng.integers(1, n_ids - 1, 600)  # id n_ids - 1 has no faces
    there = rng.integers(1, n_ids - 1, 600)
    keep = here != there
    here, there = here[keep], there[keep]
    values = rng.integers(0, 4, len(here)).astype(np.float64)  # few levels: many exact ties
    small = rng.random(n_ids) < 0.5
    small[0], small[n_ids - 1] = False, True
    got = best_neighbours(here, there, values, small)
    faces: dict[int, dict[int, list[float]]] = {}
    for a, b, v in zip(here.tolist(), there.tolist(), values.tolist()):
        faces.setdefault(a, {}).setdefault(b, []).append(v)
        faces.setdefault(b, {}).setdefault(a, []).append(v)
    for fragment in range(n_ids):
        if not small[fragment] or fragment not in faces:
            assert got[fragment] == -1
            continue
        means = {other: sum(vs) / len(vs) for other, vs in faces[fragment].items()}
        best = max(means.values())
        assert got[fragment] == min(other for other, mean in means.items() if mean == best)
    assert got[n_ids - 1] == -1  # small, but no faces


def _all_faces(labels: np.ndarray, affinities: np.ndarray, nn_channels: np.ndarray) -> SimpleNamespace:
    """Reference with numpy masks: every face between two different non-zero ids, listed by its
    voxel p (axis z, then y, then x; C order), with p's affinity in that axis' channel
    (attributes here, there, values)."""
    padded = np.pad(labels, ((1, 0), (1, 0), (1, 0)))
    here = padded[1:, 1:, 1:]
    parts = []
    for axis, there in enumerate((padded[:-1, 1:, 1:], padded[1:, :-1, 1:], padded[1:, 1:, :-1])):
        selected = (here != there) & (here != 0) & (there != 0)
        parts.append((here[selected], there[selected], affinities[nn_channels[axis]][selected]))
    here, there, values = (np.concatenate(column) for column in zip(*parts))
    return SimpleNamespace(here=here, there=there, values=values)


def test_small_faces_are_face_pairs_that_touch_a_small_fragment_in_the_same_order():
    """min_size's face pass: exactly the faces of the numpy reference whose here or there is
    small, in the reference's order, with the affinity of the right channel (channels shuffled
    so a wrong channel shows)."""
    from axonseg.segment._small_kernel import small_faces

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 30, size=(6, 9, 11)).astype(np.int64)  # 0 = background, many faces
    affinities = rng.integers(0, 256, size=(5, *labels.shape)).astype(np.uint8)
    nn_channels = np.array([3, 0, 4])
    small = rng.random(30) < 0.4
    small[0] = False
    here, there, values = small_faces(labels, affinities, nn_channels, small)
    reference = _all_faces(labels, affinities, nn_channels)
    keep = small[reference.here] | small[reference.there]
    assert 50 < keep.sum() < len(keep)  # both kinds of faces occur
    np.testing.assert_array_equal(here, reference.here[keep])
    np.testing.assert_array_equal(there, reference.there[keep])
    np.testing.assert_array_equal(values, reference.values[keep].astype(np.float64))
    none = small_faces(labels, affinities, nn_channels, np.zeros(30, bool))
    assert all(len(part) == 0 for part in none)
