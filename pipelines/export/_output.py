"""Where an export goes and when it may replace an earlier one; why a connectome came out empty.

The normal export goes to ``RUN/connectome``, a hardware target's to ``RUN/connectome-<target>``
(so neither replaces the other). ``axonseg segment`` rewrites ``RUN/connectome`` on every run, so
an export it wrote is replaced without ``--overwrite``; one that ``axonseg export`` wrote is not.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from axonseg.connectome.filtering import DropReport
from axonseg.errors import OutputExistsError

logger = logging.getLogger(__name__)

REPORT_FILE = "export.json"
#: Writers whose export a later ``axonseg export`` may replace without ``--overwrite``.
REPLACEABLE_WRITERS = ("segment",)


def output_folder(run_dir: Path, target: str | None) -> Path:
    """``RUN/connectome``, or ``RUN/connectome-<target>`` for a hardware target."""
    return Path(run_dir) / ("connectome" if target is None else f"connectome-{target}")


def written_by(folder: Path) -> str | None:
    """The command recorded in ``folder/export.json`` (``export``, ``segment``), or None."""
    try:
        return json.loads((Path(folder) / REPORT_FILE).read_text()).get("written_by")
    except (OSError, ValueError, AttributeError):
        return None


def check_output(folder: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty export folder unless ``overwrite`` or ``segment`` wrote it.

    Raises:
        OutputExistsError: ``folder`` holds an export of ``axonseg export`` (or of unknown origin).
    """
    folder = Path(folder)
    if overwrite or not folder.is_dir() or not any(folder.iterdir()):
        return
    writer = written_by(folder)
    if writer in REPLACEABLE_WRITERS:
        logger.info("%s was written by `axonseg %s`, which rewrites it on every run: replacing it", folder, writer)
        return
    origin = f" (written by `axonseg {writer}`)" if writer else ""
    raise OutputExistsError(f"{folder} exists already{origin}; pass --overwrite to replace it")


def empty_reason(proxy: bool, address: str | None, n_rows: int, drops: DropReport, proxy_min_area_nm2: float,
                 n_below_confidence: int = 0) -> str:
    """Why no synapse was kept, in words (for the warning, ``export.json`` and ``simulate``)."""
    if proxy and n_rows == 0:
        return (f"the contact PROXY found no two segments touching over at least {proxy_min_area_nm2:g} nm^2 "
                "(lower proxy_min_area_nm2 or pass --synapses TABLE)")
    if n_rows == 0 and n_below_confidence:
        return f"all {n_below_confidence} synapses of {address} lie below min_confidence"
    if n_rows == 0:
        return f"the synapse table {address} has no rows"
    parts = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in drops.dropped.items() if count)
    source = "contact PROXY synapses" if proxy else f"synapses of {address}"
    return f"all {n_rows} {source} were dropped ({parts})"
