"""The knobs of the synthetic generator, with their defaults and validation.

Every length is in nm so that a scene does not change with the voxel size.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from axonseg.errors import ConfigError


@dataclass(frozen=True)
class SynthOptions:
    """Options of :func:`axonseg.synth.generate_synth` (all lengths in nm).

    Attributes:
        fill_fraction: stop adding axons once this fraction of the volume lies in a neurite.
        dendrite_fraction: add dendrites first until they fill this fraction of the volume.
        axon_diameter_nm: (min, max) axon diameter; branches and swellings stay inside it.
        dendrite_diameter_nm: (min, max) dendrite shaft diameter.
        branch_probability: chance that an axon has a side branch (a second one: its square).
        spines_per_um: dendritic spines per um of dendrite inside the volume.
        max_neurites: hard cap on the number of neurites.
        gap: carve a one-voxel (in y and x) extracellular gap where two neurites touch.
        skeleton_step_nm: node spacing of the ground-truth skeletons (None: smallest voxel size).
        mitochondria_per_um: mitochondria per um of dendrite (axons get a third as many).
        synapses_per_um: at most this many synapses per um of axon, at axon-dendrite contacts.
        synapse_gap_nm: an axon "contacts" a dendrite when their surfaces are this close.
        membrane_nm: width (FWHM) of the dark profile of one membrane; with the extracellular
            gap and the blur, a boundary between two neurites is a line of about 25-35 nm.
        membrane_depth: how much a membrane line darkens the image at its centre (0: invisible,
            1: black).
        texture: scale of the cytoplasm texture (grain and dark specks); 0 gives flat cytoplasm.
        blur_nm: sigma of the in-section Gaussian blur.
        noise: standard deviation of the additive noise (grey levels, 0-255), added before the
            blur so that it is slightly correlated, as in real EM.
        section_jitter: relative standard deviation of each section's brightness.
        misaligned_rate: chance for each section to be shifted in y and x.
        missing_rate: chance for each section to be blank (uniform grey).
    """

    fill_fraction: float = 0.9
    dendrite_fraction: float = 0.3
    axon_diameter_nm: tuple[float, float] = (100.0, 300.0)
    dendrite_diameter_nm: tuple[float, float] = (500.0, 1500.0)
    branch_probability: float = 0.3
    spines_per_um: float = 1.5
    max_neurites: int = 5000
    gap: bool = True
    skeleton_step_nm: float | None = None
    mitochondria_per_um: float = 0.6
    synapses_per_um: float = 0.5
    synapse_gap_nm: float = 40.0
    membrane_nm: float = 14.0
    membrane_depth: float = 0.74
    texture: float = 1.0
    blur_nm: float = 5.0
    noise: float = 22.0
    section_jitter: float = 0.05
    misaligned_rate: float = 0.02
    missing_rate: float = 0.01


_FRACTIONS = ("fill_fraction", "dendrite_fraction", "branch_probability", "misaligned_rate", "missing_rate",
              "membrane_depth")
_NON_NEGATIVE = ("spines_per_um", "mitochondria_per_um", "synapses_per_um", "synapse_gap_nm",
                 "membrane_nm", "texture", "blur_nm", "noise", "section_jitter")


def make_options(**options: Any) -> SynthOptions:
    """Build :class:`SynthOptions` from keyword arguments, naming any bad key or value.

    Raises:
        ConfigError: an unknown option or a value out of its range.
    """
    known = {f.name for f in dataclasses.fields(SynthOptions)}
    for key in options:
        if key not in known:
            raise ConfigError(f"unknown synth option '{key}': expected one of {sorted(known)}")
    opts = SynthOptions(**options)
    for name in _FRACTIONS:
        value = getattr(opts, name)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"synth option {name}={value!r}: expected a number in [0, 1]")
    for name in _NON_NEGATIVE:
        value = getattr(opts, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"synth option {name}={value!r}: expected a non-negative number")
    for name in ("axon_diameter_nm", "dendrite_diameter_nm"):
        value = getattr(opts, name)
        try:
            low, high = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ConfigError(f"synth option {name}={value!r}: expected (min, max) in nm") from None
        if not 0 < low <= high:
            raise ConfigError(f"synth option {name}={value!r}: expected 0 < min <= max (nm)")
    if opts.dendrite_fraction > opts.fill_fraction:
        raise ConfigError(
            f"synth option dendrite_fraction={opts.dendrite_fraction} exceeds fill_fraction={opts.fill_fraction}"
        )
    if not isinstance(opts.max_neurites, int) or opts.max_neurites < 1:
        raise ConfigError(f"synth option max_neurites={opts.max_neurites!r}: expected a positive integer")
    step = opts.skeleton_step_nm
    if step is not None and (not isinstance(step, (int, float)) or not step > 0):
        raise ConfigError(f"synth option skeleton_step_nm={step!r}: expected a positive number of nm or None")
    return opts
