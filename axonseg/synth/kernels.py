"""Numba kernels that paint tapered capsules (tube segments) into voxel grids.

Rasterising thousands of short tube segments is the hot loop of the generator; each kernel
visits only the voxels of one segment's bounding box, so the cost is the tubes' volume.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _segment_distance(pz, py, px, az, ay, ax, dz, dy, dx, inv_len2):
    """Distance (nm) from point p to segment a + t d, t in [0, 1], and the clamped t."""
    t = ((pz - az) * dz + (py - ay) * dy + (px - ax) * dx) * inv_len2
    if t < 0.0:
        t = 0.0
    elif t > 1.0:
        t = 1.0
    ez = pz - (az + t * dz)
    ey = py - (ay + t * dy)
    ex = px - (ax + t * dx)
    return math.sqrt(ez * ez + ey * ey + ex * ex), t


@numba.njit(cache=True, nogil=True)
def _bbox(lo_nm, hi_nm, spacing, shape, axis):
    """Voxel index range [start, stop) whose centres (i + 0.5) * spacing lie in [lo, hi]."""
    start = int(math.ceil(lo_nm / spacing[axis] - 0.5))
    stop = int(math.floor(hi_nm / spacing[axis] - 0.5)) + 1
    if start < 0:
        start = 0
    if stop > shape[axis]:
        stop = shape[axis]
    return start, stop


@numba.njit(cache=True, nogil=True)
def paint_normalised(score, owner, starts, ends, radii0, radii1, object_ids, spacing, origin, reach):
    """Assign voxels to the tube whose axis is nearest relative to its radius.

    For every segment, voxels with ``d / r(t) <= reach`` get ``owner = object_id`` where the
    normalised distance beats the value already in ``score`` (a multiplicatively weighted
    Voronoi partition: a thin axon keeps its own axis even right beside a thick dendrite).

    Args:
        score: float32 zyx grid of the best normalised distance so far (init ``inf``); updated.
        owner: int32 zyx grid of the winning object index (init -1); updated.
        starts, ends: (S, 3) float64 segment end points in nm, zyx.
        radii0, radii1: (S,) float64 tube radius in nm at each end (linearly tapered).
        object_ids: (S,) int32 object index of each segment.
        spacing: (3,) float64 voxel size in nm, zyx; voxel i has its centre at (i + 0.5) * spacing.
        origin: (3,) float64 world position (nm) of the grid corner.
        reach: paint voxels up to ``reach`` radii from the axis.
    """
    shape = score.shape
    for s in range(starts.shape[0]):
        az = starts[s, 0] - origin[0]
        ay = starts[s, 1] - origin[1]
        ax = starts[s, 2] - origin[2]
        dz = ends[s, 0] - origin[0] - az
        dy = ends[s, 1] - origin[1] - ay
        dx = ends[s, 2] - origin[2] - ax
        len2 = dz * dz + dy * dy + dx * dx
        inv_len2 = 1.0 / len2 if len2 > 0.0 else 0.0
        r0 = radii0[s]
        r1 = radii1[s]
        pad = max(r0, r1) * reach
        z0, z1 = _bbox(min(az, az + dz) - pad, max(az, az + dz) + pad, spacing, shape, 0)
        y0, y1 = _bbox(min(ay, ay + dy) - pad, max(ay, ay + dy) + pad, spacing, shape, 1)
        x0, x1 = _bbox(min(ax, ax + dx) - pad, max(ax, ax + dx) + pad, spacing, shape, 2)
        oid = object_ids[s]
        # Every painted voxel lies in the sphere around the segment's midpoint that holds the
        # whole capsule; per (z, y) row, visit only the x-span inside that sphere.
        mz, my, mx = az + 0.5 * dz, ay + 0.5 * dy, ax + 0.5 * dx
        rho = 0.5 * math.sqrt(len2) + pad
        rho2 = rho * rho
        for iz in range(z0, z1):
            pz = (iz + 0.5) * spacing[0]
            for iy in range(y0, y1):
                py = (iy + 0.5) * spacing[1]
                rest = rho2 - (pz - mz) ** 2 - (py - my) ** 2
                if rest < 0.0:
                    continue
                half = math.sqrt(rest)
                xa = max(x0, int(math.ceil((mx - half) / spacing[2] - 0.5)))
                xb = min(x1, int(math.floor((mx + half) / spacing[2] - 0.5)) + 1)
                for ix in range(xa, xb):
                    px = (ix + 0.5) * spacing[2]
                    d, t = _segment_distance(pz, py, px, az, ay, ax, dz, dy, dx, inv_len2)
                    value = d / (r0 + t * (r1 - r0))
                    if value <= reach and value < score[iz, iy, ix]:
                        score[iz, iy, ix] = value
                        owner[iz, iy, ix] = oid


@numba.njit(cache=True, nogil=True)
def paint_clearance(clearance, starts, ends, radii0, radii1, spacing, origin, reach_nm):
    """Lower ``clearance`` to the signed distance (nm) from each voxel to the nearest tube surface.

    Only voxels within ``reach_nm`` of a surface are visited; the others keep their value, so
    initialise the grid with ``reach_nm`` (meaning "at least that far from every tube").

    Args:
        clearance: float32 zyx grid in nm; updated in place (negative inside tubes).
        starts, ends, radii0, radii1: segments as in :func:`paint_normalised` (nm).
        spacing: (3,) float64 grid spacing in nm, zyx.
        origin: (3,) float64 world position (nm) of the grid corner.
        reach_nm: how far outside the surface to update.
    """
    shape = clearance.shape
    for s in range(starts.shape[0]):
        az = starts[s, 0] - origin[0]
        ay = starts[s, 1] - origin[1]
        ax = starts[s, 2] - origin[2]
        dz = ends[s, 0] - origin[0] - az
        dy = ends[s, 1] - origin[1] - ay
        dx = ends[s, 2] - origin[2] - ax
        len2 = dz * dz + dy * dy + dx * dx
        inv_len2 = 1.0 / len2 if len2 > 0.0 else 0.0
        r0 = radii0[s]
        r1 = radii1[s]
        pad = max(r0, r1) + reach_nm
        z0, z1 = _bbox(min(az, az + dz) - pad, max(az, az + dz) + pad, spacing, shape, 0)
        y0, y1 = _bbox(min(ay, ay + dy) - pad, max(ay, ay + dy) + pad, spacing, shape, 1)
        x0, x1 = _bbox(min(ax, ax + dx) - pad, max(ax, ax + dx) + pad, spacing, shape, 2)
        for iz in range(z0, z1):
            pz = (iz + 0.5) * spacing[0]
            for iy in range(y0, y1):
                py = (iy + 0.5) * spacing[1]
                for ix in range(x0, x1):
                    px = (ix + 0.5) * spacing[2]
                    d, t = _segment_distance(pz, py, px, az, ay, ax, dz, dy, dx, inv_len2)
                    value = d - (r0 + t * (r1 - r0))
                    if value < clearance[iz, iy, ix]:
                        clearance[iz, iy, ix] = value


@numba.njit(cache=True, nogil=True)
def paint_ellipsoids(field, centres, axes, half_lengths, radii, values, spacing):
    """Write ``values[k]`` into voxels inside prolate ellipsoid k (max over overlapping ones).

    Args:
        field: float32 zyx grid; updated in place with the maximum value.
        centres: (K, 3) float64 ellipsoid centres in nm, zyx.
        axes: (K, 3) float64 unit vectors of the long axes, zyx.
        half_lengths: (K,) float64 half length along the axis in nm.
        radii: (K,) float64 radius across the axis in nm.
        values: (K,) float32 value to write (for example a label or an intensity).
        spacing: (3,) float64 voxel size in nm, zyx.
    """
    shape = field.shape
    for k in range(centres.shape[0]):
        cz = centres[k, 0]
        cy = centres[k, 1]
        cx = centres[k, 2]
        uz = axes[k, 0]
        uy = axes[k, 1]
        ux = axes[k, 2]
        a = half_lengths[k]
        b = radii[k]
        pad = max(a, b)
        z0, z1 = _bbox(cz - pad, cz + pad, spacing, shape, 0)
        y0, y1 = _bbox(cy - pad, cy + pad, spacing, shape, 1)
        x0, x1 = _bbox(cx - pad, cx + pad, spacing, shape, 2)
        for iz in range(z0, z1):
            pz = (iz + 0.5) * spacing[0] - cz
            for iy in range(y0, y1):
                py = (iy + 0.5) * spacing[1] - cy
                for ix in range(x0, x1):
                    px = (ix + 0.5) * spacing[2] - cx
                    along = pz * uz + py * uy + px * ux
                    across2 = pz * pz + py * py + px * px - along * along
                    if (along / a) ** 2 + across2 / (b * b) <= 1.0:
                        if values[k] > field[iz, iy, ix]:
                            field[iz, iy, ix] = values[k]


def segments_of(points: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split a polyline (N, 3) nm with radii (N,) into N-1 segments (starts, ends, r0, r1)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    radii = np.ascontiguousarray(radii, dtype=np.float64)
    if len(points) == 1:  # a single point is a zero-length segment: a sphere
        return points, points, radii, radii
    return points[:-1], points[1:], radii[:-1], radii[1:]
