"""Write a synthetic AxonEM-like volume into a zarr store: raw, labels, neurites, GT skeletons and synapses."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import yaml
import zarr

from axonseg.config import IngestConfig
from axonseg.errors import ConfigError, InputError, OutputExistsError
from axonseg.io import Volume, mark_complete
from axonseg.pipelines.ingest import ingest_volume

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthResult:
    store: Path
    n_axons: int
    n_neurites: int
    n_synapses: int


def write_skeletons(store: Path, skeletons: dict[int, tuple[np.ndarray, np.ndarray]], voxel_size) -> None:  # noqa: ANN001
    """Store skeletons flat in ``store/skeletons``: per node its segment id and position (nm, zyx).

    Arrays: ``segment_id`` (N,) uint64, ``position_nm`` (N, 3) float64 zyx, ``edges`` (E, 2)
    int64 indexing the node arrays. The group is flagged complete after the write.
    """
    ids, positions, edges, base = [], [], [], 0
    for segment_id in sorted(skeletons):
        nodes, segment_edges = skeletons[segment_id]
        ids.append(np.full(len(nodes), segment_id, dtype=np.uint64))
        positions.append(np.asarray(nodes, dtype=np.float64).reshape(-1, 3))
        edges.append(np.asarray(segment_edges, dtype=np.int64).reshape(-1, 2) + base)
        base += len(nodes)
    root = zarr.open_group(store=str(store), mode="a", zarr_format=3)
    group = root.create_group("skeletons", overwrite=True)
    group.attrs["axonseg"] = {"complete": False, "kind": "skeletons", "units": "nm", "axes": "zyx",
                              "voxel_size": list(map(float, voxel_size))}
    for name, parts, width, dtype in (("segment_id", ids, None, np.uint64), ("position_nm", positions, 3, np.float64),
                                      ("edges", edges, 2, np.int64)):
        shape = (0,) if width is None else (0, width)
        data = np.concatenate(parts) if parts else np.zeros(shape, dtype=dtype)
        group.create_array(name, data=data.astype(dtype))
    mark_complete(store, "skeletons")


def read_skeletons(store: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Read what :func:`write_skeletons` wrote: ``{segment_id: (nodes_nm (N,3) zyx, edges (E,2))}``."""
    group = zarr.open_group(store=str(store), path="skeletons", mode="r")
    ids = group["segment_id"][:]
    positions = group["position_nm"][:]
    edges = group["edges"][:]
    result: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if len(ids) == 0:
        return result
    order = np.argsort(ids, kind="stable")
    unique, starts = np.unique(ids[order], return_index=True)
    edge_owner = ids[edges[:, 0]] if len(edges) else np.zeros(0, dtype=np.uint64)
    for segment_id, start, end in zip(unique, starts, list(starts[1:]) + [len(ids)]):
        node_index = order[start:end]
        remap = np.full(len(ids), -1, dtype=np.int64)
        remap[node_index] = np.arange(len(node_index))
        own = edges[edge_owner == segment_id]
        result[int(segment_id)] = (positions[node_index], remap[own])
    return result


def write_synapses(store: Path, pre_ids: np.ndarray, post_ids: np.ndarray, pre_nm: np.ndarray,
                   post_nm: np.ndarray) -> None:
    """Store ground-truth synapses in ``store/synapses``: ``pre_nm``/``post_nm`` (S, 3) float64 nm zyx,
    ``pre_id``/``post_id`` (S,) uint64. The group is flagged complete after the write.
    """
    root = zarr.open_group(store=str(store), mode="a", zarr_format=3)
    group = root.create_group("synapses", overwrite=True)
    group.attrs["axonseg"] = {"complete": False, "kind": "synapses", "units": "nm", "axes": "zyx"}
    for name, data, dtype in (("pre_nm", pre_nm, np.float64), ("post_nm", post_nm, np.float64),
                              ("pre_id", pre_ids, np.uint64), ("post_id", post_ids, np.uint64)):
        shape = (-1, 3) if name.endswith("_nm") else (-1,)
        group.create_array(name, data=np.asarray(data, dtype=dtype).reshape(shape))
    mark_complete(store, "synapses")


def read_synth_synapses(address: str | Path) -> pd.DataFrame:
    """Ground-truth synapses of a synth store (``STORE.zarr`` or ``STORE.zarr/synapses``).

    Returns:
        A canonical synapse table (:mod:`axonseg.connectome.tables`): ``pre_z_nm ... post_x_nm``
        (nm, zyx), ``confidence`` (NaN), ``size`` (1), ``gt_pre_id`` and ``gt_post_id`` (uint64).
    """
    from axonseg.connectome.tables import synapses_from_arrays

    path = Path(address)
    store = path.parent if path.name == "synapses" else path
    if not (store / "synapses" / "zarr.json").exists():
        raise InputError(f"{store}: no synapses group; write it with `axonseg synth` (or give a CSV/parquet table)")
    group = zarr.open_group(store=str(store), path="synapses", mode="r")
    if not dict(group.attrs).get("axonseg", {}).get("complete", False):
        raise InputError(f"{store}/synapses is incomplete (an interrupted write): run `axonseg synth` again")
    return synapses_from_arrays(group["pre_nm"][:], group["post_nm"][:], gt_pre_id=group["pre_id"][:],
                                gt_post_id=group["post_id"][:])


def store_synapses(raw_address: str | Path) -> str | None:
    """``STORE.zarr/synapses`` when ``raw_address`` lies in a zarr store that holds complete
    ground-truth synapses (``axonseg synth`` output), else None."""
    from axonseg.io import group_state, parse_address

    try:
        address = parse_address(raw_address)
    except Exception:  # noqa: BLE001 - an address we cannot parse has no store synapses
        return None
    if address.kind != "zarr":
        return None
    state = group_state(address.path, "synapses")
    return f"{address.path}/synapses" if state is not None and state.get("complete") else None


def parse_synth_options(items: list[str]) -> dict:
    """``["membrane_nm=20", "axon_diameter_nm=80,250", "gap=false"]`` as generator options: numbers,
    comma-separated pairs, or true/false (checked by :func:`write_synth`).

    Raises:
        ConfigError: an item without ``=`` or with a value that is none of those.
    """
    options: dict = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {item!r}: expected KEY=VALUE, e.g. membrane_nm=20")
        try:
            value = yaml.safe_load(f"[{text}]" if "," in text else text)
        except yaml.YAMLError:
            value = None
        if isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, (int, float, bool, tuple)) or (isinstance(value, tuple) and len(value) != 2):
            raise ConfigError(f"--option {item!r}: expected a number, a pair 'min,max' or true/false")
        options[key.strip()] = value
    return options


def write_synth(
    out: str | Path,
    shape: tuple[int, int, int] = (64, 256, 256),
    voxel_size: tuple[float, float, float] | None = (30.0, 8.0, 8.0),
    seed: int = 0,
    overwrite: bool = False,
    chunk_shape: tuple[int, int, int] = (32, 128, 128),
    show_progress: bool = True,
    options: dict | None = None,
) -> SynthResult:
    """Generate a synthetic volume (:func:`axonseg.synth.generate_synth`) and store it as OME-Zarr.

    Args:
        out: the output ``.zarr`` folder.
        shape: volume shape in voxels (zyx).
        voxel_size: nm (zyx); AxonEM's 30x8x8 by default.
        seed: random seed; equal seeds give bitwise-equal output.
        overwrite: replace an existing store.
        chunk_shape: zarr chunk shape in voxels (zyx).
        show_progress: draw progress bars.
        options: generator options (:class:`axonseg.synth.options.SynthOptions` fields, lengths in
            nm), checked before an existing store is touched; recorded in the store's attributes.

    Raises:
        InputError: a bad shape, or one too large for the memory available (checked before an
            existing store is touched).
        OutputExistsError: ``out`` exists and ``overwrite`` is False.
    """
    from axonseg.synth import check_synth_size, generate_synth
    from axonseg.synth.options import make_options

    out = Path(out)
    shape = check_synth_size(shape)
    options = dict(options or {})
    make_options(**options)  # a bad key or value fails here, before anything is written
    if out.exists():
        if not overwrite:
            raise OutputExistsError(f"{out} exists already; pass --overwrite to replace it")
        shutil.rmtree(out)
    volume = generate_synth(shape=shape, voxel_size=voxel_size or (30.0, 8.0, 8.0), seed=seed, **options)
    size = tuple(float(v) for v in volume.voxel_size)
    for name, data, kind in (("raw", volume.raw, "raw"), ("labels", volume.labels, "labels"),
                             ("neurites", volume.neurites, "labels")):
        config = IngestConfig(voxel_size=size, chunk_shape=chunk_shape, kind=kind, levels=3)
        lazy = Volume(da.from_array(data, chunks=chunk_shape), size, source=f"synth seed {seed} {name}")
        ingest_volume(lazy, out, name, config, show_progress=show_progress)
    write_skeletons(out, volume.skeletons, size)
    synapses = getattr(volume, "synapses", None)
    n_synapses = 0 if synapses is None else len(getattr(synapses, "pre_nm", synapses))
    if synapses is not None:
        write_synapses(out, synapses.pre_ids, synapses.post_ids, synapses.pre_nm, synapses.post_nm)
    root = zarr.open_group(store=str(out), mode="a")
    root.attrs["axonseg"] = {"synth": {"seed": seed, "shape": list(shape), "voxel_size": list(size), "options": options,
                                       "kinds": {str(k): v for k, v in getattr(volume, "kinds", {}).items()}}}
    return SynthResult(out, len(volume.skeletons), int(len(np.unique(volume.neurites)) - 1), n_synapses)
