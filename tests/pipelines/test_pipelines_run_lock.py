"""The run folder's lock (``RUN/.lock``, issue #17): a second writer is refused in one line
naming the folder and the owner's PID; a lock left by ``kill -9`` is taken over; the lock
goes away on return, on errors and when nested.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from axonseg.errors import RunLockedError
from axonseg.pipelines import run_lock as run_lock_module
from axonseg.pipelines.run_lock import LOCK_FILE, lock_owner, run_lock

# loads the module by its file, without the pipelines package (its imports take seconds)
HOLDER = """\
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("run_lock", sys.argv[2])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
with module.run_lock(sys.argv[1], "segment"):
    print("locked", flush=True)
    time.sleep(300)
"""


def hold(run: Path) -> subprocess.Popen:
    """Another process that takes the lock of ``run`` and keeps it."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), run_lock_module.__file__], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_process_is_refused_naming_folder_and_pid(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = hold(run)
    try:
        with pytest.raises(RunLockedError) as refused:
            with run_lock(run, "segment"):
                pass
        message = str(refused.value)
        assert message.startswith(f"{run} is in use by another axonseg segment run (PID {holder.pid} on "
                                  f"{socket.gethostname()}, started ")
        assert "\n" not in message and "choose another --out" in message
        assert lock_owner(run)["pid"] == holder.pid  # the refused call left the owner's lock alone
    finally:
        holder.kill()
        holder.wait(30)


def test_a_stale_lock_after_kill_9_is_taken_over_with_a_warning(tmp_path: Path, caplog) -> None:
    run = tmp_path / "run"
    holder = hold(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait(30)
    assert lock_owner(run)["pid"] == holder.pid  # the killed process could not remove its lock
    with caplog.at_level("WARNING", logger="axonseg"):
        with run_lock(run, "segment") as path:
            owner = json.loads(path.read_text())
            assert owner["pid"] == os.getpid() and owner["job"] == "segment"
    assert f"took over the stale lock of PID {holder.pid} on {socket.gethostname()}" in caplog.text
    assert not (run / LOCK_FILE).exists()


def test_the_lock_is_released_on_errors_and_shared_by_nested_calls(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(ValueError):
        with run_lock(run, "segment"):
            with run_lock(run, "predict"):  # segment runs predict, which locks too
                assert lock_owner(run)["job"] == "segment"
            assert (run / LOCK_FILE).exists()  # the outer call still holds it
            (run / "config.yaml").write_text("job: segment\n")
            raise ValueError("a stage failed")
    assert not (run / LOCK_FILE).exists()
    holder = hold(run)  # and another process can take it at once
    holder.kill()
    holder.wait(30)


def test_a_folder_made_only_for_the_lock_is_removed_again(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with run_lock(run, "segment"):
        assert run.is_dir()
    assert not run.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with run_lock(existing, "segment"):
        pass
    assert existing.is_dir()  # a folder the user made stays
