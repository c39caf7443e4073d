"""Synthetic AxonEM-like EM volumes with dense ground truth (raw, axon labels, neurites, skeletons).

Example:
    >>> from axonseg.synth import generate_synth
    >>> vol = generate_synth(shape=(32, 128, 128), voxel_size=(30, 8, 8), seed=1)
    >>> vol.raw.dtype, vol.labels.dtype, len(vol.skeletons) > 0
    (dtype('uint8'), dtype('uint64'), True)
"""

from axonseg.synth.artifacts import Defects
from axonseg.synth.generate import SynthVolume, check_synth_size, generate_synth
from axonseg.synth.options import SynthOptions, make_options
from axonseg.synth.synapses import Synapses

__all__ = ["Defects", "SynthOptions", "SynthVolume", "Synapses", "check_synth_size", "generate_synth", "make_options"]
