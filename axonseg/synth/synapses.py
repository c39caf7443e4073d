"""Synapses at axon-dendrite contacts: where an axon passes within a few voxels of a dendrite.

Contacts are found on the centerlines (nm) before rasterising, so boutons can swell at them;
:func:`resolve_synapses` then keeps those where the labels really touch and places the points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from axonseg.synth.geometry import Neurite, inside_volume

MIN_SPACING_NM = 500.0  # two synapses of one axon are at least this far apart


@dataclass
class Synapses:
    """Synapse points in nm (zyx), one row per synapse.

    Attributes:
        pre_ids: (S,) uint64 presynaptic axon ids.
        post_ids: (S,) uint64 postsynaptic dendrite ids.
        pre_nm: (S, 3) float64 point inside the axon bouton, near the contact.
        post_nm: (S, 3) float64 point inside the dendrite, just under the contact membrane.
    """

    pre_ids: np.ndarray
    post_ids: np.ndarray
    pre_nm: np.ndarray
    post_nm: np.ndarray

    def __len__(self) -> int:
        return len(self.pre_ids)

    def subset(self, keep: np.ndarray) -> "Synapses":
        """The synapses selected by a boolean or index array."""
        return Synapses(self.pre_ids[keep], self.post_ids[keep], self.pre_nm[keep], self.post_nm[keep])

    @staticmethod
    def empty() -> "Synapses":
        return Synapses(np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros((0, 3)), np.zeros((0, 3)))


@dataclass
class Contact:
    """A candidate synapse on the centerlines.

    Attributes:
        axon: index of the axon in the neurite list. branch, node: where on it (centerline node).
        pre_id, post_id: axon and dendrite ids.
        axis_nm: (3,) the axon's centerline point. partner_nm: (3,) the dendrite's nearest axis point.
        rank: the contact's position in its axon's random order (only the first few are kept).
        budget: how many synapses this contact's axon may keep.
    """

    axon: int
    branch: int
    node: int
    pre_id: int
    post_id: int
    axis_nm: np.ndarray
    partner_nm: np.ndarray
    rank: int
    budget: int


def _dendrite_tree(neurites: list[Neurite]) -> tuple[cKDTree, np.ndarray, np.ndarray] | None:
    points, radii, owner = [], [], []
    for neurite in neurites:
        if neurite.kind != "dendrite":
            continue
        for branch in neurite.branches:
            points.append(branch.points)
            radii.append(branch.radii)
            owner.append(np.full(len(branch.points), neurite.id, dtype=np.int64))
    if not points:
        return None
    return cKDTree(np.concatenate(points)), np.concatenate(radii), np.concatenate(owner)


def _branch_contacts(branch, inside, kdtree, d_radii, d_owner, max_gap_nm) -> list[tuple[int, int]]:
    """(node, dendrite point index) of the closest point of each run of contact along a branch."""
    k = min(16, len(d_radii))
    dist, idx = kdtree.query(branch.points, k=k)
    dist, idx = dist.reshape(len(branch.points), k), idx.reshape(len(branch.points), k)
    gaps = dist - d_radii[idx] - branch.radii[:, None]
    rows = np.arange(len(branch.points))
    best = np.argmin(gaps, axis=1)
    gap, nearest = gaps[rows, best], idx[rows, best]
    # An axon axis inside the dendrite's tube is a crossing, not a contact.
    close = inside & (gap < max_gap_nm) & (dist[rows, best] > d_radii[nearest])
    partner = np.where(close, d_owner[nearest], 0)
    change = np.flatnonzero(np.diff(np.r_[0, partner, 0]) != 0)
    out = []
    for start, stop in zip(change[:-1], change[1:]):
        if partner[start] != 0:
            node = start + int(np.argmin(gap[start:stop]))
            out.append((node, int(nearest[node])))
    return out


def find_contacts(neurites: list[Neurite], extent_nm: tuple[float, float, float], per_um: float,
                  max_gap_nm: float, rng: np.random.Generator) -> list[Contact]:
    """Candidate synapses where axons pass within ``max_gap_nm`` of a dendrite's surface.

    Along each axon branch, every run of consecutive centerline points close to one dendrite is
    one contact, represented by its closest point. Each axon may keep ``per_um`` synapses per um
    of its length inside the volume (rounded at random); twice that many candidates, at least
    ``MIN_SPACING_NM`` apart, are returned so that some can fail the check against the labels.

    Args:
        neurites: the scene (nm).
        extent_nm: volume size in nm, zyx.
        per_um: synapse density along axons (1/um).
        max_gap_nm: largest surface-to-surface distance (nm) that counts as a contact.
        rng: random generator for the choice of contacts.
    """
    tree = _dendrite_tree(neurites)
    if tree is None or per_um <= 0:
        return []
    kdtree, d_radii, d_owner = tree
    extent = np.asarray(extent_nm, dtype=np.float64)
    contacts: list[Contact] = []
    for ai, neurite in enumerate(neurites):
        if neurite.kind != "axon":
            continue
        candidates = []
        length_nm = 0.0
        for bi, branch in enumerate(neurite.branches):
            inside = inside_volume(branch.points, extent)
            steps = np.linalg.norm(np.diff(branch.points, axis=0), axis=1)
            length_nm += float(np.sum(steps[inside[1:]]))
            for node, q_index in _branch_contacts(branch, inside, kdtree, d_radii, d_owner, max_gap_nm):
                candidates.append((bi, node, q_index))
        budget = int(np.floor(per_um * length_nm / 1000.0 + rng.random()))
        accepted: list[np.ndarray] = []
        for c in rng.permutation(len(candidates)):
            if len(accepted) >= 2 * budget:
                break
            bi, node, q_index = candidates[c]
            p = neurite.branches[bi].points[node]
            if any(np.linalg.norm(p - a) < MIN_SPACING_NM for a in accepted):
                continue
            contacts.append(Contact(ai, bi, node, neurite.id, int(d_owner[q_index]), p.copy(),
                                    kdtree.data[q_index].copy(), len(accepted), budget))
            accepted.append(p)
    return contacts


def swell_boutons(neurites: list[Neurite], contacts: list[Contact], max_radius_nm: float,
                  rng: np.random.Generator) -> None:
    """Widen each axon around its contacts into a bouton (in place), never past ``max_radius_nm``."""
    for contact in contacts:
        branch = neurites[contact.axon].branches[contact.branch]
        arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(branch.points, axis=0), axis=1))]
        s = arc - arc[contact.node]
        half = rng.uniform(200.0, 350.0)
        peak = min(max_radius_nm, branch.radii[contact.node] * rng.uniform(1.4, 1.8))
        bump = peak * np.sqrt(np.clip(1.0 - (s / half) ** 2, 0.0, None))
        branch.radii = np.maximum(branch.radii, bump)


def resolve_synapses(contacts: list[Contact], labels: np.ndarray, voxel_size: tuple[float, float, float],
                     max_gap_nm: float, depth_nm: float = 25.0) -> Synapses:
    """Keep the contacts where the axon's label really meets the dendrite's, and place the points.

    Along the line from the axon's axis to the dendrite's axis the labels must read: the axon,
    then at most ``max_gap_nm`` of extracellular space, then the dendrite. The pre point is
    ``depth_nm`` inside the axon's boundary on that line, the post point as deep in the dendrite.
    Each axon keeps at most its budget of synapses.

    Args:
        contacts: candidates from :func:`find_contacts`.
        labels: uint64 neurite labels (final), zyx.
        voxel_size: nm, zyx.
        max_gap_nm: largest extracellular gap allowed between the two labels (nm).
        depth_nm: how far inside each neurite the points are put (nm).
    """
    vs = np.asarray(voxel_size, dtype=np.float64)
    extent = np.asarray(labels.shape) * vs
    step = 0.5 * float(vs.min())
    kept: dict[int, int] = {}
    rows = []
    for contact in sorted(contacts, key=lambda c: (c.axon, c.rank)):
        if kept.get(contact.axon, 0) >= contact.budget:
            continue
        line = contact.partner_nm - contact.axis_nm
        length = float(np.linalg.norm(line))
        if length == 0:
            continue
        t = np.arange(0.0, length, step)
        samples = contact.axis_nm[None, :] + (t / length)[:, None] * line[None, :]
        if not inside_volume(samples, extent).all():
            continue
        voxels = np.floor(samples / vs).astype(np.int64)
        values = labels[voxels[:, 0], voxels[:, 1], voxels[:, 2]]
        is_pre = values == contact.pre_id
        is_post = values == contact.post_id
        if not is_pre[0] or not is_post.any():
            continue
        first_post = int(np.argmax(is_post))
        last_pre = first_post - 1 - int(np.argmax(is_pre[:first_post][::-1]))
        between = values[last_pre + 1:first_post]
        if np.any(between != 0) or (first_post - last_pre - 1) * step > max_gap_nm:
            continue
        pre_i = int(np.clip(last_pre - round(depth_nm / step), 0, last_pre))
        post_i = int(np.clip(first_post + round(depth_nm / step), first_post, len(t) - 1))
        if not (is_pre[pre_i] and is_post[post_i]):
            continue
        rows.append((contact.pre_id, contact.post_id, samples[pre_i], samples[post_i]))
        kept[contact.axon] = kept.get(contact.axon, 0) + 1
    if not rows:
        return Synapses.empty()
    pre_ids, post_ids, pre, post = zip(*rows)
    return Synapses(np.array(pre_ids, dtype=np.uint64), np.array(post_ids, dtype=np.uint64),
                    np.array(pre, dtype=np.float64), np.array(post, dtype=np.float64))
