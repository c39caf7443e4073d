"""A run folder: its paths, recorded inputs, LUTs, and the one rule for which threshold and
which labels a run shows. Relabel, skeletonize, export, evaluate and the viewer all ask it.

The rule: a threshold asked for, else the configured one (``relabel_threshold`` of the
caller's config, else of the run's recorded ``config.yaml``), else the evaluated best
(``reports/best_threshold.json``) when it has a LUT, else the threshold the model was
calibrated at on validation data (stored in the model file by training; the nearest LUT), else
the median of the LUT thresholds (the lower middle one for an even count). The labels at that threshold are the
``segmentation/`` cache when it was made from that very LUT, else the fragments with the LUT.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from axonseg.blockwise import Roi
from axonseg.blockwise.outputs import read_json
from axonseg.errors import InputError
from axonseg.io import Volume, group_attrs, group_exists, group_state, open_volume
from axonseg.io.luts import read_lut, read_lut_index
from axonseg.pipelines.labels import check_label_volume, read_roi
from axonseg.segment.lut import Lut, apply_lut

logger = logging.getLogger(__name__)

__all__ = ["BEST_THRESHOLD_FILE", "Lut", "RunFolder", "RunLabels", "apply_lut", "remove_if_empty", "run_store"]

BEST_THRESHOLD_FILE = Path("reports") / "best_threshold.json"
INPUTS_FILE = "inputs.json"
CONFIG_FILE = "config.yaml"


def run_store(run_dir: Path) -> Path:
    """The run's ``volume.zarr``; raises InputError when the run folder has none."""
    store = Path(run_dir) / "volume.zarr"
    if not store.is_dir():
        raise InputError(f"{run_dir}: not a run folder (no volume.zarr inside)")
    return store


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` when nothing is left in it (the run's ``blocks/`` after a finished stage)."""
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _subfolder(name: str) -> property:
    """A :class:`RunFolder` property: the path ``RUN/<name>`` (it may not exist yet)."""
    return property(lambda self: self.path / name, doc=f"``RUN/{name}``.")


def _median(thresholds: list[float]) -> float:
    """The middle threshold; the lower of the two middles for an even count."""
    ordered = sorted(thresholds)
    return ordered[(len(ordered) - 1) // 2]


def _matching(value: float, available: list[float]) -> float | None:
    match = [t for t in available if np.isclose(t, value)]
    return match[0] if match else None


@dataclass(frozen=True)
class RunLabels:
    """What a run's segments are made of.

    Attributes:
        volume: ``segmentation`` or ``fragments`` of the run (zyx, integer).
        luts: ``{threshold: Lut}`` applied to ``fragments`` per block; empty when ``volume``
            is the segmentation itself.
        threshold: the LUT threshold these labels stand for (None: a segmentation not made
            from a LUT, or several thresholds at once for evaluation).
    """

    volume: Volume
    luts: dict[float, Lut] = field(default_factory=dict)
    threshold: float | None = None

    @property
    def keys(self) -> list[float | None]:
        """One key per segmentation: the thresholds, or ``[None]`` for the plain volume."""
        return sorted(self.luts) if self.luts else [None]

    @property
    def lut(self) -> Lut | None:
        """The one LUT to apply to ``volume`` (None when ``volume`` is a segmentation).

        Raises:
            InputError: the labels hold several LUTs (evaluation's labels).
        """
        if len(self.luts) > 1:
            raise InputError(f"{self.describe()}: {len(self.luts)} LUTs, expected one")
        return next(iter(self.luts.values()), None)

    def read(self, roi: Roi) -> dict[float | None, np.ndarray]:
        """Every segmentation's block at ``roi`` (voxels, zyx): ``{threshold or None: labels}``."""
        block = read_roi(self.volume, roi)
        if not self.luts:
            return {None: block}
        return {threshold: apply_lut(block, self.luts[threshold]) for threshold in self.keys}

    def describe(self) -> str:
        if self.luts:
            return f"{self.volume.source} with LUT thresholds {self.keys}"
        if self.threshold is not None:
            return f"{self.volume.source} (made from the LUT of threshold {self.threshold})"
        return self.volume.source


@dataclass(frozen=True)
class RunFolder:
    """One run folder (``RUN/``): ``volume.zarr``, ``luts/``, ``reports/``, ``graph/``,
    ``skeletons/``, ``blocks/``, ``inputs.json`` and ``config.yaml``.

    Nothing is read on construction; every method reads the folder as it is now.

    Args:
        path: the run folder.
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ---- paths -------------------------------------------------------------------------------
    @property
    def store(self) -> Path:
        """``RUN/volume.zarr``.

        Raises:
            InputError: the folder has no ``volume.zarr`` (not a run folder).
        """
        return run_store(self.path)

    luts_dir = _subfolder("luts")
    reports_dir = _subfolder("reports")
    graph_dir = _subfolder("graph")
    skeletons_dir = _subfolder("skeletons")
    blocks_dir = _subfolder("blocks")

    # ---- LUTs --------------------------------------------------------------------------------
    def lut_index(self) -> dict:
        """``luts/index.json`` as written (``{}`` when the run has no LUTs)."""
        return read_lut_index(self.path)

    def _lut_files(self) -> dict[float, str]:
        return {float(entry["threshold"]): entry["file"] for entry in self.lut_index().get("luts", [])}

    def thresholds(self) -> list[float]:
        """The LUT thresholds of the run, ascending (empty without LUTs)."""
        return sorted(self._lut_files())

    def _check(self, name: str, value: float, files: dict[float, str]) -> float:
        """``value`` as the run's own threshold, or a one-line InputError naming ``name``."""
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{name}={value}: expected a value in [0, 1]")
        match = _matching(value, sorted(files))
        if match is None:
            raise InputError(f"{name}={value}: the run has LUTs only for thresholds {sorted(files)}")
        return match

    def lut_file(self, threshold: float) -> str:
        """The LUT file of ``threshold``, relative to the run (e.g. ``luts/threshold_0.4000.npz``).

        Raises:
            InputError: the run has no LUT for ``threshold``.
        """
        files = self._lut_files()
        return f"luts/{files[self._check('threshold', threshold, files)]}"

    def lut(self, threshold: float) -> Lut:
        """The LUT of ``threshold`` (sorted by fragment id).

        Raises:
            InputError: the run has no LUT for ``threshold``.
        """
        files = self._lut_files()
        return read_lut(self.path, files[self._check("threshold", threshold, files)])

    # ---- the threshold rule ------------------------------------------------------------------
    def read_best_threshold(self) -> float | None:
        """The threshold the last evaluation chose (``reports/best_threshold.json``), or None."""
        path = self.path / BEST_THRESHOLD_FILE
        if not path.exists():
            return None
        value = json.loads(path.read_text()).get("threshold")
        return None if value is None else float(value)

    def write_best_threshold(self, best: dict[str, Any]) -> Path:
        """Record the evaluation's chosen row (``threshold`` and its figures) atomically."""
        path = self.path / BEST_THRESHOLD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(best, indent=1))
        os.replace(tmp, path)
        return path

    def configured_threshold(self) -> float | None:
        """``segment.relabel_threshold`` of the run's recorded ``config.yaml`` (``axonseg
        segment`` writes it), or None."""
        recorded = self.inputs()["config"]
        if not isinstance(recorded, dict) or recorded.get("job") != "segment":
            return None
        value = ((recorded.get("config") or {}).get("segment") or {}).get("relabel_threshold")
        return None if value is None else float(value)

    def choose_threshold(self, asked: float | None = None, configured: float | None = None) -> float:
        """The LUT threshold the run shows: ``asked``, else ``configured``, else the evaluated
        best when it has a LUT, else the threshold the run's model was calibrated at on
        validation data (:meth:`model_threshold`; the nearest LUT), else the median of the LUT
        thresholds (the lower middle one).

        Args:
            asked: a threshold in [0, 1] asked for (``threshold`` of a command or config).
            configured: the caller's configured threshold (``relabel_threshold``); None: the
                one the run recorded (:meth:`configured_threshold`).

        Raises:
            InputError: ``asked`` or ``configured`` outside [0, 1] or without a LUT, or a run
                without LUTs.
        """
        files = self._lut_files()
        if asked is None and configured is None:
            configured = self.configured_threshold()
        for name, value in (("threshold", asked), ("relabel_threshold", configured)):
            if value is not None:
                return self._check(name, value, files)
        available = sorted(files)
        if not available:
            raise InputError(f"{self.path}: no lookup tables (luts/index.json); run the agglomerate stage first")
        best = self.read_best_threshold()
        if best is not None:
            match = _matching(best, available)
            if match is not None:
                return match
            logger.warning("%s names %s, which has no LUT now; using the median", BEST_THRESHOLD_FILE, best)
        calibrated = self.model_threshold()
        if calibrated is not None:
            nearest = min(available, key=lambda t: (abs(t - calibrated), t))
            if not np.isclose(nearest, calibrated):
                logger.info("the model's calibrated threshold %s has no LUT; using the nearest, %s", calibrated, nearest)
            return nearest
        return _median(available)

    def stage_states(self) -> dict[str, dict[str, Any] | None]:
        """Every stage's recorded state in one place, by stage: ``{"complete", "config_hash",
        ...}`` or None where the stage has not run. The records themselves stay beside their
        outputs (a zarr group's ``axonseg`` attributes, ``graph/graph.json``,
        ``luts/agglomerate.json``, ``skeletons/config.yaml``, ``reports/best_threshold.json``),
        so each output and its state are replaced together."""
        store = self.path / "volume.zarr"

        def group(name: str) -> dict[str, Any] | None:
            attrs = group_state(store, name)
            if attrs is None:
                return None
            return {key: attrs.get(key) for key in ("complete", "config_hash", "threshold", "lut_file") if key in attrs}

        def record(path: Path) -> dict[str, Any] | None:
            if not path.exists():
                return None
            loaded = yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())
            return loaded if isinstance(loaded, dict) else None

        skeletons = record(self.skeletons_dir / "config.yaml")
        evaluated = record(self.path / BEST_THRESHOLD_FILE)
        return {
            "predict": group("affinities"), "fragments": group("fragments"),
            "graph": record(self.graph_dir / "graph.json"), "agglomerate": record(self.luts_dir / "agglomerate.json"),
            "relabel": group("segmentation"),
            "skeletonize": None if skeletons is None else {"complete": (self.skeletons_dir / "nodes.parquet").exists(),
                                                          "config_hash": skeletons.get("config_hash")},
            "evaluate": None if evaluated is None else {"complete": True, "threshold": evaluated.get("threshold")},
        }

    @functools.cached_property
    def _model_extra(self) -> dict[str, Any]:
        """The ``extra`` record of the run's model file, read once per RunFolder. Predict records
        the calibrated threshold on ``affinities`` (``model_threshold``); only runs predicted
        before that open the model file here, which imports torch (~100 MB in a job that
        otherwise never needs it, such as skeletonize)."""
        attrs = self._affinity_attrs()
        if "model_threshold" in attrs:
            return {"threshold": attrs["model_threshold"]}
        model = attrs.get("model")
        if not model or not Path(model).is_file():
            return {}
        import torch

        try:
            return torch.load(model, map_location="cpu", weights_only=True).get("extra") or {}
        except Exception:  # noqa: BLE001 - an unreadable model file simply carries no calibration
            return {}

    def model_threshold(self) -> float | None:
        """The agglomeration threshold the run's model was calibrated at on validation data
        (``threshold`` in the model file's ``extra``, written by training), or None: a model
        from before calibration, or a run without affinities of a known model file. When the
        LUTs were made by an edge classifier (agglomerate method ``learned``), its own calibrated
        threshold instead (None if it has none), since its scores are not affinities."""
        recorded = read_json(self.luts_dir / "agglomerate.json") or {}
        if "classifier_threshold" in recorded:
            value = recorded["classifier_threshold"]
            return None if value is None else float(value)
        value = self._model_extra.get("threshold")
        return None if value is None else float(value)

    def _affinity_attrs(self) -> dict[str, Any]:
        return group_state(self.path / "volume.zarr", "affinities") or {}

    def default_threshold(self) -> float:
        """:meth:`choose_threshold` with nothing asked: the threshold every job and the viewer
        use unless told otherwise."""
        return self.choose_threshold()

    # ---- labels ------------------------------------------------------------------------------
    def _open(self, name: str) -> Volume:
        volume = open_volume(self.store / name)
        check_label_volume(volume, name)
        return volume

    def _segmentation_made_from(self, threshold: float, lut: Lut) -> bool:
        """``segmentation/`` is complete and was made by relabel from this LUT and these fragments."""
        store = self.store
        if not group_exists(store, "segmentation"):
            return False
        attrs = group_attrs(store, "segmentation")
        made = attrs.get("config") or {}
        recorded = attrs.get("threshold")
        if not attrs.get("complete") or recorded is None or not np.isclose(float(recorded), threshold):
            return False
        fragments = group_attrs(store, "fragments").get("config_hash") if group_exists(store, "fragments") else None
        return made.get("lut") == lut.digest() and (fragments is None or made.get("fragments") == fragments)

    def labels(self, threshold: float | None = None) -> RunLabels:
        """The one segmentation the run shows, at :meth:`choose_threshold` of ``threshold``.

        ``segmentation/`` when relabel made it from that threshold's LUT (and the current
        fragments), else the fragments with that LUT applied per block; a run without LUTs
        shows its ``segmentation/`` as it is.

        Raises:
            InputError: no segmentation and no fragments with LUTs, or a bad ``threshold``.
        """
        store = self.store
        if not self.thresholds():
            if threshold is None and group_exists(store, "segmentation"):
                return RunLabels(self._open("segmentation"))
            if threshold is not None:
                self.choose_threshold(threshold)  # raises: no LUT for it
            raise InputError(f"{self.path}: no segmentation and no fragments with LUTs; run the segment stage first")
        chosen = self.choose_threshold(threshold)
        lut = self.lut(chosen)
        if self._segmentation_made_from(chosen, lut):
            return RunLabels(self._open("segmentation"), threshold=chosen)
        if not group_exists(store, "fragments"):
            raise InputError(f"{self.path}: no fragments to apply the LUT of threshold {chosen} to and no segmentation "
                             "made from it; run the segment stage first")
        logger.info("%s: fragments with the LUT of threshold %s", self.path, chosen)
        return RunLabels(self._open("fragments"), {chosen: lut}, chosen)

    def labels_for_evaluation(self) -> RunLabels:
        """Fragments with every LUT of the run, or, without LUTs, the run's segmentation.

        Raises:
            InputError: neither exists.
        """
        store = self.store
        files = self._lut_files()
        if files and group_exists(store, "fragments"):
            return RunLabels(self._open("fragments"), {t: read_lut(self.path, f) for t, f in files.items()})
        if group_exists(store, "segmentation"):
            return RunLabels(self._open("segmentation"))
        raise InputError(f"{self.path}: no segmentation and no fragments with LUTs to evaluate; run the segment stage first")

    # ---- recorded inputs ---------------------------------------------------------------------
    def inputs(self) -> dict[str, Any]:
        """What the run was made from, as ``axonseg segment`` recorded it.

        Returns:
            ``{"raw": {"address", "shape", "voxel_size"} | None, "model": str | None,
            "gt": str | None, "voxel_size": [z, y, x] nm (``--voxel-size``) | None,
            "synapses": str | None (the export's table or synth store; None: contact proxy),
            "config": {"job", "config_hash", "config"} | None}``; None where nothing was
            recorded (e.g. a run made stage by stage).
        """
        inputs_file = self.path / INPUTS_FILE
        recorded = json.loads(inputs_file.read_text()) if inputs_file.exists() else {}
        config_file = self.path / CONFIG_FILE
        config = None
        if config_file.exists():
            try:
                config = yaml.safe_load(config_file.read_text())
            except yaml.YAMLError as error:
                problem = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise InputError(f"{config_file}: not valid YAML ({problem}): expected the resolved run config") from None
        return {"raw": recorded.get("raw"), "model": recorded.get("model"), "gt": recorded.get("gt"),
                "voxel_size": recorded.get("voxel_size"), "synapses": recorded.get("synapses"), "config": config}

    def raw_address(self) -> str | None:
        """The address of the raw EM the run was made from: ``inputs.json`` (``axonseg
        segment``), else the source the predict stage recorded on ``affinities``; None when
        neither names one. The address may point to a file that has moved since."""
        recorded = self._inputs_file().get("raw")
        if isinstance(recorded, dict) and recorded.get("address"):
            return str(recorded["address"])
        raw = (self._affinity_attrs().get("config") or {}).get("raw") or {}
        return str(raw["source"]) if raw.get("source") else None

    def model_path(self) -> str | None:
        """The model file the run's affinities were predicted with (recorded on
        ``affinities``), else the model ``inputs.json`` names ("default": the shipped one for
        the raw's voxel size), or None."""
        recorded = self._affinity_attrs().get("model") or self._inputs_file().get("model")
        return str(recorded) if recorded else None

    def _inputs_file(self) -> dict[str, Any]:
        """``inputs.json`` as written (``{}`` when the run has none)."""
        path = self.path / INPUTS_FILE
        return json.loads(path.read_text()) if path.exists() else {}
