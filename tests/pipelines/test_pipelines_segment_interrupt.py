"""The real ``axonseg segment`` process, stopped from outside (issue #17): Ctrl-C (SIGINT) says
how to resume and logs it; a second ``segment`` into the same folder is refused while the first
runs; the lock a ``kill -9`` leaves behind is taken over by the next run. The real-process
tests take a minute each on a busy 2-core machine (slow); the Ctrl-C test in this process is fast.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import pytest

from segment_runs import cli, error_lines, run_cli, segment_args, start_slow, write_segment_inputs

INTERRUPTED = "interrupted; re-run the same command to resume"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return write_segment_inputs(tmp_path_factory.mktemp("interrupt_inputs"))


def wait_for_marker(process, markers: Path, timeout: float = 240.0) -> None:  # noqa: ANN001
    """Wait until ``markers`` holds a done marker (the stage is under way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if any(not p.name.startswith("_") for p in markers.iterdir()):
                return
        except FileNotFoundError:  # not made yet (or removed: the stage finished, and the test fails below)
            pass
        time.sleep(0.01)
    process.kill()
    raise AssertionError(f"no marker in {markers}: {process.communicate(timeout=30)[1][-2000:]}")


def test_ctrl_c_in_a_stage_exits_130_says_how_to_resume_logs_it_and_frees_the_folder(inputs, tmp_path,
                                                                                     monkeypatch) -> None:
    """In this process (fast): Ctrl-C arrives as KeyboardInterrupt inside the stages."""
    from axonseg.pipelines.segment import pipeline

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run_segment_stages", interrupted)
    run = tmp_path / "run"
    result = run_cli(segment_args(inputs, run))
    assert result.returncode == 130
    assert [line for line in result.stderr.splitlines() if line.strip()][-1] == INTERRUPTED
    assert (run / "run.log").read_text().splitlines()[-1].endswith(f"segment stopped: {INTERRUPTED}")
    assert not (run / ".lock").exists()
    assert run_cli(["--help"]).returncode == 0  # a normal exit says nothing of the kind
    assert INTERRUPTED not in run_cli(["--help"]).stderr


@pytest.mark.slow
def test_sigint_says_how_to_resume_logs_it_and_the_same_command_resumes(inputs, tmp_path) -> None:
    run = tmp_path / "run"
    process = start_slow(*segment_args(inputs, run))
    wait_for_marker(process, run / "blocks" / "predict")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert [line for line in stderr.splitlines() if line.strip()][-1] == INTERRUPTED
    assert "Traceback" not in stderr
    assert (run / "run.log").read_text().splitlines()[-1].endswith(f"ERROR axonseg.pipelines.segment.pipeline: "
                                                                   f"segment stopped: {INTERRUPTED}")
    assert not (run / ".lock").exists()  # released on Ctrl-C
    done = sum(1 for p in (run / "blocks" / "predict").iterdir() if not p.name.startswith("_"))
    resumed = cli(*segment_args(inputs, run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"predict: resuming: {done} of 4 blocks already done, skipped" in resumed.stderr


@pytest.mark.slow
def test_a_second_segment_into_the_same_folder_is_refused_while_the_first_runs(inputs, tmp_path) -> None:
    run = tmp_path / "run"
    first = start_slow(*segment_args(inputs, run))
    try:
        wait_for_marker(first, run / "blocks" / "predict")
        first.send_signal(signal.SIGSTOP)  # hold it mid-stage while the second one tries
        second = cli(*segment_args(inputs, run))
        first.send_signal(signal.SIGCONT)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        errors = error_lines(second.stderr)
        assert len(errors) == 1 and errors[0].startswith(
            f"error: {run} is in use by another axonseg segment run (PID {first.pid} on {socket.gethostname()}, "
            "started "), second.stderr
        assert "choose another --out" in errors[0]
        _, stderr = first.communicate(timeout=300)
        assert first.returncode == 0, stderr[-3000:]  # the refused run disturbed nothing
        assert "is in use" not in (run / "run.log").read_text()  # refused before it touched the folder
        assert not (run / ".lock").exists()
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGCONT)
            first.kill()
            first.wait(30)


@pytest.mark.slow
def test_the_lock_of_a_killed_segment_is_taken_over_by_the_same_command(inputs, tmp_path) -> None:
    run = tmp_path / "run"
    killed = start_slow(*segment_args(inputs, run))
    wait_for_marker(killed, run / "blocks" / "predict")
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    assert json.loads((run / ".lock").read_text())["pid"] == killed.pid  # left behind by kill -9
    resumed = cli(*segment_args(inputs, run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"took over the stale lock of PID {killed.pid} on {socket.gethostname()}" in resumed.stderr
    assert "predict: resuming:" in resumed.stderr
    assert not (run / ".lock").exists()
