"""Jobs that glue I/O, blockwise execution and algorithms: one module per job.

:class:`RunFolder` owns a run's paths, LUTs and the one rule for its threshold and labels.
"""

from axonseg.pipelines.run_folder import RunFolder

__all__ = ["RunFolder"]
