"""Where the tests find the real data that is not in the repository (``../shared`` beside the clone).

``AXONSEG_SHARED_DATA`` overrides the folder (default: the ``shared/data`` folder beside the
repository root, found from this file's location). Tests that need it call
:func:`require_shared`, which skips with one recognisable reason when it is absent; with
``AXONSEG_REQUIRE_SHARED=1`` (set by ``.ci/run`` whenever ``../shared`` exists) such a skip fails
the session instead (see ``conftest.py``), so a wrong path can never pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AXONSEG_SHARED_DATA") or REPO.parent / "shared" / "data")
FIB_PATH = SHARED_DATA / "fib_medulla_ts2" / "fib_medulla_ts2_250.h5"
SKIP_REASON = "shared data absent"


def require_shared(path: Path = FIB_PATH) -> Path:
    """``path`` when it exists; otherwise skip the test with the shared-data reason."""
    if not Path(path).exists():
        pytest.skip(f"{SKIP_REASON}: {path} not found (set AXONSEG_SHARED_DATA or put shared/ beside the clone)")
    return Path(path)


def shared_missing(path: Path = FIB_PATH) -> bool:
    """For ``skipif``: the data file is absent (the reason must start with :data:`SKIP_REASON`)."""
    return not Path(path).exists()
