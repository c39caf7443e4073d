"""The lock of a run folder: ``RUN/.lock`` names the process (PID, host, job) that writes into
the folder, so that two writing jobs never share one; a lock left by a killed process is taken over.

The file is held with ``flock``, which the kernel releases when its owner dies, even by
``kill -9``: a lock file whose ``flock`` can be taken is stale, whatever PID it names. Where a
file system has no ``flock``, a lock is stale when its PID no longer runs on this host.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from axonseg.errors import RunLockedError

logger = logging.getLogger(__name__)

__all__ = ["LOCK_FILE", "lock_owner", "run_lock"]

LOCK_FILE = ".lock"

_held: dict[Path, int] = {}  # folders this process holds, with how many nested run_lock calls hold each
_held_guard = threading.Lock()


def lock_owner(run_dir: str | Path) -> dict[str, Any] | None:
    """What ``RUN/.lock`` records (``pid``, ``host``, ``job``, ``started``), or None without a
    readable one. Says nothing about whether that owner still runs."""
    try:
        return _parse((Path(run_dir) / LOCK_FILE).read_text())
    except OSError:
        return None


def _parse(text: str) -> dict[str, Any] | None:
    try:
        owner = json.loads(text)
    except ValueError:
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    return _parse(os.read(fd, 4096).decode(errors="replace"))


def _alive_here(owner: dict[str, Any]) -> bool:
    """The owner runs on this host (a PID of another host cannot be checked: assume alive)."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _describe(owner: dict[str, Any] | None) -> str:
    if owner is None:
        return "a process that left no PID"
    return f"PID {owner['pid']} on {owner.get('host', '?')}, started {owner.get('started', '?')}"


def _refuse(folder: Path, owner: dict[str, Any] | None) -> RunLockedError:
    job = (owner or {}).get("job") or "axonseg"
    return RunLockedError(
        f"{folder} is in use by another axonseg {job} run ({_describe(owner)}): wait for it to end or stop it, "
        "or choose another --out"
    )


def _open_locked(path: Path, folder: Path) -> int:
    """Open ``path`` and hold its ``flock``; refuse while a live process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                owner = _read(fd)
                os.close(fd)
                raise _refuse(folder, owner) from None
            owner = _read(fd)  # no flock on this file system: judge the recorded PID
            if owner is not None and owner.get("pid") != os.getpid() and _alive_here(owner):
                os.close(fd)
                raise _refuse(folder, owner) from None
            return fd
        try:  # the previous owner may have removed the file between our open and our flock
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


@contextmanager
def run_lock(run_dir: str | Path, job: str) -> Iterator[Path]:
    """Hold ``RUN/.lock`` while the body runs; the folder is made when missing.

    Nested calls of one process on the same folder share the lock (``segment`` runs predict,
    which locks too). The lock is released on return, on an error and on Ctrl-C; a folder
    that this call made and that is still empty then is removed again.

    Args:
        run_dir: the run folder.
        job: the job that writes (``segment``, ``predict``, ...), named in a refusal.

    Yields:
        The lock file.

    Raises:
        RunLockedError: a live process holds the lock; the message names the folder and its PID.
    """
    folder = Path(run_dir)
    path = folder / LOCK_FILE
    key = folder.resolve()
    with _held_guard:
        nested = key in _held
        if nested:
            _held[key] += 1
    if nested:
        try:
            yield path
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = _open_locked(path, folder)
    except BaseException:
        if made and not any(folder.iterdir()):
            folder.rmdir()
        raise
    try:
        previous = _read(fd)
        if previous is not None and previous.get("pid") != os.getpid():
            logger.warning("%s: took over the stale lock of %s (%s), which no longer runs", folder, _describe(previous),
                           previous.get("job") or "axonseg")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "job": job,
                  "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode())
        with _held_guard:
            _held[key] = 1
        try:
            yield path
        finally:
            with _held_guard:
                del _held[key]
            path.unlink(missing_ok=True)  # while still holding it: see _open_locked
    finally:
        os.close(fd)
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
