"""Proofreading edit model: merge, split (min-cut), undo and redo over the fragment -> segment
LUT, kept as an append-only log (``RUN/edits.sqlite``). No GUI here; see ``axonseg.viewer``.
"""

from axonseg.proofread.candidates import Candidates, dangling_ends, uncertain_merges
from axonseg.proofread.log import EditLog
from axonseg.proofread.records import EditRecord, Move
from axonseg.proofread.session import ProofreadSession, SplitPreview, lut_digest
from axonseg.proofread.split import FragmentAdjacency, min_cut_sides
from axonseg.proofread.state import EditRefused, Flag, LutState

__all__ = [
    "Candidates",
    "EditLog",
    "EditRecord",
    "EditRefused",
    "Flag",
    "FragmentAdjacency",
    "LutState",
    "Move",
    "ProofreadSession",
    "SplitPreview",
    "dangling_ends",
    "lut_digest",
    "min_cut_sides",
    "uncertain_merges",
]
