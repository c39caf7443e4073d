"""Freed heap memory goes back to the OS between blocks (glibc malloc_trim)."""

from __future__ import annotations

import platform

import numpy as np
import psutil
import pytest

from axonseg.blockwise.memory import release_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_release_freed_memory_returns_heap_pages():
    process = psutil.Process()
    # 80 kB arrays come from the heap (below glibc's 128 kB mmap threshold); the last one, kept,
    # sits above the others, so freeing them cannot shrink the heap's top: the pages stay
    # resident until they are trimmed
    arrays = [np.ones(10_000) for _ in range(5000)]  # ~400 MB
    keep = arrays[-1]
    del arrays
    before = process.memory_info().rss
    assert release_freed_memory() is True
    after = process.memory_info().rss
    assert keep.sum() == 10_000
    assert before - after > 200 * 2**20
