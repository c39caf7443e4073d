"""axonseg: EM segmentation to connectome — affinities, agglomeration, evaluation, export."""

__version__ = "0.1.0"
