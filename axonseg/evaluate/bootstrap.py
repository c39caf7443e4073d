"""How sure is a NERL figure? Bootstrap intervals over the ground-truth skeletons.

NERL = sum_s L_s erl_s / sum_s L_s^2 is carried by a few long skeletons, so on a validation ROI
with some 50 skeletons one merge more or less moves it by 0.05-0.2. Resampling the skeletons
(Poisson weights, one per skeleton and resample) gives the spread a different draw of
skeletons would show; the paired form compares two segmentations on the same skeletons, which
is what choosing a checkpoint or a setting needs. Pure numpy; lengths and ERL in nm.
"""

from __future__ import annotations

import numpy as np

from axonseg.errors import InputError

#: Resamples drawn per chunk, so memory stays (chunk x skeletons) float64.
_CHUNK = 64


def _check(lengths: np.ndarray, *erls: np.ndarray, level: float, n_resamples: int) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"level is {level}: expected a coverage in (0, 1), e.g. 0.9")
    if n_resamples < 1:
        raise InputError(f"n_resamples is {n_resamples}: expected at least 1")
    for erl in erls:
        if erl.shape != lengths.shape:
            raise InputError(f"skeleton ERL has shape {erl.shape} but lengths {lengths.shape}: expected one per skeleton")


def _resampled_nerl(lengths: np.ndarray, erls: list[np.ndarray], n_resamples: int, seed: int) -> np.ndarray:
    """(len(erls), n_resamples) NERL of Poisson-weighted resamples of the skeletons."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(erls), n_resamples))
    for start in range(0, n_resamples, _CHUNK):
        weights = rng.poisson(1.0, size=(min(_CHUNK, n_resamples - start), len(lengths))) * lengths
        gt = weights @ lengths
        with np.errstate(invalid="ignore", divide="ignore"):
            for row, erl in enumerate(erls):
                out[row, start:start + len(weights)] = (weights @ erl) / gt
    return out


def nerl_interval(
    lengths_nm: np.ndarray, erl_nm: np.ndarray, level: float = 0.9, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval of NERL over the skeletons.

    Args:
        lengths_nm: (S,) skeleton lengths L_s in nm (``ErlResult.skeleton_lengths_nm``).
        erl_nm: (S,) per-skeleton ERL in nm (``ErlResult.skeleton_erl_nm``).
        level: coverage of the interval (0.9: the 5th to the 95th percentile).
        n_resamples: bootstrap resamples.
        seed: seed of the resampling (fixed, so a report is reproducible).

    Returns:
        ``(low, high)``; NaN when there are no skeletons.
    """
    lengths = np.asarray(lengths_nm, dtype=np.float64)
    erl = np.asarray(erl_nm, dtype=np.float64)
    _check(lengths, erl, level=level, n_resamples=n_resamples)
    if lengths.size == 0 or not lengths.any():
        return float("nan"), float("nan")
    samples = _resampled_nerl(lengths, [erl], n_resamples, seed)[0]
    samples = samples[np.isfinite(samples)]
    tail = 50.0 * (1.0 - level)
    return float(np.percentile(samples, tail)), float(np.percentile(samples, 100.0 - tail))


def paired_nerl_difference(
    lengths_nm: np.ndarray, erl_a_nm: np.ndarray, erl_b_nm: np.ndarray, level: float = 0.9,
    n_resamples: int = 1000, seed: int = 0,
) -> dict[str, float]:
    """NERL of segmentation B minus A on the same skeletons, with a paired bootstrap interval.

    Args:
        lengths_nm: (S,) skeleton lengths in nm, the same skeletons for both.
        erl_a_nm, erl_b_nm: (S,) per-skeleton ERL of A and of B, in the order of ``lengths_nm``.
        level, n_resamples, seed: as :func:`nerl_interval`.

    Returns:
        ``{"difference", "low", "high", "p_b_better"}``: B - A, its interval, and the share of
        resamples in which B scores higher (near 0.5: the two cannot be told apart).
    """
    lengths = np.asarray(lengths_nm, dtype=np.float64)
    a = np.asarray(erl_a_nm, dtype=np.float64)
    b = np.asarray(erl_b_nm, dtype=np.float64)
    _check(lengths, a, b, level=level, n_resamples=n_resamples)
    gt = float(lengths @ lengths)
    if gt == 0:
        return {"difference": float("nan"), "low": float("nan"), "high": float("nan"), "p_b_better": float("nan")}
    samples = _resampled_nerl(lengths, [a, b], n_resamples, seed)
    delta = samples[1] - samples[0]
    delta = delta[np.isfinite(delta)]
    tail = 50.0 * (1.0 - level)
    return {
        "difference": float((lengths @ b - lengths @ a) / gt),
        "low": float(np.percentile(delta, tail)),
        "high": float(np.percentile(delta, 100.0 - tail)),
        "p_b_better": float(np.mean(delta > 0)),
    }
