"""LUTs round-trip per threshold; a run without LUTs is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.io.luts import read_luts, write_luts


def test_luts_roundtrip(tmp_path: Path) -> None:
    fragments = np.array([1, 2, 3, 2**40], dtype=np.uint64)
    luts = {0.3: (fragments, np.array([1, 1, 3, 4], np.uint64)), 0.7: (fragments, np.array([1, 1, 1, 4], np.uint64))}
    write_luts(tmp_path, luts)
    back = read_luts(tmp_path)
    assert sorted(back) == [0.3, 0.7]
    np.testing.assert_array_equal(back[0.7].segment_ids, [1, 1, 1, 4])
    assert back[0.3].fragment_ids.dtype == np.uint64 and back[0.3].fragment_ids[-1] == 2**40


def test_missing_luts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run the agglomeration stage"):
        read_luts(tmp_path)


def test_mismatched_lengths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="3 fragment ids but 2 segment ids"):
        write_luts(tmp_path, {0.5: (np.arange(3), np.arange(2))})
