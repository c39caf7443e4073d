"""What the benchmarks share: the CPU's ISA flags and running one measured task in a fresh process.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import this module as ``_common``.
"""

from __future__ import annotations

from typing import Any, Callable

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "amx_bf16", "amx_tile")


def isa_flags() -> list[str]:
    """The CPU's vector ISA flags of interest (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return []
    return [flag for flag in ISA_FLAGS if flag in flags]


def measure(context: Any, child: Callable[..., None], *args: Any) -> dict:
    """Run ``child(*args, queue)`` in a new process of ``context`` and return what it puts on the
    queue; a result with ``"error"`` stops the benchmark with that one line."""
    queue = context.Queue()
    process = context.Process(target=child, args=(*args, queue))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        raise SystemExit(f"benchmark failed: {result['error']}")
    return result


def task_child(tasks: dict[str, Callable[[dict], dict]], task: str, spec: dict, queue: Any) -> None:
    """Run ``tasks[task](spec)`` in this (fresh) process and put its figures on ``queue``: wall
    seconds, peak RSS of this process and of its reaped children (MB), CPU seconds, details."""
    import logging
    import resource
    import time

    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    try:
        details = tasks[task](spec)
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which stops the run
        queue.put({"error": f"{task}: {type(err).__name__}: {err}"})
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker pools, once reaped
    queue.put({"task": task, "seconds": time.perf_counter() - started, "peak_rss_mb": usage.ru_maxrss / 1024,
               "children_peak_rss_mb": children.ru_maxrss / 1024,
               "cpu_seconds": usage.ru_utime + usage.ru_stime, "details": details})
