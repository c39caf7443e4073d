"""A small threaded HTTP server for precomputed folders (meshes, skeletons, an exported run),
with the CORS header a neuroglancer client on another port needs. Only the named folders are
served, so a run's other files never leave the machine.
"""

from __future__ import annotations

import errno
import functools
import http.server
import logging
import posixpath
import socket
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from axonseg.errors import ConfigError

logger = logging.getLogger(__name__)


def check_port_free(bind: str, port: int, option: str = "--port") -> None:
    """Fail in one line when ``bind:port`` cannot be listened on (0 means any free port).

    Raises:
        ConfigError: the port is in use, or the address is not one of this machine's.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(f"{option} {port}: {bind}:{port} is in use by another program: "
                                  f"choose another {option} (0 picks a free one)") from None
            raise ConfigError(f"--bind {bind} {option} {port}: cannot listen there ({error.strerror or error}): "
                              "expected an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None


class _FolderHandler(http.server.SimpleHTTPRequestHandler):
    """Serves ``/<prefix>/...`` from the folder mapped to ``prefix``; everything else is 404."""

    folders: Mapping[str, Path] = {}

    def translate_path(self, path: str) -> str:
        parts = [p for p in posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(path).path)).split("/") if p]
        for prefix, folder in self.folders.items():
            head = [p for p in prefix.split("/") if p]
            if parts[: len(head)] == head and ".." not in parts:
                return str(Path(folder, *parts[len(head):]))
        return str(Path("/nonexistent-axonseg-path"))

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def list_directory(self, path):
        self.send_error(404, "not found")

    def log_message(self, format: str, *args) -> None:
        logger.debug("static: " + format, *args)


class StaticServer:
    """Serve folders over HTTP in a daemon thread.

    Args:
        folders: ``{url prefix: folder}``, e.g. ``{"meshes": RUN/meshes}``; ``""`` serves one
            folder at the root.
        bind: the address to listen on.
        port: the port; 0 picks a free one.

    Raises:
        ConfigError: the port is in use.
    """

    def __init__(self, folders: Mapping[str, Path], bind: str = "127.0.0.1", port: int = 0) -> None:
        check_port_free(bind, port, "static port")
        handler = type("Handler", (_FolderHandler,), {"folders": dict(folders)})
        self._server = http.server.ThreadingHTTPServer((bind, port), functools.partial(handler))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="axonseg-static", daemon=True)
        self._thread.start()

    def url(self, host: str, prefix: str = "") -> str:
        """``http://host:port/prefix``."""
        return f"http://{host}:{self.port}/{prefix.strip('/')}".rstrip("/")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
