"""Fixtures shared by the pipelines' tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from view_runs import write_view_run


@pytest.fixture(scope="session")
def view_run(tmp_path_factory) -> Path:
    """A 16 x 64 x 64 demo run (40 x 8 x 8 nm) with raw, meshes and skeletons (see ``view_runs``);
    tests that edit it work on a copy."""
    return write_view_run(tmp_path_factory.mktemp("view") / "run")
