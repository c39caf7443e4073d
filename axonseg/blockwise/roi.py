"""ROIs in voxels (zyx); the type lives in the I/O layer, which reads by ROI."""

from axonseg.io.roi import Roi, Shape

__all__ = ["Roi", "Shape"]
