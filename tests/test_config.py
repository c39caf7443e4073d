"""Configs: unknown keys, wrong types and missing voxel sizes are errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from axonseg.config import IngestConfig, config_hash, load_config, save_resolved
from axonseg.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write(tmp_path: Path, body: dict) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'chunk_size'"):
        load_config(_write(tmp_path, {"voxel_size": [30, 8, 8], "chunk_size": [64, 64, 64]}), IngestConfig)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key 'levels'"):
        load_config(_write(tmp_path, {"voxel_size": [30, 8, 8], "levels": "many"}), IngestConfig)


@pytest.mark.parametrize("voxel_size", [[30, 8], [0, 8, 8], [-1, 8, 8]])
def test_bad_voxel_size_is_named(tmp_path: Path, voxel_size) -> None:
    with pytest.raises(ConfigError, match="key 'voxel_size"):
        load_config(_write(tmp_path, {"voxel_size": voxel_size}), IngestConfig)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", IngestConfig)
    bad = tmp_path / "bad.yaml"
    bad.write_text("voxel_size: [30, 8\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, IngestConfig)


def test_hash_is_stable_and_changes_with_values(tmp_path: Path) -> None:
    a = IngestConfig(voxel_size=(30, 8, 8))
    assert config_hash(a) == config_hash(IngestConfig(voxel_size=(30.0, 8.0, 8.0)))
    assert config_hash(a) != config_hash(IngestConfig(voxel_size=(40, 8, 8)))
    digest = save_resolved(a, tmp_path / "config.yaml", job="ingest")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["config_hash"] == digest and saved["job"] == "ingest"
    assert IngestConfig.model_validate(saved["config"]) == a


def test_shipped_ingest_configs_validate() -> None:
    files = sorted(CONFIGS.glob("ingest_*.yaml"))
    assert files, "configs/ should ship ingest examples"
    for path in files:
        config = load_config(path, IngestConfig)
        assert config.voxel_size is not None
