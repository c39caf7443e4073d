"""``axonseg export RUN --format neuroglancer --out DIR``: a static folder of precomputed raw and
segmentation (with the proofreading edits), meshes, skeletons, state.json and serve.py; served
by its own serve.py it renders in neuroglancer. Multiscale writing; refusals in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from segment_runs import error_lines, run_cli
from view_runs import (
    copy_run,
    hue_distance,
    merge,
    panel_samples,
    require_chromium,
    segment_hue,
    typical_hue,
    write_view_run,
)

from axonseg.errors import InputError
from axonseg.io import open_volume
from axonseg.pipelines.view.export import export_neuroglancer
from axonseg.pipelines.view.labels import shown_labels
from axonseg.pipelines.view.live import PANEL_PX
from axonseg.pipelines.view.precomputed_volume import write_precomputed_volume


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _read_precomputed(folder: Path, scale: int = 0) -> np.ndarray:
    """Scale ``scale`` of a precomputed folder as a zyx array."""
    import tensorstore as ts

    store = ts.open({"driver": "neuroglancer_precomputed", "kvstore": {"driver": "file", "path": str(folder)},
                     "scale_index": scale}).result()
    return np.asarray(store[..., 0].read().result()).transpose(2, 1, 0)


def _wait_for(url: str, seconds: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_export_writes_the_run_with_its_edits_and_renders_from_a_static_server(view_run: Path, tmp_path: Path) -> None:
    run = copy_run(view_run, tmp_path / "run")
    before = shown_labels(run)
    # state.json zooms for a 900 px panel: a 400 px screenshot shows the middle 28 voxels
    plane = before.read((slice(8, 9), slice(20, 44), slice(20, 44)))[0]
    ids, counts = np.unique(plane, return_counts=True)
    large = [int(i) for i in ids[np.argsort(-counts)] if i != 0]
    a = large[0]
    b = next(s for s in large[1:] if hue_distance(segment_hue(s), segment_hue(a)) > 0.1)
    merge(run, a, b)
    child, absorbed = next(iter(shown_labels(run).merged.items()))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "shared"
    result = run_cli(["export", str(run), "--format", "neuroglancer", "--out", str(out), "--url", base])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: raw, segmentation, meshes, skeletons; serve it at {base} "
                                    f"(python {out}/serve.py {port}) ")
    assert result.stdout.rstrip().endswith(f"open https://neuroglancer-demo.appspot.com/#!{base}/state.json")
    assert not out.with_name("shared.tmp").exists()
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "meshes", "raw", "segmentation", "serve.py",
                                                     "skeletons", "state.json"]

    # the segmentation is the run's labels with the merge applied, the raw is the run's raw
    expected = before.read((slice(None),) * 3)
    for segment in absorbed:
        expected[expected == segment] = child
    assert np.array_equal(_read_precomputed(out / "segmentation"), expected)
    raw = open_volume(run / "volume.zarr" / "raw" / "s0")
    assert np.array_equal(_read_precomputed(out / "raw"), raw.read((slice(None),) * 3))
    # meshes and skeletons: the run's files, byte for byte
    for name in (f"{a}:0", str(a), "info"):
        assert (out / "meshes" / name).read_bytes() == (run / "meshes" / name).read_bytes()
    assert (out / "skeletons" / str(a)).read_bytes() == (run / "skeletons" / "precomputed" / str(a)).read_bytes()

    # state.json names every folder under the base URL, the merge as an equivalence
    state = json.loads((out / "state.json").read_text())
    layers = {layer["name"]: layer for layer in state["layers"]}
    assert [source["url"] for source in layers["raw"]["source"]] == [f"precomputed://{base}/raw"]
    urls = [source["url"] for source in layers["segmentation"]["source"]]
    assert urls == [f"precomputed://{base}/{name}" for name in ("segmentation", "meshes", "skeletons")]
    for url in urls:
        assert (out / url.removeprefix(f"precomputed://{base}/") / "info").is_file()
    assert sorted(map(int, layers["segmentation"]["equivalences"][0])) == sorted([child, *absorbed])
    for segment in map(int, layers["segmentation"]["segments"]):
        assert (out / "meshes" / f"{segment}:0").is_file() and (out / "skeletons" / str(segment)).is_file()
    assert state["dimensions"] == {"x": [8e-09, "m"], "y": [8e-09, "m"], "z": [4e-08, "m"]}
    assert state["position"] == [32.5, 32.5, 8.5] and state["layout"] == "xy-3d"
    assert f"python shared/serve.py {port}" in (out / "README.txt").read_text()

    # served by its own serve.py, the folder renders in neuroglancer with the merge as one colour
    require_chromium()
    import neuroglancer

    from axonseg.pipelines.view.browser import screenshot

    server = subprocess.Popen([sys.executable, str(out / "serve.py"), str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_for(f"{base}/state.json")
        neuroglancer.set_server_bind_address("127.0.0.1", 0)
        viewer = neuroglancer.Viewer()
        viewer.set_state(state)
        png = screenshot(viewer, tmp_path / "shared.png", (800, 400), timeout_s=120)
    finally:
        neuroglancer.stop()
        server.terminate()
        server.wait(timeout=10)
    samples = panel_samples(png, before, fit_px=PANEL_PX)
    assert hue_distance(typical_hue(samples[a]), typical_hue(samples[b])) < 0.02
    others = [s for s in samples if s not in (a, b) and len(samples[s]) >= 20]
    assert len(others) >= 2
    for segment in others:
        assert hue_distance(typical_hue(samples[segment]), segment_hue(segment)) < 0.04


def test_export_of_a_run_without_meshes_refuses_a_full_folder_and_overwrites(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps the log lines at the terminal width
    run = write_view_run(tmp_path / "run", meshes=False, skeletons=False)
    out = tmp_path / "shared"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli(["export", str(run), "--format", "neuroglancer", "--out", str(out)])
    assert result.returncode == 1 and (out / "keep.txt").exists()
    assert error_lines(result.stderr) == [f"error: --out {out}: exists and is not empty: pass --overwrite to replace it"]
    result = run_cli(["export", str(run), "--format", "neuroglancer", "--out", str(out), "--overwrite"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out}: raw, segmentation; ")
    assert f"run `axonseg mesh {run}`" in result.stderr and f"run `axonseg skeletonize {run}`" in result.stderr
    assert not (out / "keep.txt").exists() and (out / "segmentation" / "info").is_file()
    state = json.loads((out / "state.json").read_text())
    segmentation = next(layer for layer in state["layers"] if layer["name"] == "segmentation")
    assert [source["url"] for source in segmentation["source"]] == ["precomputed://http://localhost:8000/segmentation"]
    assert np.array_equal(_read_precomputed(out / "segmentation"), shown_labels(run).read((slice(None),) * 3))


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "neuroglancer"], ("--format neuroglancer: expected it alone with --out DIR (no other --format, "
                                   "--synapses, --target or --config)")),
    (["--format", "neuroglancer", "--format", "csv", "--out", "OUT"], "--format neuroglancer: expected it alone"),
    (["--format", "csv", "--out", "OUT"], ("--out OUT: only for --format neuroglancer; the connectome goes to "
                                          "RUN_DIR/connectome")),
], ids=["without-out", "with-another-format", "out-for-a-connectome"])
def test_neuroglancer_export_options_are_one_line(view_run: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = str(tmp_path / "out")
    result = run_cli(["export", str(view_run), *[out if a == "OUT" else a for a in args]])
    assert result.returncode == 1
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: " + message.replace("OUT", out)), lines
    assert not (tmp_path / "out").exists() and not (view_run / "connectome").exists()


def test_precomputed_volume_has_coarser_scales_and_round_trips(tmp_path: Path) -> None:
    shape, voxel, offset = (8, 300, 260), (30.0, 8.0, 8.0), (2, 4, 0)
    rng = np.random.default_rng(0)
    # labels constant over 4 x 4 voxels in y x (aligned to the world grid): a 2x coarser scale is exact
    boxes = rng.integers(1, 2**40, (shape[0], shape[1] // 4 + 1, shape[2] // 4 + 1), dtype=np.uint64)
    labels = boxes.repeat(4, axis=1).repeat(4, axis=2)[:, :shape[1], :shape[2]]
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    reads = []

    def read(region: tuple[slice, ...]) -> np.ndarray:
        reads.append(region)
        return labels[region]

    written = write_precomputed_volume(tmp_path / "seg", read, shape, np.uint64, voxel, offset, "segmentation",
                                       chunk_shape=(8, 64, 64), block_shape=(8, 128, 128))
    assert written.scales == [(30.0, 8.0, 8.0), (30.0, 16.0, 16.0), (30.0, 32.0, 32.0), (60.0, 32.0, 32.0),
                              (60.0, 64.0, 64.0)]
    assert max((r[1].stop - r[1].start) * (r[2].stop - r[2].start) for r in reads) == 128 * 128  # blockwise
    info = json.loads((tmp_path / "seg" / "info").read_text())
    assert info["type"] == "segmentation" and info["data_type"] == "uint64"
    assert info["scales"][0]["size"] == [260, 300, 8] and info["scales"][0]["voxel_offset"] == [0, 4, 2]
    assert info["scales"][0]["encoding"] == "compressed_segmentation"
    assert np.array_equal(_read_precomputed(tmp_path / "seg"), labels)
    assert np.array_equal(_read_precomputed(tmp_path / "seg", 1), labels[:, ::2, ::2])

    write_precomputed_volume(tmp_path / "raw", lambda region: image[region], shape, np.uint8, voxel, offset, "image",
                             chunk_shape=(8, 64, 64), block_shape=(8, 128, 128))
    assert np.array_equal(_read_precomputed(tmp_path / "raw"), image)
    mean = image.reshape(8, 150, 2, 130, 2).astype(np.float64).mean(axis=(2, 4))
    assert np.abs(_read_precomputed(tmp_path / "raw", 1) - mean).max() <= 1

    with pytest.raises(InputError, match=r"^bad: dtype float64: expected one of uint8, int8, .* for neuroglancer$"):
        write_precomputed_volume(tmp_path / "bad", read, shape, np.float64, voxel, offset, "image")


def test_raw_of_a_dtype_neuroglancer_lacks_is_refused_before_anything_is_written(view_run: Path, tmp_path: Path) -> None:
    np.save(tmp_path / "raw.npy", np.zeros((16, 64, 64), np.float64))
    out = tmp_path / "shared"
    with pytest.raises(InputError) as refused:
        export_neuroglancer(view_run, out, raw=tmp_path / "raw.npy")
    assert str(refused.value) == (f"raw {tmp_path / 'raw.npy'}: dtype float64: expected one of uint8, int8, uint16, "
                                  "int16, uint32, int32, uint64, float32 for neuroglancer")
    assert not out.exists() and not (tmp_path / "shared.tmp").exists()
