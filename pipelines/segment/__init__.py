"""``axonseg segment``: the whole pipeline (:mod:`.pipeline`, ``configs/pipeline.yaml``) and its
segment stages, one module each: :mod:`.predict` (raw -> affinities), :mod:`.fragments`,
:mod:`.graph`, :mod:`.agglomerate` and :mod:`.relabel`, which :mod:`.stages` chains as
``axonseg agglomerate`` (``configs/agglomerate.yaml``, :mod:`.config`).

The pipeline's names (``run_segment``, ``load_pipeline_config``, ...) are loaded on first use,
so that importing one stage does not import the whole chain (torch, evaluation, export).
"""

from __future__ import annotations

import importlib
from typing import Any

_PIPELINE = ("PipelineConfig", "SegmentRun", "check_run_dir", "load_pipeline_config", "run_inputs", "run_segment")

__all__ = list(_PIPELINE)


def __getattr__(name: str) -> Any:
    if name in _PIPELINE:
        return getattr(importlib.import_module(f"{__name__}.pipeline"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
