"""Proofreading latency: merge, split and undo (edit model + display update) on ~100,000
fragments, against rewriting the Labels layer's data for the same edit, in the same run.

Run: ``xvfb-run -a .venv/bin/python benchmarks/proofread.py [--repeats 15]`` (no display:
the viewer is created hidden and the canvas is not drawn). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from axonseg.proofread import ProofreadSession
from axonseg.segment import agglomerate
from axonseg.pipelines.proofread_demo import box_fragments, box_graph
from axonseg.viewer.lut_view import LutLabels, SegmentLut


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", type=int, nargs=3, default=(100, 512, 512))
    parser.add_argument("--box", type=int, nargs=3, default=(4, 8, 8))
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    import napari
    from qtpy.QtWidgets import QApplication

    voxel = (40.0, 8.0, 8.0)
    fragments = box_fragments(args.shape, args.box)
    graph, _ = box_graph(args.shape, args.box, voxel, seed=0)
    lut = agglomerate(graph, [0.5])[0]
    print(f"{graph.n_nodes} fragments, {graph.n_edges} edges, {len(np.unique(lut.segment_ids))} segments, "
          f"{fragments.size / 1e6:.1f} M voxels")
    tmp = Path(tempfile.mkdtemp())
    session = ProofreadSession(tmp / "edits.sqlite", (lut.fragment_ids, lut.segment_ids), graph, user="bench")
    display = SegmentLut(*session.current_lut())
    viewer = napari.Viewer(show=bool(os.environ.get("DISPLAY")))
    scale = dict(scale=voxel)
    ours = viewer.add_labels(LutLabels(fragments, display), name="segmentation", **scale)
    rewritten = display.apply(fragments)  # the peer: a Labels layer holding segment ids
    peer = viewer.add_labels(rewritten, name="rewritten", visible=False, **scale)
    viewer.dims.point = (args.shape[0] // 2 * voxel[0], 0, 0)
    app = QApplication.instance()
    app.processEvents()
    centroid = dict(zip(graph.node_id.tolist(), graph.node_centroid))
    rng = np.random.default_rng(0)
    timings = {name: {"ours": [], "rewrite": []} for name in ("merge", "split", "undo")}

    def show_ours(record) -> None:  # noqa: ANN001
        for move in record.moves:
            display.update(move.fragments, move.target)
        ours.refresh(thumbnail=False, extent=False)
        app.processEvents()

    def rewrite(record) -> float:  # noqa: ANN001
        peer.visible, ours.visible = True, False
        start = time.perf_counter()
        for move in record.moves:
            rewritten[np.isin(fragments, move.fragments, kind="table")] = move.target
        peer.data = rewritten
        app.processEvents()
        seconds = time.perf_counter() - start
        peer.visible, ours.visible = False, True
        return seconds

    for _ in range(args.repeats):
        # merge two segments that touch (an edge between them), split the result, undo the split
        edge = rng.integers(graph.n_edges)
        a, b = (int(s) for s in session.segment_of(np.array([graph.u[edge], graph.v[edge]])))
        if a == b:
            continue
        start = time.perf_counter()
        record = session.merge([a, b])
        show_ours(record)
        timings["merge"]["ours"].append(time.perf_counter() - start)
        timings["merge"]["rewrite"].append(rewrite(record))
        child = record.children[0]
        picks = session.fragments_of(child)
        seed_a, seed_b = centroid[int(picks[0])], centroid[int(picks[-1])]
        start = time.perf_counter()
        record = session.split(child, [seed_a], [seed_b])
        show_ours(record)
        timings["split"]["ours"].append(time.perf_counter() - start)
        timings["split"]["rewrite"].append(rewrite(record))
        start = time.perf_counter()
        record = session.undo()
        show_ours(record)
        timings["undo"]["ours"].append(time.perf_counter() - start)
        timings["undo"]["rewrite"].append(rewrite(record))
    assert np.array_equal(display.apply(fragments[args.shape[0] // 2]), rewritten[args.shape[0] // 2])
    medians = {f"{op}_{who}_ms": 1000 * float(np.median(t[who])) for op, t in timings.items() for who in t}
    for op in timings:
        print(f"{op:6s} ours {medians[f'{op}_ours_ms']:8.1f} ms   rewrite Labels data {medians[f'{op}_rewrite_ms']:8.1f} ms"
              f"   (median of {len(timings[op]['ours'])})")
    ours_total = sum(medians[f"{op}_ours_ms"] for op in timings)
    peer_total = sum(medians[f"{op}_rewrite_ms"] for op in timings)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"n_fragments": int(graph.n_nodes), "voxels": int(fragments.size), **medians,
              "voxels_per_s_ours": fragments.size / (ours_total / 3000), "peak_memory_mib": peak_mib,
              "all_under_200ms": all(medians[f"{op}_ours_ms"] < 200 for op in timings),
              "ratio": peer_total / ours_total, "peer": "rewrite Labels layer data (np.isin table + layer.data =)"}
    print(f"peak memory {peak_mib:.0f} MiB; ratio (rewrite time / ours) {result['ratio']:.1f}")
    viewer.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
