"""Test-only fault injection: from the n-th write on, zarr writes into arrays whose path
contains a text fail as a full disk would (``OSError(ENOSPC)``). Production code carries no
hook: this patches ``zarr.Array.__setitem__`` in the test process (the ``full_disk`` fixture)
or in a child process (:data:`DRIVER`, for tests of the real command line).
"""

from __future__ import annotations

import errno
import os
import threading

import zarr


class FullDisk:
    """Counts writes into arrays whose ``store root/path`` contains ``text``; the ``nth`` and
    every later one raises ENOSPC while ``active`` (the disk stays full)."""

    def __init__(self, text: str, nth: int) -> None:
        self.text, self.nth, self.writes, self.active = text, nth, 0, True
        self._lock = threading.Lock()

    def check(self, array: zarr.Array) -> None:
        where = f"{getattr(array.store, 'root', '')}/{array.path}"
        if not self.active or self.text not in where:
            return
        with self._lock:
            self.writes += 1
            if self.writes < self.nth:
                return
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), where)

    def wrap(self, original):  # noqa: ANN001, ANN201
        def setitem(array: zarr.Array, selection, value) -> None:  # noqa: ANN001
            self.check(array)
            return original(array, selection, value)

        return setitem

    def off(self) -> None:
        """Free space: later writes succeed."""
        self.active = False


#: ``python -c DRIVER TEXT:N axonseg-args...`` runs the CLI with a full disk after N writes.
DRIVER = """\
import sys, zarr
sys.path.insert(0, {tests!r})
from fault_injection import FullDisk
text, _, nth = sys.argv[1].rpartition(":")
zarr.Array.__setitem__ = FullDisk(text, int(nth)).wrap(zarr.Array.__setitem__)
from axonseg.cli import main
sys.argv = ["axonseg", *sys.argv[2:]]
main()
"""
