"""The config of the segment stages (fragments -> graph -> agglomerate -> relabel): one YAML,
``configs/agglomerate.yaml`` (the ``axonseg agglomerate`` command; the ``segment:`` section of
``configs/pipeline.yaml``), with a section per stage so that each stage hashes only its own keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from axonseg.config import IntTriple, ShapeTriple, StrictModel, load_config

Offset = tuple[int, int, int]


class FragmentsConfig(StrictModel):
    """Watershed fragments (supervoxels) from affinities, blockwise."""

    boundary_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="voxels whose boundary (1 - lowest touching affinity) is below this carry seeds"
    )
    seed_radius: int = Field(4, ge=0, description="half-width in voxels of the window in which a seed is a distance maximum")
    seed_method: Literal["maxima", "components"] = Field("maxima", description="seeds: distance maxima or components")
    min_size: int = Field(0, ge=0, description="fragments smaller than this (voxels) merge into their best neighbour")
    per_section: bool = Field(False, description="2D fragments per z-section (anisotropic serial-section EM)")
    flood: bool = Field(
        False, description="attach every voxel without a seed or confident edge (membrane) to the neighbour over its best edge"
    )
    attach_threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="voxels left without a seed or confident edge attach over edges with boundary below this; "
                    "null: boundary_threshold (everything with flood)",
    )
    context: IntTriple = Field((8, 8, 8), description="voxels of context per side (z, y, x) read around each block")

    @field_validator("context")
    @classmethod
    def _non_negative(cls, value: IntTriple) -> IntTriple:
        if not all(v >= 0 for v in value):
            raise ValueError("context must be zero or more voxels per axis")
        return value

    @model_validator(mode="after")
    def _attach_or_flood(self) -> "FragmentsConfig":
        if self.flood and self.attach_threshold is not None:
            raise ValueError("attach_threshold and flood: true exclude each other (flood attaches every voxel)")
        return self


class GraphConfig(StrictModel):
    """What the region-graph stage records besides the edges' affinity statistics."""

    node_values: bool = Field(
        False,
        description="also sum each fragment's raw intensity and boundary (1 - lowest nearest affinity) over its "
                    "voxels, for agglomerate method learned (on whenever that method is chosen); reads the raw",
    )


class AgglomerateConfig(StrictModel):
    """Agglomeration of the region graph into one fragment -> segment LUT per threshold."""

    method: Literal["mean", "quantile", "mutex", "learned"] = Field(
        "mean", description="hierarchical merging by mean or quantile affinity, mutex watershed, or by an edge "
                            "classifier's merge probability (learned; see classifier)"
    )
    classifier: str | None = Field(
        None, description="edge classifier file (axonseg train-agglomeration) for method learned; null: "
                          "edge_classifier.json beside the run's model file",
    )
    quantile: float = Field(50.0, ge=0.0, le=100.0, description="percentile of an edge's affinities for method quantile")
    mutex_score: Literal["mean", "quantile"] = Field("mean", description="edge affinity statistic for method mutex")
    thresholds: list[float] = Field(
        default_factory=lambda: [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
        description="merge thresholds in [0, 1] on 1 - affinity; higher merges more (mutex: bias = 1 - threshold)",
    )

    @field_validator("thresholds")
    @classmethod
    def _unit_interval(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("thresholds is empty: expected at least one value in [0, 1]")
        bad = [t for t in value if not 0.0 <= t <= 1.0]
        if bad:
            raise ValueError(f"threshold {bad[0]} is outside [0, 1] (thresholds are 1 - affinity scores)")
        if len(set(value)) != len(value):
            raise ValueError("thresholds contains a value twice")
        return sorted(value)

    @model_validator(mode="after")
    def _classifier_for_learned(self) -> "AgglomerateConfig":
        if self.classifier is not None and self.method != "learned":
            raise ValueError(f"classifier is set but method is {self.method!r}: a classifier is used by method learned only")
        return self


class SegmentConfig(StrictModel):
    """How ``axonseg agglomerate`` turns a run's affinities into fragments, LUTs and a segmentation."""

    offsets: list[Offset] | None = Field(
        None, description="affinity offsets (z, y, x voxels) the affinities must carry; null: whatever they carry"
    )
    block_shape: ShapeTriple = Field((64, 128, 128), description="write block shape in voxels (z, y, x)")
    mask: str | None = Field(
        None, description="mask: a group of RUN/volume.zarr or an array address; zero = not segmented; null: none"
    )
    fragments: FragmentsConfig = Field(default_factory=FragmentsConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    agglomerate: AgglomerateConfig = Field(default_factory=AgglomerateConfig)
    relabel_threshold: float | None = Field(
        None, ge=0.0, le=1.0,
        description="LUT threshold written to segmentation/; null: reports/best_threshold.json, else the median",
    )


    @model_validator(mode="after")
    def _learned_needs_node_values(self) -> "SegmentConfig":
        if self.agglomerate.method == "learned" and not self.graph.node_values:
            self.graph = self.graph.model_copy(update={"node_values": True})
        return self

    @field_validator("offsets")
    @classmethod
    def _nonzero(cls, value: list[Offset] | None) -> list[Offset] | None:
        if value is not None:
            if not value:
                raise ValueError("offsets is empty: expected one (z, y, x) offset per affinity channel")
            if any(all(o == 0 for o in offset) for offset in value):
                raise ValueError("offsets contains (0, 0, 0): an affinity needs a non-zero offset")
        return value


def load_segment_config(path: str | Path | None = None) -> SegmentConfig:
    """The config from a YAML file, or the defaults when ``path`` is None."""
    return SegmentConfig() if path is None else load_config(path, SegmentConfig)
