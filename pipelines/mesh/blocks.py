"""The blockwise pass of ``axonseg mesh``: one zmesh call per block of the run's labels, each
block's pieces stored as ``.npy`` files (so a killed run resumes and the join reads only the
segments it needs, through memory maps).

A block's files in the work folder, written in this order (each atomically; the piece table
last, so a block counts as stored only when it exists):

- ``<block_id>.vertices.npy``: ``(N, 3)`` float32 world nm, zyx, every piece's vertices;
- ``<block_id>.faces.npy``: ``(M, 3)`` uint32, indices into the piece's own vertices;
- ``<block_id>.rims.npy``: ``(R, 2)`` int64 ``[piece vertex index, grid key]`` of rim vertices;
- ``<block_id>.pieces.npy``: one row per segment (``segment_id``, ``n_vertices``, ``n_faces``,
  ``n_rim``), in the order of the arrays above.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from axonseg.blockwise import Roi
from axonseg.blockwise.memory import return_large_allocations
from axonseg.blockwise.outputs import BlockFiles
from axonseg.blockwise.stage import BlockData, Input, Stage, run_stage
from axonseg.errors import StageError
from axonseg.mesh import Mesh, MeshParams, MeshPiece, mesh_block

ReadLabels = Callable[[Roi], np.ndarray]
PIECE_DTYPE = np.dtype([("segment_id", "<u8"), ("n_vertices", "<i8"), ("n_faces", "<i8"), ("n_rim", "<i8")])
ARRAYS = ("vertices", "faces", "rims")
PATTERNS = tuple(f"{{block_id}}.{name}.npy" for name in (*ARRAYS, "pieces"))


def block_path(folder: Path, block_id: str, name: str) -> Path:
    """``folder/<block_id>.<name>.npy``."""
    return Path(folder) / f"{block_id}.{name}.npy"


def _save_array(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def save_block_pieces(folder: Path, block_id: str, pieces: dict[int, MeshPiece]) -> None:
    """Store one block's ``{segment_id: MeshPiece}`` (see the module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = sorted(pieces)
    table = np.zeros(len(ids), dtype=PIECE_DTYPE)
    table["segment_id"] = ids
    table["n_vertices"] = [pieces[i].mesh.n_vertices for i in ids]
    table["n_faces"] = [pieces[i].mesh.n_faces for i in ids]
    table["n_rim"] = [len(pieces[i].rim) for i in ids]
    arrays = {
        "vertices": np.concatenate([pieces[i].mesh.vertices_nm for i in ids] or [np.zeros((0, 3), np.float32)]),
        "faces": np.concatenate([pieces[i].mesh.faces for i in ids] or [np.zeros((0, 3), np.uint32)]),
        "rims": np.concatenate([np.stack([pieces[i].rim, pieces[i].rim_keys], axis=1) for i in ids]
                               or [np.zeros((0, 2), np.int64)]).astype(np.int64),
    }
    for name in ARRAYS:
        _save_array(block_path(folder, block_id, name), arrays[name])
    _save_array(block_path(folder, block_id, "pieces"), table)


def read_piece_table(folder: Path, block_id: str) -> np.ndarray | None:
    """The block's piece table, or None for a block that stored nothing (no labels in it)."""
    path = block_path(folder, block_id, "pieces")
    return np.load(path) if path.exists() else None


def load_block_pieces(folder: Path, block_id: str, low: int = 0, high: int | None = None) -> dict[int, MeshPiece]:
    """The block's pieces of the segments with ``low <= id < high`` (None: no upper bound).

    Only those pieces' rows are read (the arrays are memory-mapped).

    Raises:
        StageError: a file of the block is missing although its piece table exists.
    """
    table = read_piece_table(folder, block_id)
    if table is None:
        return {}
    try:
        arrays = {name: np.load(block_path(folder, block_id, name), mmap_mode="r") for name in ARRAYS}
    except FileNotFoundError as error:
        raise StageError(f"{error.filename}: block mesh file missing although the block is marked done; "
                         "pass --restart") from None
    counts = {"vertices": table["n_vertices"], "faces": table["n_faces"], "rims": table["n_rim"]}
    starts = {name: np.concatenate([[0], np.cumsum(count)]) for name, count in counts.items()}
    ids = table["segment_id"]
    wanted = np.flatnonzero((ids >= np.uint64(low)) & ((ids < np.uint64(high)) if high is not None else True))
    pieces = {}
    for row in wanted.tolist():
        rows = {name: slice(int(starts[name][row]), int(starts[name][row + 1])) for name in ARRAYS}
        rims = np.asarray(arrays["rims"][rows["rims"]])
        mesh = Mesh(np.asarray(arrays["vertices"][rows["vertices"]]), np.asarray(arrays["faces"][rows["faces"]]))
        pieces[int(ids[row])] = MeshPiece(mesh, rims[:, 0].copy(), rims[:, 1].copy())
    return pieces


def mesh_blocks(
    read_labels: ReadLabels,
    shape: Sequence[int],
    voxel_size: Sequence[float],
    offset_nm: Sequence[float],
    params: MeshParams,
    block_shape: Sequence[int],
    work_dir: Path,
    run_dir: Path,
    config: dict,
    name: str = "mesh",
    scheduler: str = "threads",
    restart: bool = False,
    show_progress: bool = True,
) -> list[str]:
    """Mesh every block of a label volume and store each block's pieces in ``work_dir``.

    The blocks run as a declared stage (markers in ``run_dir/blocks/<name>``). A block reads its
    write ROI plus one voxel after it (clipped at the volume's far faces): it then owns exactly
    the marching cubes whose first corner is in its write ROI, and its pieces meet the
    neighbours' on the shared planes of voxel centres. Faces on the volume border are closed.

    Args:
        read_labels: returns the labels (zyx, integer) of a ROI inside the volume.
        shape: volume shape in voxels, zyx.
        voxel_size: nm, zyx.
        offset_nm: world position of voxel (0, 0, 0)'s corner in nm, zyx.
        params: simplification settings (smoothing comes after the join).
        block_shape: write-ROI shape in voxels, zyx.
        work_dir: folder for the per-block ``.npy`` files (created).
        run_dir: the folder whose ``blocks/`` holds the done markers (resume).
        config: everything the pieces depend on (keys the markers).
        name: the stage's name (markers, progress bar, log).
        scheduler: dask scheduler spec; on Linux ``threads[:N]`` meshes N blocks at once in
            forked worker processes (zmesh holds the GIL; a bare ``threads``: one per available
            core; :attr:`axonseg.blockwise.stage.Stage.gil_bound`), ``synchronous`` one at a time.
        restart: drop the markers of an interrupted run with another config.
        show_progress: draw a progress bar.

    Returns:
        The block ids, in block order.
    """
    shape = tuple(int(s) for s in shape)

    def process(data: BlockData) -> dict[int, MeshPiece] | None:
        write = data.block.write_roi
        closed = (tuple(b == 0 for b in write.offset), tuple(e == size for e, size in zip(write.end, shape)))
        pieces = mesh_block(data.arrays.pop("labels"), voxel_size, offset_nm, data.read_roi.offset, params, closed)
        return pieces or None

    stage = Stage(
        name=name, volume_shape=shape, block_shape=tuple(block_shape),
        inputs={"labels": Input(read_labels, shape)},
        output=BlockFiles(Path(work_dir), PATTERNS, save_block_pieces),
        process=process, config=config, context=((0, 0, 0), (1, 1, 1)), border="clip", skip_empty=True,
        # zmesh holds the GIL: on threads[:N] each block is meshed in one of N forked processes
        gil_bound=True, setup=return_large_allocations,
    )
    run_stage(stage, run_dir, scheduler=scheduler, restart=restart, show_progress=show_progress)
    return [block.block_id for block in stage.blocks()]
