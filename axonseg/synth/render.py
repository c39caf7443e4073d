"""The EM appearance of the labelled tissue: membranes, cytoplasm texture and organelles.

Produces a clean float32 image (grey levels 0-255); blur, noise and section defects are added
by :mod:`axonseg.synth.artifacts`.
"""

from __future__ import annotations

import edt
import fastremap
import numpy as np
from scipy import ndimage

from axonseg.synth.kernels import paint_ellipsoids
from axonseg.synth.organelles import Ellipsoids, Organelles

AXON_GREY = 176.0
DENDRITE_GREY = 160.0
ECS_GREY = 212.0
MEMBRANE_DEPTH = 0.74  # a membrane line darkens the image by this fraction at its centre


def smooth_noise(shape: tuple[int, ...], sigma_nm: float, voxel_size: tuple[float, float, float],
                 rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with correlation ``sigma_nm`` (nm), normalised to unit std, float32."""
    white = rng.standard_normal(shape, dtype=np.float32)
    sigma = [sigma_nm / v for v in voxel_size]
    field = ndimage.gaussian_filter(white, sigma=sigma, mode="wrap", truncate=3.0)
    return field / max(float(field.std()), 1e-6)


def _paint(shape: tuple[int, int, int], ellipsoids: Ellipsoids, labels: np.ndarray,
           voxel_size: tuple[float, float, float]) -> np.ndarray:
    """Boolean mask of the ellipsoids, clipped to the voxels of each ellipsoid's own neurite."""
    if len(ellipsoids.radii) == 0:
        return np.zeros(shape, dtype=bool)
    index = np.zeros(shape, dtype=np.float32)
    values = np.arange(1, len(ellipsoids.radii) + 1, dtype=np.float32)
    paint_ellipsoids(index, ellipsoids.centres, ellipsoids.axes, ellipsoids.half_lengths,
                     ellipsoids.radii, values, np.asarray(voxel_size, dtype=np.float64))
    owners = np.r_[np.uint64(0), ellipsoids.owners]
    inside = index > 0
    return inside & (labels == owners[index.astype(np.int64)])


def membrane_map(labels: np.ndarray, voxel_size: tuple[float, float, float], width_nm: float) -> np.ndarray:
    """Membrane darkness in [0, 1] at every boundary between labels (ECS included), float32.

    A Gaussian profile of full width at half maximum ``width_nm`` across the boundary; where the
    label changes from one section to the next, the section shows a faint smear, as a membrane
    oblique to a 30-nm-thick section does.
    """
    # Renumber from 1 so that the extracellular space (0) is a region of its own for edt, and
    # small uint32 ids keep edt fast.
    regions, _ = fastremap.renumber(labels, preserve_zero=False)
    distance = edt.edt(regions.astype(np.uint32, copy=False), anisotropy=voxel_size, black_border=False,
                       parallel=1)
    sigma = max(width_nm, 1e-3) / 2.355
    to_boundary = np.maximum(distance - np.float32(0.5 * min(voxel_size)), np.float32(0.0))
    to_boundary *= np.float32(1.0 / sigma)
    membrane = np.exp(np.float32(-0.5) * to_boundary * to_boundary)
    if voxel_size[0] > 1.5 * min(voxel_size[1:]):
        smear = np.zeros(labels.shape, dtype=bool)
        smear[1:] |= labels[1:] != labels[:-1]
        smear[:-1] |= labels[:-1] != labels[1:]
        np.maximum(membrane, 0.18 * smear, out=membrane)
    return membrane


def render_tissue(labels: np.ndarray, axon_mask_lut: np.ndarray, organelles: Organelles,
                  voxel_size: tuple[float, float, float], membrane_nm: float,
                  rng: np.random.Generator, membrane_depth: float = MEMBRANE_DEPTH,
                  texture: float = 1.0) -> np.ndarray:
    """Clean EM image of the tissue (float32 grey levels, zyx), before blur, noise and defects.

    Args:
        labels: uint64 neurite labels (0 = extracellular space), zyx.
        axon_mask_lut: bool array indexed by label id, True for axons (others are dendrites).
        organelles: mitochondria, vesicles and densities (nm).
        voxel_size: nm, zyx.
        membrane_nm: membrane line width (nm).
        rng: random generator of the appearance.
        membrane_depth: fraction by which a membrane line darkens the image at its centre.
        texture: scale of the cytoplasm grain and dark specks (1: the default look).
    """
    shape = labels.shape
    n_ids = len(axon_mask_lut)
    # Each neurite has its own cytoplasm shade; axons are lighter than dendrites, as in EM.
    grey = np.where(axon_mask_lut, AXON_GREY, DENDRITE_GREY) + rng.normal(0.0, 7.0, n_ids)
    grey[0] = ECS_GREY
    image = grey.astype(np.float32)[labels]
    is_dendrite = (~axon_mask_lut)[labels] & (labels > 0)

    # The extracellular space is clear (no cytoplasm texture).
    image += np.where(labels > 0, 7.0 * texture * smooth_noise(shape, 14.0, voxel_size, rng), 0.0).astype(np.float32)
    # Dendritic cytoplasm is grainier (microtubules, ribosomes, ER): sparse small dark specks.
    specks = smooth_noise(shape, 6.0, voxel_size, rng)
    image -= np.where(is_dendrite, 30.0 * texture * np.clip(specks - 1.2, 0.0, None), 0.0).astype(np.float32)

    mito = _paint(shape, organelles.mitochondria, labels, voxel_size)
    if mito.any():
        cristae = smooth_noise(shape, 7.0, voxel_size, rng)
        rim = edt.edt(mito, anisotropy=voxel_size, black_border=False, parallel=1)
        rim = np.exp(-0.5 * (np.maximum(rim - 0.5 * min(voxel_size), 0) / 9.0) ** 2)
        mito_grey = 112.0 + 14.0 * cristae - 45.0 * rim
        image = np.where(mito, mito_grey, image).astype(np.float32)

    image *= 1.0 - membrane_depth * membrane_map(labels, voxel_size, membrane_nm)

    # A vesicle is a dark membrane ring around a lighter lumen.
    vesicles = _paint(shape, organelles.vesicles, labels, voxel_size)
    if vesicles.any():
        lumen = organelles.vesicles
        lumen = Ellipsoids(lumen.centres, lumen.axes, 0.5 * lumen.half_lengths, 0.5 * lumen.radii, lumen.owners)
        inner = _paint(shape, lumen, labels, voxel_size)
        image[vesicles & ~inner] *= 0.5
        image[inner] *= 0.9
    densities = _paint(shape, organelles.densities, labels, voxel_size)
    image[densities] *= 0.4
    return image
