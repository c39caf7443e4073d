"""Shared fixtures: small generated volumes and the path of the real FIB-SEM data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared_data import FIB_PATH, SKIP_REASON, require_shared


@pytest.fixture
def raw_volume() -> np.ndarray:
    """A 20x48x40 uint8 volume with structure (a gradient plus noise), zyx."""
    rng = np.random.default_rng(0)
    z, y, x = np.meshgrid(np.arange(20), np.arange(48), np.arange(40), indexing="ij")
    return ((z * 5 + y * 2 + x + rng.integers(0, 30, z.shape)) % 256).astype(np.uint8)


@pytest.fixture
def label_volume() -> np.ndarray:
    """A 20x48x40 uint32 volume of 8 boxes (ids 1..8), zyx."""
    labels = np.zeros((20, 48, 40), dtype=np.uint32)
    labels[:10, :24, :20] = 1
    labels[:10, :24, 20:] = 2
    labels[:10, 24:, :20] = 3
    labels[:10, 24:, 20:] = 4
    labels[10:] = labels[:10] + 4
    return labels


@pytest.fixture
def fib_path() -> Path:
    return require_shared(FIB_PATH)


@pytest.fixture
def full_disk(monkeypatch):  # noqa: ANN201
    """``full_disk(text, nth)``: from the nth write on, zarr writes into arrays whose path
    contains ``text`` fail with ENOSPC (returns the :class:`FullDisk`; ``.off()`` frees space)."""
    import zarr

    from fault_injection import FullDisk

    def arm(text: str, nth: int) -> FullDisk:
        fault = FullDisk(text, nth)
        monkeypatch.setattr(zarr.Array, "__setitem__", fault.wrap(zarr.Array.__setitem__))
        return fault

    return arm


_shared_skips: list[str] = []


def pytest_runtest_logreport(report) -> None:  # noqa: ANN001
    """Remember the tests skipped because the shared data was absent (see ``shared_data.py``)."""
    if report.skipped and isinstance(report.longrepr, tuple) and SKIP_REASON in str(report.longrepr[2]):
        _shared_skips.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001
    """With ``AXONSEG_REQUIRE_SHARED=1`` (``.ci/run`` sets it when ``../shared`` exists), a test
    that skipped for want of the shared data fails the run: its path must be wrong."""
    import os

    if os.environ.get("AXONSEG_REQUIRE_SHARED") == "1" and _shared_skips:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"error: AXONSEG_REQUIRE_SHARED=1 but {len(_shared_skips)} test(s) skipped for "
                                f"want of shared data ({FIB_PATH}): " + ", ".join(_shared_skips[:5]), red=True)
        session.exitstatus = 1
