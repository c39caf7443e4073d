"""Packaging: every package is installed, the mapped folders import, shipped data opens."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import numpy as np

from axonseg.io import open_volume

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"axonseg." + ".".join(p.parent.relative_to(ROOT / "axonseg").parts) for p in (ROOT / "axonseg").rglob("__init__.py")}
    on_disk = {name.rstrip(".") for name in on_disk}
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages"


def test_pipelines_and_viewer_import_under_axonseg() -> None:
    assert importlib.import_module("axonseg.pipelines.ingest").__file__.startswith(str(ROOT / "pipelines"))
    assert importlib.import_module("axonseg.viewer").__file__.startswith(str(ROOT / "viewer"))


def test_cpu_constraint_pins_torch() -> None:
    assert "torch==2.13.0" in (ROOT / "constraints" / "cpu.txt").read_text()


def test_shipped_heldout_crop_opens_with_geometry() -> None:
    raw = open_volume(ROOT / "data" / "fib_medulla_heldout.h5", dataset="raw")
    labels = open_volume(f"{ROOT / 'data' / 'fib_medulla_heldout.h5'}:labels")
    assert raw.shape == labels.shape == (70, 250, 250)
    assert raw.voxel_size == (10.0, 10.0, 10.0) and raw.offset == (1800.0, 0.0, 0.0)
    assert len(np.unique(labels.data[::4, ::4, ::4].compute())) > 50
