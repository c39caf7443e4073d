"""Organelles placed in the physical scene (nm): mitochondria, vesicle clouds, synaptic densities.

They only change the rendered image, never the labels; the renderer clips each organelle to
its own neurite's voxels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from axonseg.synth.curves import tilt
from axonseg.synth.geometry import Neurite, inside_volume
from axonseg.synth.synapses import Synapses

VESICLE_RADIUS_NM = (16.0, 22.0)


@dataclass
class Ellipsoids:
    """Spheroids in nm (zyx): centres (K, 3), unit axes (K, 3), half_lengths and radii (K,), owners (K,)."""

    centres: np.ndarray
    axes: np.ndarray
    half_lengths: np.ndarray
    radii: np.ndarray
    owners: np.ndarray

    @staticmethod
    def from_rows(rows: list[tuple]) -> "Ellipsoids":
        if not rows:
            return Ellipsoids(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0), np.zeros(0, np.uint64))
        centres, axes, half, radii, owners = zip(*rows)
        return Ellipsoids(np.array(centres, dtype=np.float64), np.array(axes, dtype=np.float64),
                          np.array(half, dtype=np.float64), np.array(radii, dtype=np.float64),
                          np.array(owners, dtype=np.uint64))


@dataclass
class Organelles:
    """Everything the renderer draws inside neurites."""

    mitochondria: Ellipsoids
    vesicles: Ellipsoids  # spheres: half_lengths == radii
    densities: Ellipsoids  # postsynaptic densities: flat discs (half_lengths << radii)


def _tangent(points: np.ndarray, i: int) -> np.ndarray:
    d = points[min(i + 1, len(points) - 1)] - points[max(i - 1, 0)]
    return d / max(float(np.linalg.norm(d)), 1e-12)


def _perpendicular(direction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    v -= v.dot(direction) * direction
    return v / max(float(np.linalg.norm(v)), 1e-12)


def place_mitochondria(neurites: list[Neurite], extent_nm: np.ndarray, per_um: float,
                       rng: np.random.Generator) -> Ellipsoids:
    """Elongated mitochondria along dendrite shafts and (fewer, thinner) in thick axons.

    Args:
        neurites: the scene (nm).
        extent_nm: volume size in nm, zyx.
        per_um: mitochondria per um of dendrite inside the volume; thick axons get a third.
        rng: random generator.
    """
    rows = []
    for neurite in neurites:
        for branch in neurite.branches:
            if branch.spine:
                continue
            inside = np.flatnonzero(inside_volume(branch.points, extent_nm))
            if len(inside) < 2:
                continue
            length_um = len(inside) * float(np.linalg.norm(branch.points[1] - branch.points[0])) / 1000.0
            dendrite = neurite.kind == "dendrite"
            thick = float(np.median(branch.radii)) >= 65.0
            rate = per_um if dendrite else (per_um / 3.0 if thick else 0.0)
            for _ in range(int(rng.poisson(rate * length_um))):
                i = int(rng.choice(inside))
                tangent = _tangent(branch.points, i)
                r = float(branch.radii[i])
                if dendrite:
                    radius = min(rng.uniform(80.0, 160.0), 0.45 * r)
                    half = rng.uniform(250.0, 700.0)
                    lateral = rng.uniform(0.0, 0.8) * (r - radius)
                    centre = branch.points[i] + lateral * _perpendicular(tangent, rng)
                    axis = np.asarray(tilt(tuple(tangent), math.radians(rng.uniform(0, 15)), rng))
                else:
                    radius = 0.55 * r
                    half = rng.uniform(150.0, 450.0)
                    centre = branch.points[i]
                    axis = tangent
                rows.append((centre, axis, half, radius, neurite.id))
    return Ellipsoids.from_rows(rows)


def place_vesicles(synapses: Synapses, rng: np.random.Generator, cloud_radius_nm: float = 120.0) -> Ellipsoids:
    """A cloud of 60-160 synaptic vesicles around each synapse's presynaptic point.

    Vesicles outside the bouton are clipped away by the renderer, so the cloud fills the
    bouton's side facing the contact.
    """
    rows = []
    for s in range(len(synapses)):
        towards = synapses.post_nm[s] - synapses.pre_nm[s]
        towards /= max(float(np.linalg.norm(towards)), 1e-12)
        for _ in range(int(rng.integers(60, 161))):
            # Uniform in a ball, pulled a little towards the active zone.
            offset = rng.standard_normal(3)
            offset *= cloud_radius_nm * rng.random() ** (1 / 3) / max(float(np.linalg.norm(offset)), 1e-12)
            centre = synapses.pre_nm[s] + offset
            radius = rng.uniform(*VESICLE_RADIUS_NM)
            rows.append((centre, towards, radius, radius, synapses.pre_ids[s]))
    return Ellipsoids.from_rows(rows)


def place_densities(synapses: Synapses, rng: np.random.Generator) -> Ellipsoids:
    """A flat postsynaptic density under the contact membrane of each synapse."""
    rows = []
    for s in range(len(synapses)):
        normal = synapses.post_nm[s] - synapses.pre_nm[s]
        normal /= max(float(np.linalg.norm(normal)), 1e-12)
        rows.append((synapses.post_nm[s], normal, rng.uniform(18.0, 28.0), rng.uniform(110.0, 190.0),
                     synapses.post_ids[s]))
    return Ellipsoids.from_rows(rows)


def place_organelles(neurites: list[Neurite], synapses: Synapses, extent_nm: tuple[float, float, float],
                     mitochondria_per_um: float, rng: np.random.Generator) -> Organelles:
    """All organelles of the scene (nm)."""
    extent = np.asarray(extent_nm, dtype=np.float64)
    return Organelles(
        mitochondria=place_mitochondria(neurites, extent, mitochondria_per_um, rng),
        vesicles=place_vesicles(synapses, rng),
        densities=place_densities(synapses, rng),
    )
