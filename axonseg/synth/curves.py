"""Smooth random space curves that grow until they leave the volume, steering around neurites.

The curvature is an Ornstein-Uhlenbeck process (so the curve is smooth, not a jittery random
walk), and a push up the clearance gradient keeps a new neurite off the ones placed before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from axonseg.synth.clearance import ClearanceField, unit


@dataclass(frozen=True)
class CurveParams:
    """How a centerline bends.

    Attributes:
        step_nm: arc length between consecutive points (nm).
        curvature_nm: typical radius of curvature (nm); smaller bends more.
        correlation_nm: arc length over which the curvature direction is remembered (nm).
        steer: strength of the push away from neighbours (curvature at full push, 1/nm).
        lookahead_nm: the push also looks this far ahead along the current direction (nm).
        max_length_nm: hard cap on the curve's length (nm), against curves that circle.
    """

    step_nm: float = 20.0
    curvature_nm: float = 2500.0
    correlation_nm: float = 600.0
    steer: float = 1.0 / 200.0
    lookahead_nm: float = 250.0
    max_length_nm: float = 20000.0


def random_direction(rng: np.random.Generator) -> tuple[float, float, float]:
    """A direction drawn uniformly on the unit sphere (zyx)."""
    return unit(tuple(rng.standard_normal(3)))  # type: ignore[arg-type]


def tilt(direction: tuple[float, float, float], angle_rad: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """``direction`` rotated by ``angle_rad`` towards a random perpendicular direction."""
    d = np.asarray(direction, dtype=np.float64)
    other = rng.standard_normal(3)
    other -= other.dot(d) * d
    other /= max(np.linalg.norm(other), 1e-12)
    out = math.cos(angle_rad) * d + math.sin(angle_rad) * other
    return unit(tuple(out))  # type: ignore[arg-type]


@numba.njit(cache=True, nogil=True)
def _sample(values, origin, spacing, pz, py, px):
    """Field value (nearest grid point) and its central-difference gradient at a point (nm)."""
    iz = min(max(int((pz - origin[0]) / spacing), 1), values.shape[0] - 2)
    iy = min(max(int((py - origin[1]) / spacing), 1), values.shape[1] - 2)
    ix = min(max(int((px - origin[2]) / spacing), 1), values.shape[2] - 2)
    scale = 1.0 / (2.0 * spacing)
    gz = (values[iz + 1, iy, ix] - values[iz - 1, iy, ix]) * scale
    gy = (values[iz, iy + 1, ix] - values[iz, iy - 1, ix]) * scale
    gx = (values[iz, iy, ix + 1] - values[iz, iy, ix - 1]) * scale
    return values[iz, iy, ix], gz, gy, gx


@numba.njit(cache=True, nogil=True)
def _grow(start, direction, noise, values, origin, spacing, lo, hi, step, decay, want, steer, lookahead):
    """The curve-growing loop of :func:`grow_curve`; returns the filled prefix of the points."""
    n_steps = noise.shape[0]
    points = np.empty((n_steps + 1, 3))
    pz, py, px = start[0], start[1], start[2]
    vz, vy, vx = direction[0], direction[1], direction[2]
    wz = wy = wx = 0.0  # curvature vector (1/nm), kept perpendicular to the direction
    points[0, 0], points[0, 1], points[0, 2] = pz, py, px
    count = 1
    for i in range(n_steps):
        wz = wz * decay + noise[i, 0]
        wy = wy * decay + noise[i, 1]
        wx = wx * decay + noise[i, 2]
        along = wz * vz + wy * vy + wx * vx
        wz, wy, wx = wz - along * vz, wy - along * vy, wx - along * vx
        cz, cy, cx = wz, wy, wx
        # Look here and ahead: a neighbour seen early needs only a gentle turn to be avoided.
        for ahead in (0.0, lookahead):
            value, gz, gy, gx = _sample(values, origin, spacing, pz + vz * ahead, py + vy * ahead,
                                        px + vx * ahead)
            if value < want:
                # Push sideways towards free space, harder the deeper we are in a neighbour.
                push = steer * min(1.0, (want - value) / want)
                g_along = gz * vz + gy * vy + gx * vx
                sz, sy, sx = gz - g_along * vz, gy - g_along * vy, gx - g_along * vx
                norm = math.sqrt(sz * sz + sy * sy + sx * sx)
                if norm > 1e-9:
                    cz += push * sz / norm
                    cy += push * sy / norm
                    cx += push * sx / norm
        vz, vy, vx = vz + cz * step, vy + cy * step, vx + cx * step
        norm = math.sqrt(vz * vz + vy * vy + vx * vx)
        vz, vy, vx = vz / norm, vy / norm, vx / norm
        pz, py, px = pz + vz * step, py + vy * step, px + vx * step
        points[count, 0], points[count, 1], points[count, 2] = pz, py, px
        count += 1
        if pz < lo[0] or py < lo[1] or px < lo[2] or pz > hi[0] or py > hi[1] or px > hi[2]:
            break
    return points[:count]


def grow_curve(
    start: np.ndarray,
    direction: tuple[float, float, float],
    *,
    radius_nm: float,
    extent_nm: np.ndarray,
    exit_margin_nm: float,
    field: ClearanceField,
    params: CurveParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """Grow a curve from ``start`` along ``direction`` until it is ``exit_margin_nm`` outside.

    The curvature vector follows an Ornstein-Uhlenbeck process (stationary magnitude about
    ``1 / params.curvature_nm``); where the clearance field says a placed neurite is nearer
    than this one's radius plus a margin, a sideways push up the field's gradient is added.

    Args:
        start: (3,) start point in nm, zyx.
        direction: initial unit direction, zyx.
        radius_nm: radius of the neurite (sets how much clearance it wants).
        extent_nm: (3,) volume size in nm; the volume is [0, extent).
        exit_margin_nm: stop once this far outside the volume (nm).
        field: clearance of the neurites placed so far (not updated here).
        params: curve shape parameters.
        rng: random generator (consumed in a fixed amount per call for reproducibility).

    Returns:
        (N, 3) float64 points in nm, zyx, starting at ``start``, ``params.step_nm`` apart.
    """
    step = params.step_nm
    max_steps = max(2, int(params.max_length_nm / step))
    decay = math.exp(-step / params.correlation_nm)
    kick = math.sqrt(1.0 - decay * decay) / params.curvature_nm
    noise = rng.standard_normal((max_steps, 3)) * kick
    want = 1.5 * radius_nm + 20.0  # clearance this neurite would like to keep
    extent = np.asarray(extent_nm, dtype=np.float64)
    return _grow(
        np.asarray(start, dtype=np.float64), np.asarray(unit(direction), dtype=np.float64), noise,
        field.values, field.origin, field.spacing,
        -exit_margin_nm * np.ones(3), extent + exit_margin_nm, step, decay, want, params.steer,
        params.lookahead_nm,
    )
