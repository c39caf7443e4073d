"""Parameters of kimimaro skeletonization, defaulting to the AxonEM challenge's ground truth.

Physical lengths are nm; ``dust_threshold`` is in voxels.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from axonseg.config import StrictModel


class SkeletonParams(StrictModel):
    """TEASAR and kimimaro settings (defaults: AxonEM ground-truth skeletons).

    Attributes:
        scale: rolling-ball invalidation radius = ``scale * DBF + const`` (unitless factor).
        const: additive invalidation radius in nm.
        pdrf_exponent: exponent of the penalty field on the distance to the boundary.
        pdrf_scale: weight of the penalty field against euclidean distance.
        soma_detection_threshold: DBF in nm above which kimimaro treats a body as a soma.
        soma_acceptance_threshold: DBF in nm a soma candidate must exceed to be accepted.
        soma_invalidation_scale: invalidation ``scale`` used once around a soma root.
        soma_invalidation_const: invalidation ``const`` in nm used once around a soma root.
        max_paths: stop tracing a body after this many paths (None: no limit).
        dust_threshold: connected components with at most this many voxels get no skeleton.
        fix_branching: zero the cost of traced paths so branches leave them where they diverge.
        fix_borders: place an endpoint at the centre of every cut face, so blocks that share a
            face produce coinciding nodes there (needed to join blockwise skeletons).
        fill_holes: fill enclosed holes in each component before tracing.
        parallel: worker processes for kimimaro (1: in this process).
    """

    scale: float = Field(1.5, gt=0)
    const: float = Field(500.0, ge=0)
    pdrf_exponent: int = Field(4, ge=1)
    pdrf_scale: float = Field(100000.0, gt=0)
    soma_detection_threshold: float = Field(750.0, ge=0)
    soma_acceptance_threshold: float = Field(3500.0, ge=0)
    soma_invalidation_scale: float = Field(2.0, ge=0)
    soma_invalidation_const: float = Field(300.0, ge=0)
    max_paths: int | None = Field(None, ge=1)
    dust_threshold: int = Field(100, ge=0)
    fix_branching: bool = True
    fix_borders: bool = True
    fill_holes: bool = False
    parallel: int = Field(1, ge=1)

    def teasar_params(self) -> dict[str, Any]:
        """The ``teasar_params`` mapping that ``kimimaro.skeletonize`` takes (lengths in nm)."""
        params: dict[str, Any] = {
            "scale": self.scale,
            "const": self.const,
            "pdrf_exponent": self.pdrf_exponent,
            "pdrf_scale": self.pdrf_scale,
            "soma_detection_threshold": self.soma_detection_threshold,
            "soma_acceptance_threshold": self.soma_acceptance_threshold,
            "soma_invalidation_scale": self.soma_invalidation_scale,
            "soma_invalidation_const": self.soma_invalidation_const,
        }
        if self.max_paths is not None:
            params["max_paths"] = self.max_paths
        return params
