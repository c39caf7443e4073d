"""The one LUT type and its application: sorted on construction, checked, exact for uint64 ids."""

from __future__ import annotations

import numpy as np
import pytest

from axonseg.errors import InputError
from axonseg.segment import Lut, agglomerate, apply_lut, relabel

BIG = 2**53 + 1  # not representable as float64: a float round trip would change it


def test_lut_is_sorted_uint64_and_checked() -> None:
    lut = Lut(np.array([30, 10, 20]), np.array([3, 1, 2]))
    assert lut.fragment_ids.dtype == lut.segment_ids.dtype == np.uint64
    np.testing.assert_array_equal(lut.fragment_ids, [10, 20, 30])
    np.testing.assert_array_equal(lut.segment_ids, [1, 2, 3])
    with pytest.raises(InputError, match="3 fragment ids but 2 segment ids"):
        Lut(np.arange(3), np.arange(2))
    with pytest.raises(InputError, match="1-D"):
        Lut(np.zeros((2, 2), np.uint64), np.zeros((2, 2), np.uint64))
    with pytest.raises(InputError, match="negative"):
        Lut(np.array([-1, 2]), np.array([1, 2]))
    with pytest.raises(InputError, match="float64: expected integer ids"):
        Lut(np.array([1.5]), np.array([1]))
    with pytest.raises(AttributeError):
        lut.fragment_ids = np.zeros(3, np.uint64)  # frozen
    assert Lut.of(lut) is lut
    assert Lut.of((np.array([2, 1]), np.array([5, 6]))).fragment_ids.tolist() == [1, 2]


def test_digest_names_the_content() -> None:
    one = Lut(np.array([2, 1]), np.array([7, 7]))
    assert one.digest() == Lut(np.array([1, 2]), np.array([7, 7])).digest()  # order does not matter
    assert one.digest() != Lut(np.array([1, 2]), np.array([7, 8])).digest()


def test_missing_ids_keep_their_value_and_zero_stays_background() -> None:
    fragments = np.array([[[0, 5, 6], [9, 5, 0]], [[6, 6, 11], [12, 9, 5]]], dtype=np.uint32)
    lut = Lut(np.array([9, 5, 0, 12]), np.array([100, 200, 300, 5]))
    out = apply_lut(fragments, lut)
    assert out.dtype == np.uint64 and out.shape == fragments.shape
    np.testing.assert_array_equal(out, [[[0, 200, 6], [100, 200, 0]], [[6, 6, 11], [5, 100, 200]]])
    np.testing.assert_array_equal(fragments[0, 0], [0, 5, 6])  # the input is left as it was


def test_ids_above_2_53_map_exactly() -> None:
    fragment_ids = np.array([BIG + 4, BIG, 2**63 + 7, BIG + 2], dtype=np.uint64)
    segment_ids = np.array([2**64 - 1, BIG + 2, BIG, 3], dtype=np.uint64)
    block = np.array([BIG, BIG + 1, BIG + 2, BIG + 4, 2**63 + 7, 0, BIG + 3], dtype=np.uint64).reshape(1, 1, 7)
    out = apply_lut(block, Lut(fragment_ids, segment_ids))
    assert out.ravel().tolist() == [BIG + 2, BIG + 1, 3, 2**64 - 1, BIG, 0, BIG + 3]


def test_one_dimensional_ids_and_empty_inputs() -> None:
    lut = Lut(np.array([3, 4]), np.array([30, 40]))
    np.testing.assert_array_equal(apply_lut(np.array([4, 3, 2, 0]), lut), [40, 30, 2, 0])
    np.testing.assert_array_equal(apply_lut(np.zeros((0, 2, 2), np.uint64), lut), np.zeros((0, 2, 2)))
    np.testing.assert_array_equal(apply_lut(np.array([[7, 8]]), Lut(np.zeros(0), np.zeros(0))), [[7, 8]])
    np.testing.assert_array_equal(apply_lut(np.array([7, 8]), lut), [7, 8])  # no id of the block is listed
    with pytest.raises(InputError, match="expected integer ids"):
        apply_lut(np.array([1.0]), lut)
    with pytest.raises(InputError, match="negative"):
        apply_lut(np.array([-2, 3]), lut)


def test_apply_lut_agrees_with_the_relabel_kernel_on_an_agglomeration() -> None:
    rng = np.random.default_rng(4)
    fragments = rng.integers(0, 500, size=(6, 20, 20)).astype(np.uint64) + np.uint64(2**40)
    fragments[0, 0, :5] = 0
    ids = np.unique(fragments[fragments != 0])
    merged = ids[rng.integers(0, len(ids), len(ids))]  # any fragment -> segment map
    lut = Lut(ids[::-1], merged[::-1])
    np.testing.assert_array_equal(apply_lut(fragments, lut), relabel(fragments, ids, merged))


def test_agglomeration_gives_the_lut_type() -> None:
    from axonseg.segment import merge_block_graphs

    made = agglomerate(merge_block_graphs([]), [0.5])[0]
    assert made.threshold == 0.5 and isinstance(made.lut, Lut) and len(made.lut.fragment_ids) == 0


def test_digest_is_the_sha256_of_both_id_arrays() -> None:
    # fed to sha256 in place; the value is that of the concatenated bytes (names caches on disk)
    import hashlib

    lut = Lut(np.array([7, 2, 5], dtype=np.uint64), np.array([1, 1, 9], dtype=np.uint64))
    expected = hashlib.sha256(lut.fragment_ids.tobytes() + lut.segment_ids.tobytes()).hexdigest()[:16]
    assert lut.digest() == expected
    assert Lut(np.zeros(0, np.uint64), np.zeros(0, np.uint64)).digest() == hashlib.sha256(b"").hexdigest()[:16]


def test_readers_of_a_finished_segmentation_do_not_import_numba() -> None:
    # numba's modules and JIT state cost ~50 MB per process: skeletonize, mesh and the run
    # folder must not pay it for a segmentation that needs no LUT (the #16 memory A/B)
    import subprocess
    import sys

    code = ("import sys, axonseg.segment, axonseg.pipelines.run_folder, axonseg.pipelines.skeletonize.job, "
            "axonseg.pipelines.mesh.job; from axonseg.segment import Lut; print('numba' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"
    code = "import sys; from axonseg.segment import relabel; print('numba' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_package_names_stay_functions_after_their_submodules_are_imported() -> None:
    # the package's exports load lazily; a submodule import must not shadow a function
    import importlib
    import pkgutil
    import types

    import axonseg.segment as package

    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"axonseg.segment.{info.name}")
    for name in package.__all__:
        assert not isinstance(getattr(package, name), types.ModuleType), name
    assert callable(package.agglomerate) and callable(package.relabel)
