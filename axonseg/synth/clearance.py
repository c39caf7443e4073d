"""A coarse world-space field of the distance to the nearest placed tube, used to pack neurites.

New neurites start where the field is largest and steer up its gradient, so the tubes fill the
volume densely without piling onto each other. The grid spacing is fixed in nm (not voxels), so
the same seed gives the same scene at any voxel size.
"""

from __future__ import annotations

import math

import numpy as np

from axonseg.synth.kernels import paint_clearance


class ClearanceField:
    """Distance (nm) from grid points to the nearest tube surface, capped at ``reach_nm``.

    Args:
        extent_nm: size of the volume in nm, zyx; the field covers it plus ``pad_nm`` each side.
        spacing_nm: grid spacing in nm (isotropic).
        pad_nm: margin around the volume in nm, so paths can be steered near the faces.
        reach_nm: the cap (and how far from a tube a new tube still feels it).
    """

    def __init__(self, extent_nm: tuple[float, float, float], spacing_nm: float, pad_nm: float, reach_nm: float):
        self.extent_nm = np.asarray(extent_nm, dtype=np.float64)
        self.spacing = float(spacing_nm)
        self.reach = float(reach_nm)
        self.origin = np.full(3, -float(pad_nm))
        shape = np.ceil((self.extent_nm + 2 * pad_nm) / self.spacing).astype(int)
        self.values = np.full(tuple(int(s) for s in shape), self.reach, dtype=np.float32)
        centres = [(np.arange(n) + 0.5) * self.spacing + o for n, o in zip(shape, self.origin)]
        # Grid points inside the volume proper: only they count for fill and seeding.
        inside = [(c >= 0) & (c < e) for c, e in zip(centres, self.extent_nm)]
        interior = inside[0][:, None, None] & inside[1][None, :, None] & inside[2][None, None, :]
        self._interior_flat = np.flatnonzero(interior)
        self._centres = centres

    def add_tube(self, points: np.ndarray, radii: np.ndarray) -> None:
        """Lower the field by the tube with axis ``points`` (N, 3) nm and ``radii`` (N,) nm."""
        # Chords of about two grid cells are exact enough at this resolution and keep the
        # number of (large) segment bounding boxes small.
        keep = np.unique(np.r_[np.arange(0, len(points), 6), len(points) - 1])
        pts = np.ascontiguousarray(points[keep], dtype=np.float64)
        rad = np.ascontiguousarray(radii[keep], dtype=np.float64)
        paint_clearance(
            self.values, pts[:-1], pts[1:], rad[:-1], rad[1:],
            np.full(3, self.spacing), self.origin, self.reach,
        )

    def values_at(self, points: np.ndarray) -> np.ndarray:
        """Field values (nm) at the grid cells holding ``points`` (N, 3) nm (clamped to the grid)."""
        index = np.floor((points - self.origin) / self.spacing).astype(np.int64)
        index = np.clip(index, 0, np.asarray(self.values.shape) - 1)
        return self.values[index[:, 0], index[:, 1], index[:, 2]]

    def fill_fraction(self) -> float:
        """Fraction of the volume (grid points inside it) covered by some tube."""
        return float(np.mean(self.values.ravel()[self._interior_flat] < 0))

    def max_clearance(self) -> float:
        """Largest distance (nm) from an interior grid point to the nearest tube (capped)."""
        return float(self.values.ravel()[self._interior_flat].max())

    def pick_seed(self, rng: np.random.Generator, quantile: float = 0.8) -> np.ndarray:
        """A random interior point (nm, zyx) among the emptiest ones, jittered inside its cell."""
        interior_values = self.values.ravel()[self._interior_flat]
        best = float(interior_values.max())
        candidates = self._interior_flat[interior_values >= quantile * best]
        index = np.unravel_index(int(rng.choice(candidates)), self.values.shape)
        jitter = rng.uniform(-0.5, 0.5, size=3) * self.spacing
        point = np.array([self._centres[a][index[a]] for a in range(3)]) + jitter
        return np.clip(point, 0.0, self.extent_nm - 1e-6)


def unit(vector: tuple[float, float, float]) -> tuple[float, float, float]:
    """``vector`` scaled to length one (a zero vector becomes +z)."""
    n = math.sqrt(vector[0] ** 2 + vector[1] ** 2 + vector[2] ** 2)
    if n == 0.0:
        return (1.0, 0.0, 0.0)
    return (vector[0] / n, vector[1] / n, vector[2] / n)
