"""Jobs that glue I/O, blockwise execution and algorithms: one subpackage per multi-module job
(:mod:`.segment`, :mod:`.skeletonize`, :mod:`.evaluate`, :mod:`.export`), one module per
single-module job (ingest, synth, simulate, demo, proofread_demo, train).

Private modules (leading underscore) serve their own subpackage only; what jobs share is public:
:mod:`.run_folder` (:class:`RunFolder` owns a run's paths, LUTs and the one rule for its
threshold and labels) and :mod:`.labels` (the checks every label input passes).
"""

from axonseg.pipelines.run_folder import RunFolder

__all__ = ["RunFolder"]
