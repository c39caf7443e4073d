"""Shapes, dtypes, determinism and ground-truth consistency of the synthetic generator."""

from __future__ import annotations

import cc3d
import numpy as np
import pytest

from axonseg.synth import SynthVolume, generate_synth

SHAPE = (24, 128, 128)
VOXEL = (30.0, 8.0, 8.0)


@pytest.fixture(scope="module")
def vol() -> SynthVolume:
    return generate_synth(shape=SHAPE, voxel_size=VOXEL, seed=3)


def test_shapes_and_dtypes(vol: SynthVolume) -> None:
    assert vol.raw.shape == vol.labels.shape == vol.neurites.shape == SHAPE
    assert vol.raw.dtype == np.uint8
    assert vol.labels.dtype == np.uint64 and vol.neurites.dtype == np.uint64
    assert vol.voxel_size == VOXEL
    # The image has real contrast: dark membranes and light cytoplasm.
    assert vol.raw.std() > 20
    assert np.percentile(vol.raw, 5) < 110 < np.percentile(vol.raw, 60)


def test_same_seed_is_bitwise_identical_and_other_seed_differs(vol: SynthVolume) -> None:
    again = generate_synth(shape=SHAPE, voxel_size=VOXEL, seed=3)
    assert np.array_equal(again.raw, vol.raw)
    assert np.array_equal(again.labels, vol.labels)
    assert np.array_equal(again.neurites, vol.neurites)
    assert again.kinds == vol.kinds
    assert again.skeletons.keys() == vol.skeletons.keys()
    for key, (nodes, edges) in vol.skeletons.items():
        assert np.array_equal(again.skeletons[key][0], nodes)
        assert np.array_equal(again.skeletons[key][1], edges)
    other = generate_synth(shape=SHAPE, voxel_size=VOXEL, seed=4)
    assert np.mean(other.neurites != vol.neurites) > 0.5
    assert np.mean(other.raw != vol.raw) > 0.5


def test_kinds_cover_every_neurite_and_labels_are_axons(vol: SynthVolume) -> None:
    ids = set(np.unique(vol.neurites).tolist()) - {0}
    assert set(vol.kinds) == ids
    assert set(vol.kinds.values()) <= {"axon", "dendrite"}
    axon_ids = set(np.unique(vol.labels).tolist()) - {0}
    assert axon_ids == set(vol.skeletons)
    assert all(vol.kinds[i] == "axon" for i in axon_ids)
    assert len(axon_ids) >= 20


def test_labels_are_a_subset_of_neurites(vol: SynthVolume) -> None:
    inside = vol.labels > 0
    assert np.array_equal(vol.labels[inside], vol.neurites[inside])
    axon_ids = np.array(sorted(vol.skeletons), dtype=np.uint64)
    # Every voxel of a labelled axon is in labels: labels is neurites restricted to those axons.
    assert np.array_equal(inside, np.isin(vol.neurites, axon_ids))


def test_every_id_is_one_connected_component(vol: SynthVolume) -> None:
    for name in ("neurites", "labels"):
        array = getattr(vol, name)
        components = cc3d.connected_components(array, connectivity=6)
        n_ids = len(np.unique(array)) - 1
        assert int(components.max()) == n_ids, name


def test_dense_packing_and_axon_fraction(vol: SynthVolume) -> None:
    neurite_fraction = float(np.mean(vol.neurites > 0))
    axon_fraction = float(np.mean(vol.labels > 0))
    assert 0.7 < neurite_fraction < 0.97
    assert 0.2 < axon_fraction < 0.8


def test_skeleton_nodes_lie_in_their_own_axon(vol: SynthVolume) -> None:
    extent = np.asarray(SHAPE) * np.asarray(VOXEL)
    hits, total = 0, 0
    for axon_id, (nodes, edges) in vol.skeletons.items():
        assert nodes.dtype == np.float64 and nodes.ndim == 2 and nodes.shape[1] == 3
        assert edges.ndim == 2 and edges.shape[1] == 2 and np.issubdtype(edges.dtype, np.integer)
        assert edges.size == 0 or (edges.min() >= 0 and edges.max() < len(nodes))
        assert np.all(nodes >= 0) and np.all(nodes < extent)
        # Edges join nearby nodes: about one voxel (8 nm) apart, branch joins a few nm more.
        lengths = np.linalg.norm(nodes[edges[:, 0]] - nodes[edges[:, 1]], axis=1)
        assert lengths.max() < 20.0
        voxels = np.floor(nodes / np.asarray(VOXEL)).astype(int)
        hits += int(np.sum(vol.labels[tuple(voxels.T)] == axon_id))
        total += len(nodes)
    assert hits / total > 0.95


def test_synapses_join_an_axon_to_a_dendrite(vol: SynthVolume) -> None:
    syn = vol.synapses
    assert syn is not None and len(syn) >= 1
    pre = np.floor(syn.pre_nm / np.asarray(VOXEL)).astype(int)
    post = np.floor(syn.post_nm / np.asarray(VOXEL)).astype(int)
    assert np.array_equal(vol.neurites[tuple(pre.T)], syn.pre_ids)
    assert np.array_equal(vol.neurites[tuple(post.T)], syn.post_ids)
    assert all(vol.kinds[int(i)] == "axon" for i in syn.pre_ids)
    assert all(vol.kinds[int(i)] == "dendrite" for i in syn.post_ids)
    # Pre and post sit on either side of the contact membrane, tens of nm apart.
    distance = np.linalg.norm(syn.pre_nm - syn.post_nm, axis=1)
    assert np.all(distance < 150.0)
