"""The CI guard: with ``AXONSEG_REQUIRE_SHARED=1`` a test that skips for want of the shared data
fails the run (a wrong data path must never pass silently); without it the same test skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/io/test_io_roundtrip.py::test_fib_medulla_opens_with_its_resolution"


def test_a_shared_data_skip_fails_when_the_data_is_required(tmp_path):
    env = {**os.environ, "AXONSEG_SHARED_DATA": str(tmp_path / "nowhere"), "AXONSEG_REQUIRE_SHARED": "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "1 skipped" in result.stdout
    assert "AXONSEG_REQUIRE_SHARED=1 but 1 test(s) skipped for want of shared data" in result.stdout
    assert str(tmp_path / "nowhere") in result.stdout
