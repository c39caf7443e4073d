"""Settings of segment meshing: simplification (per block, then of the seams after the join)
and smoothing (after the join).

Lengths are nm.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, model_validator

from axonseg.config import StrictModel


class MeshParams(StrictModel):
    """How a segment's surface is meshed.

    Attributes:
        reduction_factor: zmesh's quadric simplification tries to keep ``1 / reduction_factor``
            of the marching-cubes triangles (0 or 1: no simplification). Vertices on a block's
            cut faces are never moved, so blocks still join exactly.
        max_error_nm: no simplified vertex moves further than this from the marching-cubes
            surface (nm); None: the largest voxel size (zmesh's "one voxel").
        simplify_seams: after the join, simplify the dense bands of exact seam vertices the
            blocks left (zmesh's fast quadric simplification, to about the triangle count the
            reduction factor asks for there; kept only when the mesh stays watertight).
        smooth_iterations: Taubin smoothing passes over each joined mesh (0: none). Marching
            cubes on labels is a staircase whose area is 9% (isotropic) to 19% (30x8x8 nm)
            above the true surface's; 10 passes bring spheres and tubes within 2-4%.
        smooth_lambda: Taubin's shrinking step (0 < lambda < 1).
        smooth_mu: Taubin's inflating step (negative, ``|mu| > lambda``).
    """

    reduction_factor: int = Field(10, ge=0, description="triangle reduction target of zmesh's simplifier (0: none)")
    max_error_nm: float | None = Field(None, gt=0, description="largest vertex displacement of simplification (nm); null: one voxel")
    simplify_seams: bool = Field(True, description="simplify the blocks' exact seam vertices after the join")
    smooth_iterations: int = Field(10, ge=0, description="Taubin smoothing passes over each joined mesh (0: none)")
    smooth_lambda: float = Field(0.5, gt=0, lt=1, description="Taubin shrink step")
    smooth_mu: float = Field(-0.53, lt=0, gt=-1, description="Taubin inflate step (|mu| > lambda)")

    def error_bound_nm(self, voxel_size: Sequence[float]) -> float:
        """``max_error_nm``, or the largest voxel size (nm) when it is None."""
        return float(self.max_error_nm) if self.max_error_nm is not None else float(max(voxel_size))

    @model_validator(mode="after")
    def _taubin_steps(self) -> MeshParams:
        if abs(self.smooth_mu) <= self.smooth_lambda:
            raise ValueError(f"smooth_mu={self.smooth_mu} must exceed smooth_lambda={self.smooth_lambda} in size "
                             "(Taubin smoothing shrinks the mesh otherwise)")
        return self
