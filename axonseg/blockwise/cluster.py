"""Cluster configs: a YAML file that dask-jobqueue turns into a SLURM cluster (never our own scheduler)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from axonseg.config import StrictModel, load_config
from axonseg.errors import ConfigError


class ClusterConfig(StrictModel):
    """One dask-jobqueue cluster: what each batch job asks for and how many jobs to start."""

    kind: Literal["slurm"] = "slurm"
    jobs: int = Field(4, ge=1, description="batch jobs to start (each runs `processes` dask workers)")
    cores: int = Field(8, ge=1, description="cores per job")
    memory: str = Field("32GB", description="memory per job, e.g. 32GB")
    processes: int = Field(1, ge=1, description="dask worker processes per job")
    walltime: str = Field("04:00:00", description="job time limit, HH:MM:SS")
    queue: str | None = Field(None, description="SLURM partition (-p)")
    account: str | None = Field(None, description="SLURM account (-A)")
    job_extra_directives: list[str] = Field(default_factory=list, description="extra #SBATCH lines")
    local_directory: str | None = Field(None, description="worker scratch folder on the compute node")
    scheduler_options: dict[str, Any] = Field(default_factory=dict, description="passed to the dask scheduler")


def load_cluster_config(path: str | Path) -> ClusterConfig:
    return load_config(path, ClusterConfig)


def make_cluster(config: ClusterConfig) -> Any:
    """Construct the dask-jobqueue cluster; jobs are submitted only when it is scaled."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ConfigError("a SLURM cluster needs dask-jobqueue: pip install dask-jobqueue") from None
    return SLURMCluster(
        cores=config.cores, memory=config.memory, processes=config.processes, walltime=config.walltime,
        queue=config.queue, account=config.account, job_extra_directives=config.job_extra_directives,
        local_directory=config.local_directory, scheduler_options=config.scheduler_options,
    )
