"""Boundary checks for label arrays given to the evaluation functions.

Every check raises :class:`axonseg.errors.InputError` with a one-line message that names the
array and what was expected; nothing is coerced silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from axonseg.errors import InputError


def check_labels(labels: np.ndarray, name: str) -> None:
    """Check that ``labels`` is an integer label array without negative ids.

    Args:
        labels: label array (any shape; zyx for volumes).
        name: the array's name as the user knows it (``"gt"``, ``"pred"``).

    Raises:
        InputError: non-array input, non-integer dtype (float, bool) or negative labels.
    """
    if not isinstance(labels, np.ndarray):
        raise InputError(f"{name} is a {type(labels).__name__}: expected a numpy array")
    if labels.dtype.kind not in "ui":
        raise InputError(f"{name} has dtype {labels.dtype}: expected an integer dtype")
    if labels.dtype.kind == "i" and labels.size:
        minimum = int(labels.min())
        if minimum < 0:
            raise InputError(f"{name} has negative labels (min {minimum}): expected ids >= 0")


def as_uint64(labels: np.ndarray) -> np.ndarray:
    """Labels already checked by :func:`check_labels` as uint64 (a view where possible)."""
    if labels.dtype == np.uint64:
        return labels
    if labels.dtype == np.int64:
        return labels.view(np.uint64)  # non-negative, so the view is exact
    return labels.astype(np.uint64)


def check_same_shape(first: np.ndarray, first_name: str, second: np.ndarray, second_name: str) -> None:
    """Raise InputError when two arrays that are compared voxel by voxel differ in shape."""
    if first.shape != second.shape:
        raise InputError(
            f"{first_name} has shape {tuple(first.shape)} but {second_name} has shape "
            f"{tuple(second.shape)}: expected equal shapes"
        )


def check_triple(values: Sequence[float], name: str, positive: bool) -> np.ndarray:
    """Check a (z, y, x) triple such as a voxel size or an offset in nm.

    Args:
        values: three numbers, zyx.
        name: parameter name for the message.
        positive: require every value > 0 (voxel sizes) instead of just finite (offsets).

    Returns:
        The triple as a float64 array of shape (3,).
    """
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise InputError(f"{name} is {values!r}: expected three finite numbers (z, y, x) in nm")
    if positive and np.any(array <= 0):
        raise InputError(f"{name} is {values!r}: expected three positive numbers (z, y, x) in nm")
    return array
