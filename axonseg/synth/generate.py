"""Entry point of the synthetic AxonEM-like generator: a seeded scene in nm, rasterised and imaged.

Geometry, synapses and organelles come from random streams that do not depend on the voxel size,
so one seed gives the same physical scene at 30x8x8 nm or 10x10x10 nm.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from axonseg.errors import InputError
from axonseg.io.volume import check_voxel_size
from axonseg.synth.artifacts import Defects, image_sections
from axonseg.synth.geometry import build_scene
from axonseg.synth.options import SynthOptions, make_options
from axonseg.synth.organelles import place_organelles
from axonseg.synth.rasterize import rasterize
from axonseg.synth.render import render_tissue
from axonseg.synth.skeletons import axon_skeletons
from axonseg.synth.synapses import Synapses, find_contacts, resolve_synapses, swell_boutons

log = logging.getLogger(__name__)

#: Peak memory of :func:`generate_synth` per voxel, bytes: 66 measured (tracemalloc) at 32x128x128
#: and 32x256x256; the volume is built whole in memory before it is written.
SYNTH_BYTES_PER_VOXEL = 72


@dataclass
class SynthVolume:
    """A synthetic EM volume with dense ground truth (all arrays zyx, positions in nm).

    Attributes:
        raw: uint8 EM image.
        labels: uint64 axon instances only (0 elsewhere), as in AxonEM.
        neurites: uint64 every neurite (axons and dendrites); 0 = extracellular space.
        skeletons: {axon id: (nodes (N, 3) float64 nm zyx, edges (E, 2) int64)} for every id in
            ``labels``; node p lies in voxel floor(p / voxel_size).
        kinds: {neurite id: "axon" or "dendrite"} for every id in ``neurites``.
        voxel_size: nm, zyx.
        synapses: pre (axon) / post (dendrite) points in nm, or None when disabled.
        defects: misaligned and missing sections of ``raw``.
        seed: the seed the volume was made from.
        options: the options in force.
    """

    raw: np.ndarray
    labels: np.ndarray
    neurites: np.ndarray
    skeletons: dict[int, tuple[np.ndarray, np.ndarray]]
    kinds: dict[int, str]
    voxel_size: tuple[float, float, float]
    synapses: Synapses | None = None
    defects: Defects = field(default_factory=Defects)
    seed: int = 0
    options: SynthOptions = field(default_factory=SynthOptions)


def _check_shape(shape: Any) -> tuple[int, int, int]:
    try:
        values = tuple(shape)
    except TypeError:
        raise InputError(f"shape={shape!r}: expected three positive integers (z y x, voxels)") from None
    if len(values) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0
                                   for v in values):
        raise InputError(f"shape={list(values)!r}: expected three positive integers (z y x, voxels)")
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def check_synth_size(shape: Any, available_bytes: int | None = None) -> tuple[int, int, int]:
    """Refuse a shape whose volume would not fit in memory, before anything is allocated.

    Args:
        shape: volume size in voxels, zyx.
        available_bytes: memory that may be used; None: what the machine has available now.

    Returns:
        The shape as three ints.

    Raises:
        InputError: a bad shape, or one needing more than ``available_bytes``.
    """
    shape = _check_shape(shape)
    if available_bytes is None:
        import psutil

        available_bytes = int(psutil.virtual_memory().available)
    voxels = int(np.prod(shape, dtype=object))
    needed = voxels * SYNTH_BYTES_PER_VOXEL
    if needed > available_bytes:
        largest = available_bytes // SYNTH_BYTES_PER_VOXEL
        raise InputError(
            f"--shape {' '.join(map(str, shape))}: a synthetic volume of {voxels:,} voxels needs about "
            f"{_size(needed)} of memory but {_size(available_bytes)} are available: expected at most about "
            f"{largest:,} voxels (z*y*x), e.g. --shape 64 256 256"
        )
    return shape


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:,.0f} MiB"


def _check_seed(seed: Any) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed={seed!r}: expected a non-negative integer")
    return int(seed)


def generate_synth(shape: Any = (64, 256, 256), voxel_size: Any = (30.0, 8.0, 8.0), seed: Any = 0,
                   **options: Any) -> SynthVolume:
    """Generate an AxonEM-like EM volume of cortical neuropil with dense ground truth.

    Args:
        shape: volume size in voxels, zyx.
        voxel_size: voxel size in nm, zyx (AxonEM: 30 x 8 x 8).
        seed: non-negative integer; the same seed gives bitwise identical arrays.
        **options: fields of :class:`axonseg.synth.options.SynthOptions` (lengths in nm).

    Returns:
        The :class:`SynthVolume`.

    Raises:
        InputError: bad shape, voxel size or seed, or a shape too large for the memory available.
        ConfigError: an unknown option or a value out of range.
    """
    shape = check_synth_size(shape)
    voxel_size = check_voxel_size(voxel_size, "voxel_size")
    seed = _check_seed(seed)
    opts = make_options(**options)
    extent = tuple(float(s * v) for s, v in zip(shape, voxel_size))
    streams = np.random.SeedSequence(seed).spawn(5)
    geometry_rng, synapse_rng, organelle_rng, render_rng, imaging_rng = (np.random.default_rng(s) for s in streams)
    clock = time.perf_counter()

    scene = build_scene(extent, opts, geometry_rng)
    contacts = find_contacts(scene, extent, opts.synapses_per_um, opts.synapse_gap_nm, synapse_rng)
    swell_boutons(scene, contacts, opts.axon_diameter_nm[1] / 2.0, synapse_rng)
    neurites, _ = rasterize(scene, shape, voxel_size, gap=opts.gap)

    present = np.unique(neurites)
    present = present[present > 0]
    kind_of = {n.id: n.kind for n in scene}
    kinds = {int(i): kind_of[int(i)] for i in present}
    step = opts.skeleton_step_nm if opts.skeleton_step_nm is not None else min(voxel_size)
    skeletons = axon_skeletons(scene, neurites, voxel_size, step)

    n_ids = max(n.id for n in scene) + 1 if scene else 1
    is_axon = np.zeros(n_ids, dtype=bool)
    is_axon[[n.id for n in scene if n.kind == "axon"]] = True
    has_skeleton = np.zeros(n_ids, dtype=bool)
    has_skeleton[list(skeletons)] = True
    labels = np.where(has_skeleton[neurites], neurites, np.uint64(0)).astype(np.uint64)

    synapses = None
    if opts.synapses_per_um > 0:
        synapses = resolve_synapses(contacts, neurites, voxel_size, opts.synapse_gap_nm)
    organelles = place_organelles(scene, synapses if synapses is not None else Synapses.empty(), extent,
                                  opts.mitochondria_per_um, organelle_rng)
    clean = render_tissue(neurites, is_axon, organelles, voxel_size, opts.membrane_nm, render_rng,
                          membrane_depth=opts.membrane_depth, texture=opts.texture)
    raw, defects = image_sections(clean, voxel_size, opts.blur_nm, opts.noise, opts.section_jitter,
                                  opts.misaligned_rate, opts.missing_rate, imaging_rng)
    log.info("synth %s at %s nm: %d neurites (%d axons), %d synapses in %.1f s", shape, voxel_size,
             len(kinds), len(skeletons), 0 if synapses is None else len(synapses), time.perf_counter() - clock)
    return SynthVolume(raw=raw, labels=labels, neurites=neurites, skeletons=skeletons, kinds=kinds,
                       voxel_size=voxel_size, synapses=synapses, defects=defects, seed=seed, options=opts)
