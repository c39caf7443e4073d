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


_THREAD_HOLES = """
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil

from axonseg.blockwise.memory import return_large_allocations

if sys.argv[1] == "fixed":
    assert return_large_allocations() is True
process = psutil.Process()


def block(_):
    scratch = np.ones(30 * 2**20 // 8)  # a large free: glibc's dynamic threshold rises to 30 MB
    del scratch
    arrays = [np.ones(8 * 2**20 // 8) for _ in range(30)]
    return arrays[::2]  # half freed, in the middle of this thread's arena


base = process.memory_info().rss
with ThreadPoolExecutor(2) as pool:
    kept = list(pool.map(block, range(2)))
print((process.memory_info().rss - base) / 2**20)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_fixed_mmap_threshold_returns_large_frees_at_once(tmp_path):
    """Two threads keep 2 x 15 arrays of 8 MB (240 MB) and free as many: by default the freed
    ones stay resident in the threads' arenas until a trim; with the fixed threshold each is
    its own mapping and goes back to the OS when freed."""
    import os
    import subprocess
    import sys

    script = tmp_path / "holes.py"
    script.write_text(_THREAD_HOLES)

    def resident_mb(mode: str) -> float:
        # any MALLOC_* setting (distributed sets MALLOC_TRIM_THRESHOLD_ for its workers) turns
        # glibc's dynamic threshold off, so the default case runs without them
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        out = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip().splitlines()[-1])

    assert resident_mb("default") > 400
    assert 200 < resident_mb("fixed") < 300
