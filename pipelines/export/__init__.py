"""``axonseg export`` (:mod:`.job`, ``configs/export.yaml``): synapses -> weighted, delayed
edges of a run, written as SONATA, NIR, CSV and PyNN.
"""

from axonseg.pipelines.export.job import ExportConfig, ExportResult, load_export_config, run_export

__all__ = ["ExportConfig", "ExportResult", "load_export_config", "run_export"]
