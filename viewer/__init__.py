"""napari plugin for proofreading axonseg runs (npe2 manifest: napari.yaml)."""
