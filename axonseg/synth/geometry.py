"""The physical scene: centerlines and radii (nm) of densely packed axons and dendrites.

Dendrites are placed first, then axons, each starting in the emptiest place left and growing
both ways until it leaves the volume; some axons branch and dendrites carry spines.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from axonseg.synth.clearance import ClearanceField
from axonseg.synth.curves import CurveParams, grow_curve, random_direction, tilt
from axonseg.synth.options import SynthOptions

log = logging.getLogger(__name__)

FIELD_SPACING_NM = 40.0
AXON_CURVE = CurveParams(step_nm=20.0, curvature_nm=2500.0, correlation_nm=600.0)
DENDRITE_CURVE = CurveParams(step_nm=20.0, curvature_nm=5000.0, correlation_nm=1200.0)
SPINE_NECK_RADIUS_NM = (40.0, 55.0)
SPINE_HEAD_RADIUS_NM = (140.0, 230.0)


@dataclass
class Branch:
    """One unbranched piece of a neurite's centerline.

    Attributes:
        points: (N, 3) float64 centerline points in nm, zyx (may run outside the volume).
        radii: (N,) float64 radius at each point in nm.
        parent: (branch index, node index) of the point this branch grows from, or None.
        spine: True for a dendritic spine (neck and head).
    """

    points: np.ndarray
    radii: np.ndarray
    parent: tuple[int, int] | None = None
    spine: bool = False


@dataclass
class Neurite:
    """A neurite: its id (1-based label), ``kind`` ("axon" or "dendrite") and its branches."""

    id: int
    kind: str
    branches: list[Branch] = field(default_factory=list)


def inside_volume(points: np.ndarray, extent_nm: np.ndarray) -> np.ndarray:
    """Boolean (N,) mask of the points (nm, zyx) lying in the volume [0, extent)."""
    return np.all((points >= 0) & (points < extent_nm), axis=1)


def _profile(n: int, step_nm: float, correlation_nm: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth zero-mean, unit-variance random profile (an AR(1) filter of white noise)."""
    decay = math.exp(-step_nm / correlation_nm)
    kicks = rng.standard_normal(n) * math.sqrt(1.0 - decay * decay)
    start = rng.standard_normal()
    out, _ = lfilter([1.0], [1.0, -decay], kicks, zi=[start * decay])
    return out


def _grow_both_ways(seed, direction, radius, extent, margin, clearance, params, rng) -> np.ndarray:
    """A curve through ``seed`` that leaves the volume at both ends (nm, zyx)."""
    forward = grow_curve(seed, direction, radius_nm=radius, extent_nm=extent, exit_margin_nm=margin,
                         field=clearance, params=params, rng=rng)
    back_dir = (-direction[0], -direction[1], -direction[2])
    backward = grow_curve(seed, back_dir, radius_nm=radius, extent_nm=extent, exit_margin_nm=margin,
                          field=clearance, params=params, rng=rng)
    return np.concatenate([backward[::-1], forward[1:]], axis=0)


def _radii(n: int, mean: float, spread: float, low: float, high: float, params: CurveParams,
           rng: np.random.Generator) -> np.ndarray:
    """Slowly varying radius profile (nm) around ``mean``, clipped to [low, high]."""
    profile = _profile(n, params.step_nm, 4 * params.correlation_nm, rng)
    return np.clip(mean * (1.0 + spread * profile), low, high)


def _tangent(points: np.ndarray, index: int) -> tuple[float, float, float]:
    """Unit tangent of a polyline at ``index``."""
    a = points[max(index - 1, 0)]
    b = points[min(index + 1, len(points) - 1)]
    d = b - a
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    return (float(d[0]), float(d[1]), float(d[2]))


def _interior_index(points: np.ndarray, extent: np.ndarray, rng: np.random.Generator) -> int | None:
    """A random node index in the middle 60 % of the part of the polyline inside the volume."""
    inside = np.flatnonzero(inside_volume(points, extent))
    if len(inside) < 5:
        return None
    lo, hi = int(0.2 * len(inside)), int(0.8 * len(inside))
    return int(inside[rng.integers(lo, max(hi, lo + 1))])


def _axon(nid, extent, opts, clearance, rng) -> Neurite:
    low, high = (d / 2.0 for d in opts.axon_diameter_nm)
    # Log-normal mean radius around the range's geometric centre, kept off the range limits
    # so that the radius profile can vary without being clipped all the time.
    mean = float(np.clip(math.sqrt(low * high) * math.exp(0.25 * rng.standard_normal()),
                         low * 1.1, high * 0.85))
    margin = 2 * high + 40.0
    seed = clearance.pick_seed(rng)
    direction = random_direction(rng)
    points = _grow_both_ways(seed, direction, mean, extent, margin, clearance, AXON_CURVE, rng)
    radii = _radii(len(points), mean, 0.12, low, high, AXON_CURVE, rng)
    neurite = Neurite(nid, "axon", [Branch(points, radii)])
    n_branches = int(rng.random() < opts.branch_probability) + int(rng.random() < opts.branch_probability ** 2)
    for _ in range(n_branches):
        parent = int(rng.integers(len(neurite.branches)))
        at = _interior_index(neurite.branches[parent].points, extent, rng)
        if at is None:
            continue
        base = neurite.branches[parent]
        angle = math.radians(rng.uniform(25.0, 65.0))
        child_dir = tilt(_tangent(base.points, at), angle, rng)
        child_mean = float(base.radii[at] * rng.uniform(0.7, 1.0))
        child = grow_curve(base.points[at], child_dir, radius_nm=child_mean, extent_nm=extent,
                           exit_margin_nm=margin, field=clearance, params=AXON_CURVE, rng=rng)
        child_radii = _radii(len(child), child_mean, 0.12, low, high, AXON_CURVE, rng)
        neurite.branches.append(Branch(child, child_radii, parent=(parent, at)))
    return neurite


def _spine(shaft: Branch, at: int, rng: np.random.Generator) -> Branch:
    """A straight spine from shaft node ``at``: a thin neck and a round head (nm)."""
    tangent = np.asarray(_tangent(shaft.points, at))
    out = rng.standard_normal(3)
    out -= out.dot(tangent) * tangent
    out /= max(float(np.linalg.norm(out)), 1e-12)
    neck_r = rng.uniform(*SPINE_NECK_RADIUS_NM)
    head_r = rng.uniform(*SPINE_HEAD_RADIUS_NM)
    neck_len = rng.uniform(400.0, 1000.0)
    shaft_r = float(shaft.radii[at])
    head_centre = shaft_r + neck_len + head_r
    s = np.arange(0.0, head_centre + 0.9 * head_r, 20.0)
    head = head_r * np.sqrt(np.clip(1.0 - ((s - head_centre) / head_r) ** 2, 0.0, None))
    radii = np.maximum(neck_r, head)
    points = shaft.points[at] + s[:, None] * out[None, :]
    return Branch(points, radii, parent=(0, at), spine=True)


def _dendrite(nid, extent, opts, clearance, rng, max_radius: float) -> Neurite:
    low, high = (d / 2.0 for d in opts.dendrite_diameter_nm)
    # Log-uniform: thin shafts are more common than thick ones in neuropil.
    mean = min(float(math.exp(rng.uniform(math.log(low), math.log(high)))), max_radius)
    margin = high * 1.2 + 40.0
    seed = clearance.pick_seed(rng)
    direction = random_direction(rng)
    points = _grow_both_ways(seed, direction, mean, extent, margin, clearance, DENDRITE_CURVE, rng)
    radii = _radii(len(points), mean, 0.1, low, high, DENDRITE_CURVE, rng)
    return Neurite(nid, "dendrite", [Branch(points, radii)])


def _add_spines(neurite: Neurite, extent, opts, clearance, rng) -> None:
    """Add spines to a dendrite whose shaft is in ``clearance``; drop those piercing a neighbour."""
    shaft = neurite.branches[0]
    inside = np.flatnonzero(inside_volume(shaft.points, extent))
    length_um = len(inside) * DENDRITE_CURVE.step_nm / 1000.0
    for _ in range(int(rng.poisson(opts.spines_per_um * length_um))):
        at = int(rng.choice(inside))
        spine = _spine(shaft, at, rng)
        # Points beyond the own shaft's surface must not enter another neurite's tube.
        arc = np.linalg.norm(spine.points - spine.points[0], axis=1)
        outer = arc > float(shaft.radii[at]) + 40.0
        if not outer.any():
            continue
        room = clearance.values_at(spine.points[outer]) - spine.radii[outer]
        if room.min() >= -20.0:
            neurite.branches.append(spine)
            clearance.add_tube(spine.points, spine.radii)


def build_scene(extent_nm: tuple[float, float, float], opts: SynthOptions, rng: np.random.Generator) -> list[Neurite]:
    """Place dendrites, then axons, until the volume is filled to ``opts.fill_fraction``.

    Args:
        extent_nm: volume size in nm, zyx; the scene lives in [0, extent).
        opts: generator options.
        rng: the geometry's random generator (the only source of randomness here).

    Returns:
        Neurites with ids 1..N (dendrites first).
    """
    extent = np.asarray(extent_nm, dtype=np.float64)
    # Curves outside the field read its border values; 400 nm of margin is enough to steer
    # near the faces.
    clearance = ClearanceField(tuple(extent), FIELD_SPACING_NM, pad_nm=400.0, reach_nm=250.0)
    neurites: list[Neurite] = []
    min_axon_r = opts.axon_diameter_nm[0] / 2.0
    volume = float(np.prod(extent))
    chord = float(np.mean(extent))  # typical length of a path through the volume
    while len(neurites) < opts.max_neurites and opts.dendrite_fraction > 0:
        fill = clearance.fill_fraction()
        if fill >= opts.dendrite_fraction:
            break
        # The thickest dendrite that does not overshoot the dendrite budget by much; in a small
        # volume, even the thinnest one may not fit and the volume gets axons only.
        fit = math.sqrt((opts.dendrite_fraction - fill + 0.1) * volume / (math.pi * chord))
        if fit < opts.dendrite_diameter_nm[0] / 2.0:
            break
        neurites.append(_dendrite(len(neurites) + 1, extent, opts, clearance, rng, fit))
        clearance.add_tube(neurites[-1].branches[0].points, neurites[-1].branches[0].radii)
    # Spines go on once every shaft is placed, so that no later shaft runs through a spine.
    for neurite in neurites:
        _add_spines(neurite, extent, opts, clearance, rng)
    while len(neurites) < opts.max_neurites:
        if clearance.fill_fraction() >= opts.fill_fraction or clearance.max_clearance() < min_axon_r:
            break
        neurites.append(_axon(len(neurites) + 1, extent, opts, clearance, rng))
        for branch in neurites[-1].branches:
            clearance.add_tube(branch.points, branch.radii)
    log.debug("scene: %d neurites, fill %.2f", len(neurites), clearance.fill_fraction())
    return neurites
