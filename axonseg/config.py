"""Typed, flat YAML configs: pydantic models that reject unknown keys and name the bad one."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from axonseg.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{key}'"
    if kind == "missing":
        return f"{source}: missing key '{key}'"
    return f"{source}: key '{key}': {first['msg']} (got {first.get('input')!r})"


def validate_config(model: type[ModelT], data: dict[str, Any], source: str = "config") -> ModelT:
    """Validate ``data`` against ``model``; a bad key becomes one :class:`ConfigError` line."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None


def load_config(path: str | Path, model: type[ModelT], overrides: dict[str, Any] | None = None) -> ModelT:
    """Read a YAML config file and validate it.

    Args:
        path: the YAML file.
        model: the pydantic model it must satisfy.
        overrides: values (for example from the command line) that replace the file's.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return validate_config(model, data, str(path))


def config_hash(config: BaseModel) -> str:
    """A short sha256 of the config's canonical JSON: equal configs give equal hashes."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def save_resolved(config: BaseModel, path: Path, job: str) -> str:
    """Write the resolved config of ``job`` with its hash as YAML (atomically); return the hash."""
    digest = config_hash(config)
    body = {"job": job, "config_hash": digest, "config": config.model_dump(mode="json")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(body, sort_keys=False))
    os.replace(tmp, path)
    return digest


Triple = tuple[float, float, float]
IntTriple = tuple[int, int, int]


def _positive_shape(value: IntTriple) -> IntTriple:
    if not all(v > 0 for v in value):
        raise ValueError("sizes must be positive numbers of voxels (z, y, x)")
    return value


#: A block or chunk shape: three positive ints, voxels, zyx. Validated wherever a config uses it.
ShapeTriple = Annotated[IntTriple, AfterValidator(_positive_shape)]


class IngestConfig(StrictModel):
    """How ``axonseg ingest`` converts an input array into the project's zarr."""

    voxel_size: Triple | None = Field(
        None, description="voxel size in nm (z, y, x); required when the input has none"
    )
    offset: Triple | None = Field(None, description="offset in nm (z, y, x); default: the input's or 0")
    chunk_shape: ShapeTriple = Field((64, 64, 64), description="zarr chunk shape in voxels (z, y, x)")
    levels: int = Field(4, ge=0, le=10, description="coarser pyramid levels s1..sN (at most)")
    kind: Literal["raw", "labels"] = Field("raw", description="raw EM (mean pyramid) or labels (mode/strided)")
    label_downsampling: Literal["mode", "strided"] = "mode"
    blocks_per_task: int = Field(2, ge=1, description="chunks per block edge (block = chunks x this)")

    @field_validator("voxel_size")
    @classmethod
    def _positive(cls, value: Triple | None) -> Triple | None:
        if value is not None and not all(v > 0 for v in value):
            raise ValueError("every voxel size must be a positive number of nm")
        return value
