"""Cluster schedulers: the shipped SLURM config builds a dask-jobqueue cluster without submitting,
and a scheduler address that does not answer is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from axonseg.blockwise import executor, make_blocks, parse_scheduler, run_blockwise
from axonseg.blockwise.cluster import load_cluster_config, make_cluster
from axonseg.errors import ConfigError, StageError

SLURM = Path(__file__).resolve().parents[2] / "configs" / "cluster" / "slurm.yaml"


def test_shipped_slurm_config_constructs_a_cluster_without_submitting() -> None:
    pytest.importorskip("dask_jobqueue")
    config = load_cluster_config(SLURM)
    assert parse_scheduler(str(SLURM)) == ("cluster", None, str(SLURM))
    local = config.model_copy(update={"scheduler_options": {"host": "127.0.0.1", "dashboard_address": ":0"},
                                      "queue": "compute", "job_extra_directives": ["--exclusive"]})
    cluster = make_cluster(local)
    try:
        script = cluster.job_script()
        assert "#SBATCH -p compute" in script and "#SBATCH --exclusive" in script
        assert f"--cpus-per-task={config.cores}" in script and "-t 04:00:00" in script
        assert len(cluster.workers) == 0  # constructed, nothing submitted
    finally:
        cluster.close()


def test_cluster_config_rejects_unknown_keys(tmp_path: Path) -> None:
    bad = tmp_path / "slurm.yaml"
    bad.write_text("kind: slurm\ncpus: 8\n")
    with pytest.raises(ConfigError, match="unknown key 'cpus'"):
        load_cluster_config(bad)


@pytest.mark.timeout(60)
def test_unreachable_scheduler_times_out_with_a_clear_message(monkeypatch) -> None:
    monkeypatch.setattr(executor, "CONNECT_TIMEOUT", "2s")
    blocks = make_blocks((4, 4, 4), (4, 4, 4))
    with pytest.raises(StageError, match=r"scheduler tcp://127\.0\.0\.1:9 did not answer within 2s"):
        run_blockwise(blocks, repr, scheduler="tcp://127.0.0.1:9", show_progress=False)
