"""``axonseg export``: synapses -> weighted, delayed edges of a run, written as SONATA, NIR, CSV, PyNN.

Synapses come from a table (CSV/parquet with presets), a synth store's ground truth, or, when
neither is given, a contact PROXY. Points are looked up only in the chunks that hold them, in
the run's segmentation or its fragments through the current LUT. Outputs go to
``RUN/connectome/``, a hardware target's to ``RUN/connectome-<target>/`` (written to a temporary
folder and renamed into place). An export that finds no synapse is written, with a warning that
says why (also recorded in ``export.json`` for ``axonseg simulate``).

Proofreading: ``run_export(..., lut=...)`` takes the current fragment -> segment LUT (or a
function that returns it, e.g. one that replays ``edits.sqlite``); it is applied to the
fragment ids at the points, so an edited run exports without rewriting ``segmentation/``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import AliasChoices, Field, field_validator

from axonseg.config import StrictModel, Triple, config_hash, load_config, save_resolved
from axonseg.connectome import (
    EdgeParams,
    RootRule,
    brainscales2_pairs,
    build_connectome,
    classify_synapses,
    contacts_to_synapses,
    normalize_synapse_table,
    synapse_points,
    volume_box_nm,
)
from axonseg.connectome.nir_graph import LifParams
from axonseg.errors import ConfigError, InputError
from axonseg.io import group_exists, open_volume
from axonseg.io.synapse_tables import read_table
from axonseg.pipelines.export._lookup import LutSource, SegmentSource, contact_table, make_source, segment_ids_at
from axonseg.pipelines.export._output import check_output, empty_reason, output_folder
from axonseg.pipelines.export._writers import FORMATS, write_formats
from axonseg.pipelines.labels import check_label_volume
from axonseg.pipelines.run_folder import RunFolder
from axonseg.pipelines.skeletonize import open_run_skeletons
from axonseg.pipelines.synth import read_synth_synapses

logger = logging.getLogger(__name__)

STAGE = "export"
TARGETS = ("brainscales2",)


class ExportConfig(StrictModel):
    """How ``axonseg export`` runs (one flat YAML, ``configs/export.yaml``)."""

    synapses: str | None = Field(None, description="synapse table (CSV/parquet) or synth store .zarr[/synapses]; none: contact proxy")
    preset: str | None = Field(None, description="synapse table layout: axonseg, xyz, cave; default: detected")
    columns: dict[str, str] | None = Field(None, description="canonical name (pre_z_nm ... post_x_nm) -> the table's column")
    position_unit_nm: Triple = Field((1.0, 1.0, 1.0), description="nm per table coordinate unit (z, y, x)")
    confidence_column: str = "confidence"
    size_column: str = "size"
    min_confidence: float | None = Field(None, description="drop synapses below this confidence")
    proxy_min_area_nm2: float = Field(50000.0, ge=0, description="contact PROXY: smallest contact area in nm^2")
    proxy_block_shape: tuple[int, int, int] = Field((64, 256, 256), description="contact PROXY block shape (voxels, z y x)")
    threshold: float | None = Field(None, description="LUT threshold; default the evaluated best, else the median LUT")
    delays: bool = Field(True, description="compute delays from skeleton path lengths (needs `axonseg skeletonize`)")
    synaptic_delay_ms: float = Field(0.5, ge=0, description="synaptic delay in ms")
    conduction_velocity_m_per_s: float = Field(0.3, gt=0, description="axonal conduction velocity in m/s")
    root_point_nm: Triple | None = Field(None, description="skeleton root: the endpoint nearest this point (nm, z y x)")
    soma_min_radius_nm: float = Field(1500.0, gt=0, description="a skeleton node at least this thick (nm) is a soma root")
    boundary_tolerance_voxels: float = Field(3.0, ge=0, description="endpoints this close to a volume face are on the boundary")
    unit_weight: float = Field(1.0, description="weight of one synapse")
    weight_by: str = Field("count", description="count (unit weight per synapse) or size (unit weight x size)")
    sign_table: str | None = Field(None, description="per-segment table: segment_id + sign/transmitter/cell_type")
    sign_column: str | None = Field(None, description="the sign table's column; default detected")
    nir_delay_resolution_ms: float = Field(0.1, gt=0, description="NIR: delays rounded to this grid (ms)")
    nir_max_delay_groups: int = Field(16, ge=1, description="NIR: most Delay nodes")
    nir_keep_delays: bool = Field(False, description="NIR: write Delay nodes (norse drops them, snntorch refuses them)")
    nir_dt_ms: float = Field(0.1, gt=0, description="NIR: the step CubaLIF r and w_in are scaled for (snntorch needs 0.1)")
    lif_tau_syn_ms: float = 5.0
    lif_tau_mem_ms: float = 20.0
    lif_v_threshold: float = 1.0
    n_threads: int = Field(4, ge=1, validation_alias=AliasChoices("n_threads", "lookup_workers"),
                           description="threads reading chunks for the point lookup (lookup_workers is the old name)")

    @field_validator("weight_by")
    @classmethod
    def _weight_by(cls, value: str) -> str:
        if value not in ("count", "size"):
            raise ValueError("weight_by must be 'count' or 'size'")
        return value


def load_export_config(path: str | Path | None = None) -> ExportConfig:
    """The config from a YAML file, or the defaults when ``path`` is None."""
    return ExportConfig() if path is None else load_config(path, ExportConfig)


@dataclass
class ExportResult:
    """What the export wrote: ``folder`` (RUN/connectome), ``files``, counts and the drop report."""

    folder: Path
    files: list[Path]
    n_nodes: int
    n_synapses: int
    n_pairs: int
    drops: dict
    proxy: bool
    report: dict = field(default_factory=dict)
    empty_reason: str | None = None


def _formats(formats: str | list[str]) -> list[str]:
    items = [formats] if isinstance(formats, str) else list(formats)
    chosen = list(FORMATS) if "all" in items else items
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ConfigError(f"--format {bad or items}: expected one or more of {list(FORMATS)} or all")
    return chosen


def _read_synapses(address: str, config: ExportConfig) -> tuple[pd.DataFrame, int]:
    """The canonical table and how many rows ``min_confidence`` dropped."""
    path = Path(address)
    if path.suffix == ".zarr" or (path.name == "synapses" and path.parent.suffix == ".zarr"):
        return read_synth_synapses(path), 0
    table = normalize_synapse_table(read_table(path), config.preset, config.columns, config.position_unit_nm,
                                    config.confidence_column, config.size_column)
    below = 0
    if config.min_confidence is not None:
        keep = ~(table["confidence"].to_numpy() < config.min_confidence)
        below = int((~keep).sum())
        logger.info("min_confidence %.3g: dropped %d synapses", config.min_confidence, below)
        table = table[keep].reset_index(drop=True)
    return table, below


def _label_source(run: RunFolder, config: ExportConfig, lut: LutSource) -> SegmentSource:
    """The given (proofread) LUT on the fragments, else the labels the run folder shows."""
    if lut is not None:
        store = run.store
        if not group_exists(store, "fragments"):
            raise InputError(f"{run.path}: a LUT was given but the run has no volume.zarr/fragments to apply it to")
        volume = open_volume(store / "fragments")
        check_label_volume(volume, "fragments")
        return make_source(volume, lut, f"{volume.source} with the given (current) LUT")
    labels = run.labels(config.threshold)
    return make_source(labels.volume, labels.lut, labels.describe())


def _fresh_folder(folder: Path) -> Path:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def run_export(run_dir: str | Path, formats: str | list[str] = "sonata", synapses: str | Path | None = None,
               target: str | None = None, overwrite: bool = False, config: ExportConfig | None = None,
               lut: LutSource = None, skeletons: dict | None = None, written_by: str = "export") -> ExportResult:
    """Export a run's connectome.

    Args:
        run_dir: the run folder.
        formats: ``sonata``, ``nir``, ``csv``, ``pynn``, a list of them, or ``all``.
        synapses: synapse table or synth store; overrides ``config.synapses``; none: the one
            ``axonseg segment`` recorded for the run (``inputs.json``), else the contact proxy.
        target: ``brainscales2`` applies that hardware's limits (no delays, weights 0..63, sign
            as receptor type, at most 512 neurons); written to ``RUN/connectome-<target>``.
        overwrite: replace an existing export folder (one that ``segment`` wrote is replaced anyway).
        config: export settings; defaults when None.
        lut: the current fragment -> segment LUT, or a function returning it (proofreading);
            None: the labels the run folder shows at ``config.threshold``
            (:meth:`RunFolder.labels`).
        skeletons: ``{segment_id: AxonGraph}`` to use instead of ``RUN/skeletons`` (e.g. updated
            after edits).
        written_by: the command recorded in ``export.json``; ``segment`` marks an export that a
            later ``axonseg export`` may replace without ``overwrite``.

    Returns:
        An :class:`ExportResult`; ``empty_reason`` says why no synapse was kept (None otherwise).
    """
    run_dir = Path(run_dir)
    config = config or ExportConfig()
    chosen = _formats(formats)
    if target is not None and target not in TARGETS:
        raise ConfigError(f"--target {target!r}: expected one of {list(TARGETS)}")
    run = RunFolder(run_dir)
    run.store  # noqa: B018 - refuses a folder that is not a run before anything is written
    with_delays = config.delays and target != "brainscales2"
    if with_delays and skeletons is None and not (run.skeletons_dir / "nodes.parquet").exists():
        raise InputError(f"{run_dir}: delays need skeletons and the run has none; run `axonseg skeletonize {run_dir}` "
                         "first (or set delays: false)")
    folder = output_folder(run_dir, target)
    check_output(folder, overwrite)
    signs = read_table(config.sign_table, "sign table") if config.sign_table else None
    source = _label_source(run, config, lut)
    address = synapses if synapses is not None else config.synapses
    if address is None:  # the table or synth store `axonseg segment` exported this run with
        address = run.inputs()["synapses"]
    proxy = address is None
    below_confidence = 0
    if proxy:
        logger.warning("no synapse table: using the contact PROXY (contacts >= %.0f nm^2, both directions)",
                       config.proxy_min_area_nm2)
        table = contacts_to_synapses(contact_table(source, config.proxy_block_shape), config.proxy_min_area_nm2)
        inside = np.ones(len(table), dtype=bool)
    else:
        table, below_confidence = _read_synapses(str(address), config)
        pre, post = synapse_points(table)
        ids, inside = segment_ids_at(source, np.concatenate([pre, post]), config.n_threads)
        inside = inside[: len(table)] & inside[len(table):]
        table["pre_id"], table["post_id"] = ids[: len(table)], ids[len(table):]
    pre, post = synapse_points(table)
    keep, drops = classify_synapses(pre, post, inside, table["pre_id"].to_numpy(), table["post_id"].to_numpy())
    if drops.dropped["outside_volume"]:
        logger.warning("%d synapses have a point outside the volume: dropped", drops.dropped["outside_volume"])
    logger.info("export: %s", drops.summary())
    empty = None if keep.any() else empty_reason(proxy, None if proxy else str(address), len(table), drops,
                                                   config.proxy_min_area_nm2, below_confidence)
    if empty is not None:
        logger.warning("export: the connectome is EMPTY (0 neurons, 0 synapses): %s", empty)
    volume = source.volume
    begin, end = volume_box_nm(volume.spatial_shape, volume.voxel_size, volume.offset)
    rule = RootRule(begin, end, tuple(config.boundary_tolerance_voxels * v for v in volume.voxel_size),
                    config.soma_min_radius_nm, config.root_point_nm)
    graphs = (skeletons if skeletons is not None else open_run_skeletons(run_dir)) if with_delays else {}
    params = EdgeParams(config.synaptic_delay_ms, config.conduction_velocity_m_per_s, config.unit_weight,
                        config.weight_by, with_delays)
    kept = table[keep].reset_index(drop=True)
    if proxy:
        kept["source"] = "contact_proxy"
    connectome = build_connectome(kept, graphs, params, rule, signs, config.sign_column, drops)
    hardware = brainscales2_pairs(connectome.pairs, connectome.n_nodes) if target == "brainscales2" else None
    lif = LifParams(tau_syn_ms=config.lif_tau_syn_ms, tau_mem_ms=config.lif_tau_mem_ms, v_threshold=config.lif_v_threshold,
                    dt_ms=config.nir_dt_ms)
    report = {
        "source": source.description, "synapses": "contact_proxy" if proxy else str(address), "proxy": proxy,
        "formats": chosen, "target": target, "n_nodes": connectome.n_nodes, "n_synapses": len(connectome.synapses),
        "n_pairs": len(connectome.pairs), "drops": drops.to_dict(), "delays": with_delays,
        "root_methods": connectome.path_lengths.root_methods if connectome.path_lengths else {},
        "n_without_skeleton": connectome.path_lengths.n_without_skeleton if connectome.path_lengths else None,
        "config_hash": config_hash(config), "written_by": written_by, "empty_reason": empty,
    }
    tmp = _fresh_folder(folder)
    try:
        files = write_formats(tmp, chosen, connectome, hardware, lif, config.nir_delay_resolution_ms,
                              config.nir_max_delay_groups, config.nir_keep_delays and with_delays)
        (tmp / "export.json").write_text(json.dumps(report, indent=1))
        save_resolved(config, tmp / "config.yaml", job=STAGE)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written stays behind
        raise
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    files = [folder / f.relative_to(tmp) for f in files]
    logger.info("export: %d nodes, %d synapses, %d pairs -> %s", connectome.n_nodes, len(connectome.synapses),
                len(connectome.pairs), folder)
    return ExportResult(folder, files, connectome.n_nodes, len(connectome.synapses), len(connectome.pairs),
                        drops.to_dict(), proxy, report, empty)
