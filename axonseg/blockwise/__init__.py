"""The one place that knows about blocks: ROIs, context, done markers and dask execution."""

from axonseg.blockwise.block import Block, check_shape, make_blocks
from axonseg.blockwise.executor import RunSummary, one_thread_per_process, parse_scheduler, run_blockwise
from axonseg.blockwise.markers import DoneMarkers, changed_keys
from axonseg.blockwise.roi import Roi

__all__ = [
    "Block",
    "DoneMarkers",
    "Roi",
    "RunSummary",
    "changed_keys",
    "check_shape",
    "make_blocks",
    "one_thread_per_process",
    "parse_scheduler",
    "run_blockwise",
]
