"""Screenshots of a neuroglancer viewer through headless Chromium (software WebGL): the browser
loads the viewer's URL, and neuroglancer's own screenshot waits until every visible chunk,
mesh and skeleton has arrived. The browser is always stopped, also on a timeout or Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from axonseg.errors import ConfigError, StageError

logger = logging.getLogger(__name__)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: WebGL without a GPU: ANGLE on SwiftShader, which a headless container has
FLAGS = ("--headless=new", "--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
         "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars", "--mute-audio")
SCREENSHOT_TIMEOUT_S = 180.0


def find_browser() -> str:
    """The Chromium executable on PATH.

    Raises:
        ConfigError: none of :data:`BROWSERS` is installed.
    """
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    raise ConfigError("--screenshot needs Chromium, and none of " + ", ".join(BROWSERS) + " is on PATH: install "
                      "the Debian package `chromium` (apt-get install chromium)")


def _stop(process: subprocess.Popen) -> None:
    """Stop the browser we started and every process it spawned (its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def screenshot(viewer: Any, out: str | Path, size: Sequence[int] = (1280, 720),
               timeout_s: float = SCREENSHOT_TIMEOUT_S) -> Path:
    """Load ``viewer`` in headless Chromium and write its screenshot as a PNG.

    Args:
        viewer: a ``neuroglancer.Viewer`` whose state is set.
        out: the PNG to write (written under a temporary name, then renamed).
        size: width and height in pixels.
        timeout_s: give up after this many seconds (software WebGL on a busy machine is slow).

    Returns:
        ``out``.

    Raises:
        ConfigError: Chromium is not installed.
        StageError: the browser exited, or the view did not finish loading within ``timeout_s``.
    """
    browser = find_browser()
    out = Path(out)
    width, height = (int(v) for v in size)
    profile = tempfile.mkdtemp(prefix="axonseg-chromium-")
    command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               viewer.get_viewer_url()]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    result: list[Any] = []
    errors: list[BaseException] = []

    def capture() -> None:
        try:
            result.append(viewer.screenshot(size=[width, height]))
        except BaseException as error:  # noqa: BLE001 - reported by the waiting thread
            errors.append(error)

    try:
        worker = threading.Thread(target=capture, name="axonseg-screenshot", daemon=True)
        worker.start()
        while worker.is_alive() and time.monotonic() - started < timeout_s:
            worker.join(0.5)
            if process.poll() is not None and worker.is_alive():
                raise StageError(f"screenshot: {browser} exited with code {process.returncode} before the view loaded")
        if errors:
            raise StageError(f"screenshot: {errors[0]}")
        if not result:
            raise StageError(f"screenshot: the view did not finish loading in {timeout_s:.0f} s (a segment without "
                             "its mesh or skeleton file keeps neuroglancer waiting)")
    finally:
        _stop(process)
        shutil.rmtree(profile, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(result[0].screenshot.image)
    os.replace(tmp, out)
    logger.info("screenshot %dx%d in %.1f s -> %s", width, height, time.monotonic() - started, out)
    return out
