"""A small demo run folder for the viewer tests (written once per module)."""

from __future__ import annotations

import pytest

from axonseg.pipelines.proofread_demo import write_demo_run


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return write_demo_run(tmp_path_factory.mktemp("run") / "run", shape=(16, 64, 64), box=(4, 8, 8))
