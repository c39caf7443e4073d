"""ModelConfig: the voxel sizes a model accepts, and what counts as the same architecture."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from axonseg.model.checkpoint import model_config_from_json
from axonseg.model.config import ModelConfig

ANISO = dict(voxel_size=(30.0, 8.0, 8.0), downsample_factors=[(1, 2, 2)])
RANGE = ((30.0, 40.0), (6.0, 10.0), (6.0, 10.0))


def test_without_a_range_only_the_voxel_size_within_five_percent_is_accepted():
    cfg = ModelConfig(**ANISO)
    assert cfg.accepts_voxel_size((30.0, 8.0, 8.0)) and cfg.accepts_voxel_size((31.4, 8.3, 7.7))
    assert not cfg.accepts_voxel_size((32.0, 8.0, 8.0)) and not cfg.accepts_voxel_size((36.0, 7.0, 7.0))
    assert not cfg.accepts_voxel_size((30.0, 8.0))
    assert cfg.voxel_size_text() == "30 8 8 nm"


def test_a_range_widens_what_is_accepted_per_axis():
    cfg = ModelConfig(**ANISO, voxel_size_range=RANGE)
    for inside in ((36.0, 7.0, 7.0), (40.0, 6.0, 10.0), (42.0, 10.5, 5.7), (30.0, 8.0, 8.0)):
        assert cfg.accepts_voxel_size(inside), inside
    for outside in ((28.0, 8.0, 8.0), (35.0, 5.5, 8.0), (35.0, 8.0, 10.6), (10.0, 10.0, 10.0)):
        assert not cfg.accepts_voxel_size(outside), outside
    assert cfg.voxel_size_text() == "30-40 6-10 6-10 nm (z y x)"


def test_a_range_must_hold_the_voxel_size_and_be_ordered():
    with pytest.raises(ValidationError, match=r"voxel_size_range z: \(31\.0, 40\.0\) nm does not hold voxel_size 30\.0"):
        ModelConfig(**ANISO, voxel_size_range=((31.0, 40.0), (6.0, 10.0), (6.0, 10.0)))
    with pytest.raises(ValidationError, match=r"voxel_size_range y: \(10\.0, 6\.0\) nm: expected 0 < min <= max"):
        ModelConfig(**ANISO, voxel_size_range=((30.0, 40.0), (10.0, 6.0), (6.0, 10.0)))


def test_the_range_is_not_part_of_the_architecture():
    """A run resumed with a range added (fib_v4, aniso_v2: checkpoints written before the field
    existed, whose JSON has no such key) builds the same network; any other change does not."""
    plain = ModelConfig(**ANISO)
    old_json = plain.model_dump_json().replace(',"voxel_size_range":null', "")
    assert "voxel_size_range" not in old_json
    stored = model_config_from_json(old_json)
    assert stored == plain and stored.same_architecture(ModelConfig(**ANISO, voxel_size_range=RANGE))
    assert not stored.same_architecture(ModelConfig(**{**ANISO, "voxel_size": (40.0, 8.0, 8.0)}))
    assert not stored.same_architecture(ModelConfig(**ANISO, num_fmaps=4))
