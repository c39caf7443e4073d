"""Constrained MALIS: pair counts against a brute force, hand-made crops, the loss, and its
use in training (``malis_weight``) and fine-tuning (``init_from``)."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import find_boundaries

from axonseg.errors import ConfigError, InputError
from axonseg.model.checkpoint import load_model
from axonseg.model.config import ModelConfig
from axonseg.model.losses import malis_loss
from axonseg.model.config import nearest_channels
from axonseg.model.malis import _edges, malis_pair_counts
from axonseg.model.sampler import TrainingVolume, make_batch
from axonseg.model.train_loop import compute_loss, loss_terms, train

from training_helpers import tiny_config


def brute_force_counts(affinities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add edges one at a time in Kruskal order and count, with scipy's connected components
    recomputed from scratch after each, the labelled pairs that became connected at that edge."""
    shape, n = labels.shape, labels.size
    u, v, flat = _edges(shape)
    weight, lab = affinities.reshape(-1)[flat], labels.reshape(-1)
    within = (lab[u] == lab[v]) & (lab[u] != 0)
    counts = []
    for positive in (True, False):
        out = np.zeros(3 * n)
        key = np.where(within, weight, -1.0) if positive else np.where(within, 2.0, weight)
        order = np.argsort(-key, kind="stable")
        order = order[key[order] >= 0]
        before = np.arange(n)
        for k in range(len(order)):
            graph = coo_matrix((np.ones(k + 1), (u[order[: k + 1]], v[order[: k + 1]])), shape=(n, n))
            after = connected_components(graph, directed=False)[1]
            for i, j in itertools.combinations(np.flatnonzero(lab), 2):
                if (lab[i] == lab[j]) == positive and after[i] == after[j] and before[i] != before[j]:
                    out[flat[order[k]]] += 1
            before = after
        counts.append(out.reshape((3, *shape)))
    return counts[0], counts[1]


@pytest.mark.parametrize("seed", range(4))
def test_counts_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=(2, 3, 4))
    affinities = rng.random((3, 2, 3, 4))
    positive, negative = malis_pair_counts(affinities, labels)
    expected_positive, expected_negative = brute_force_counts(affinities, labels)
    np.testing.assert_array_equal(positive, expected_positive)
    np.testing.assert_array_equal(negative, expected_negative)
    # every same-object pair connected inside its object is counted once; every pair of
    # different objects once
    sizes = np.bincount(labels.ravel())[1:]
    assert negative.sum() == (sizes.sum() ** 2 - (sizes**2).sum()) / 2
    assert 0 < positive.sum() <= ((sizes**2).sum() - sizes.sum()) / 2


def test_merge_pairs_land_on_the_strongest_crossing():
    # two objects side by side (x), each two voxels tall (y); two edges cross between them
    labels = np.array([[[1, 2], [1, 2]]])
    affinities = np.zeros((3, 1, 2, 2))
    affinities[1, 0, 1, 0], affinities[1, 0, 1, 1] = 0.1, 0.9  # y edges inside object 1 and 2
    affinities[2, 0, 0, 1], affinities[2, 0, 1, 1] = 0.2, 0.7  # x edges crossing
    positive, negative = malis_pair_counts(affinities, labels)
    assert negative[2, 0, 1, 1] == 4 and negative.sum() == 4  # 2 x 2 pairs merge at 0.7
    assert positive[1, 0, 1, 0] == 1 and positive[1, 0, 1, 1] == 1 and positive.sum() == 2


def test_unlabelled_voxels_carry_paths_but_no_pairs():
    labels = np.array([[[1, 0, 2]]])
    affinities = np.zeros((3, 1, 1, 3))
    affinities[2, 0, 0, 1], affinities[2, 0, 0, 2] = 0.9, 0.4
    positive, negative = malis_pair_counts(affinities, labels)
    assert positive.sum() == 0
    assert negative[2, 0, 0, 2] == 1 and negative.sum() == 1  # the weak edge of the only path


def test_crops_of_one_object_or_none():
    affinities = np.random.default_rng(0).random((3, 2, 3, 3))
    positive, negative = malis_pair_counts(affinities, np.full((2, 3, 3), 7))
    assert positive.sum() == 18 * 17 / 2 and negative.sum() == 0  # every pair, once, inside the object
    positive, negative = malis_pair_counts(affinities, np.zeros((2, 3, 3), dtype=int))
    assert positive.sum() == negative.sum() == 0


def test_bad_inputs_name_what_is_wrong():
    with pytest.raises(InputError, match="expected \\(3, z, y, x\\)"):
        malis_pair_counts(np.zeros((2, 1, 2, 2)), np.ones((1, 2, 2), dtype=int))
    with pytest.raises(InputError, match="integer dtype"):
        malis_pair_counts(np.zeros((3, 1, 2, 2)), np.ones((1, 2, 2)))
    assert nearest_channels([(0, 0, -1), (-1, 0, 0), (0, -3, 0), (0, -1, 0)]) == [1, 3, 0]
    with pytest.raises(InputError, match="lack \\[\\(0, -1, 0\\)\\]"):
        nearest_channels([(-1, 0, 0), (0, 0, -1)])


def test_loss_pushes_merging_edges_down_and_splitting_edges_up():
    positive = torch.tensor([3.0, 0.0])
    negative = torch.tensor([0.0, 4.0])
    a = torch.tensor([0.6, 0.7], requires_grad=True)
    loss = malis_loss(a, positive, negative)
    assert float(loss.detach()) == pytest.approx(0.4**2 + 0.7**2)
    loss.backward()
    assert a.grad[0] < 0 < a.grad[1]  # gradient descent raises the split edge, lowers the merge
    assert float(malis_loss(a.detach(), torch.zeros(2), torch.zeros(2))) == 0.0


@pytest.fixture
def cells() -> tuple[list[TrainingVolume], list[TrainingVolume]]:
    """Voronoi cells of 40 random seeds with dark 0-labelled walls, 10 nm voxels."""
    rng = np.random.default_rng(2)
    shape = (44, 20, 20)
    seeds = rng.uniform(0, shape, size=(40, 3))
    points = np.indices(shape).reshape(3, -1).T
    labels = (np.argmin(((points[:, None] - seeds[None]) ** 2).sum(-1), axis=1) + 1).reshape(shape)
    labels[find_boundaries(labels, mode="inner")] = 0
    raw = np.where(labels > 0, 180, 60).astype(np.uint8)
    return [TrainingVolume(raw[:22], labels[:22], (10, 10, 10))], [TrainingVolume(raw[22:], labels[22:], (10, 10, 10))]


def test_training_with_malis(tmp_path, cells):
    volumes = cells
    cfg = tiny_config(tmp_path, steps=3, malis_weight=0.5, output_shape=(6, 4, 4))
    batch = {k: torch.from_numpy(v) for k, v in make_batch(volumes[0], cfg, np.random.default_rng(0)).items()}
    # the crop's labels travel with the batch, numbered 1..n
    labels = batch["labels"].numpy()
    assert labels.shape[2:] == batch["affinities"].shape[2:]
    assert np.array_equal(np.unique(labels[labels > 0]), np.arange(1, labels.max() + 1)) and labels.max() > 1
    model = train(tiny_config(tmp_path / "init", steps=1, output_shape=(6, 4, 4)), *volumes)["model"]
    logits = model(batch["raw"])
    terms = loss_terms(logits, batch, cfg)
    assert list(terms) == ["affinity", "lsd", "malis"] and float(terms["malis"].detach()) > 0
    assert float(compute_loss(logits, batch, cfg).detach()) == pytest.approx(float(sum(terms.values()).detach()), rel=1e-6)

    train(cfg, *volumes)
    rows = list(csv.DictReader(open(tmp_path / "losses.csv")))
    assert float(rows[2]["val_malis_loss"]) > 0 and float(rows[2]["val_lsd_loss"]) > 0
    for split, total in (("val", "val_loss"), ("train", "loss")):
        terms = [float(rows[2][f"{split}_{k}_loss"]) for k in ("affinity", "lsd", "malis")]
        assert min(terms) > 0 and float(rows[2][total]) == pytest.approx(sum(terms), rel=1e-5)

    no_nearest = ModelConfig(num_fmaps=3, downsample_factors=[(2, 2, 2)], offsets=[(-2, 0, 0), (0, -3, 0), (0, 0, -3)])
    with pytest.raises(ValidationError, match="nearest-neighbour offsets"):
        tiny_config(tmp_path, malis_weight=1.0, model=no_nearest)


def test_init_from_starts_from_the_given_weights(tmp_path, volumes):
    train(tiny_config(tmp_path / "a", steps=3), *volumes)
    source = load_model(tmp_path / "a" / "model.pt").state_dict()
    started = train(tiny_config(tmp_path / "b", init_from=str(tmp_path / "a" / "model.pt")), *volumes, stop_at=0)
    for key, value in source.items():
        torch.testing.assert_close(started["model"].state_dict()[key], value, rtol=0, atol=0)
    other = ModelConfig(num_fmaps=4, fmap_inc_factor=2, downsample_factors=[(2, 2, 2)], lsd=True)
    with pytest.raises(ConfigError, match="init_from=.*another architecture"):
        train(tiny_config(tmp_path / "c", model=other, init_from=str(tmp_path / "a" / "model.pt")), *volumes)
    with pytest.raises(InputError, match="does not exist"):
        train(tiny_config(tmp_path / "d", init_from=str(tmp_path / "missing.pt")), *volumes)
