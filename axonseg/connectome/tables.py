"""Synapse tables in their canonical form: one row per synapse, pre and post points in nm (zyx).

Readers of other layouts (xyz columns, CAVE ``*_pt_position`` vectors, custom names) go through
:func:`normalize_synapse_table`, which names the missing columns and the presets on failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from axonseg.errors import InputError

PRE_COLUMNS = ("pre_z_nm", "pre_y_nm", "pre_x_nm")
POST_COLUMNS = ("post_z_nm", "post_y_nm", "post_x_nm")
OPTIONAL_COLUMNS = ("confidence", "size")
# Columns carried through unchanged when present: the ground-truth ids of synthetic data. A
# table's own pre_id/post_id are NOT trusted as segment ids: points are always looked up.
PASSTHROUGH_COLUMNS = ("gt_pre_id", "gt_post_id")

# Each preset maps canonical names to the table's own. A tuple of one name is a vector column
# holding x, y, z (CAVE order), which is reversed to zyx.
PRESETS: dict[str, dict[str, str | tuple[str]]] = {
    "axonseg": {c: c for c in PRE_COLUMNS + POST_COLUMNS},
    "xyz": {"pre_z_nm": "pre_z", "pre_y_nm": "pre_y", "pre_x_nm": "pre_x",
            "post_z_nm": "post_z", "post_y_nm": "post_y", "post_x_nm": "post_x"},
    "cave": {"pre": ("pre_pt_position",), "post": ("post_pt_position",)},
}


def preset_names() -> list[str]:
    return sorted(PRESETS)


def _required(preset: Mapping[str, str | tuple[str]]) -> list[str]:
    names = []
    for value in preset.values():
        names.append(value[0] if isinstance(value, tuple) else value)
    return names


def detect_preset(columns: Sequence[str]) -> str | None:
    """The first preset (in ``axonseg, xyz, cave`` order) whose columns the table has, or None."""
    for name in ("axonseg", "xyz", "cave"):
        if all(c in columns for c in _required(PRESETS[name])):
            return name
    return None


def _vector_column(values: pd.Series, name: str) -> np.ndarray:
    """``(N, 3)`` float64 from a column of 3-vectors (lists, arrays or strings like ``"[1, 2, 3]"``)."""
    if len(values) == 0:
        return np.zeros((0, 3))
    first = values.iloc[0]
    if isinstance(first, str):
        rows = [np.array(v.strip("[]() ").replace(",", " ").split(), dtype=np.float64) for v in values]
    else:
        rows = [np.asarray(v, dtype=np.float64).reshape(-1) for v in values]
    if any(r.shape != (3,) for r in rows):
        raise InputError(f"synapse table column {name!r}: expected three numbers (x y z) per row")
    return np.stack(rows)


def normalize_synapse_table(
    table: pd.DataFrame,
    preset: str | None = None,
    columns: Mapping[str, str] | None = None,
    position_unit_nm: Sequence[float] = (1.0, 1.0, 1.0),
    confidence_column: str = "confidence",
    size_column: str = "size",
) -> pd.DataFrame:
    """Bring a synapse table into the canonical form.

    Args:
        table: one row per synapse.
        preset: ``axonseg`` (``pre_z_nm`` ...), ``xyz`` (``pre_x, pre_y, pre_z, post_x, ...``),
            ``cave`` (``pre_pt_position`` / ``post_pt_position`` vectors in x, y, z order) or None
            to detect it from the column names.
        columns: explicit mapping from canonical names (``pre_z_nm`` ... ``post_x_nm``) to the
            table's names; overrides the preset for the names it gives.
        position_unit_nm: nm per unit of the table's coordinates, zyx (e.g. ``(40, 4, 4)`` for a
            CAVE table in voxels).
        confidence_column, size_column: optional columns copied as ``confidence`` / ``size``.

    Returns:
        DataFrame with ``pre_z_nm, pre_y_nm, pre_x_nm, post_z_nm, post_y_nm, post_x_nm`` (float64,
        nm, zyx), ``confidence`` (NaN when absent), ``size`` (1.0 when absent) and the
        pass-through id columns that the input has.

    Raises:
        InputError: required columns are missing (named, with the presets), or a bad preset.
    """
    if preset is not None and preset not in PRESETS:
        raise InputError(f"synapse table preset={preset!r}: expected one of {preset_names()}")
    chosen = preset or detect_preset(list(table.columns))
    mapping: dict[str, str | tuple[str]] = dict(PRESETS[chosen]) if chosen else {}
    if columns:
        if chosen == "cave":
            mapping = {}
        unknown = [k for k in columns if k not in PRE_COLUMNS + POST_COLUMNS]
        if unknown:
            raise InputError(f"synapse column mapping has unknown key(s) {unknown}: expected {list(PRE_COLUMNS + POST_COLUMNS)}")
        mapping.update(columns)
    if not mapping:
        raise InputError(
            f"synapse table has columns {list(table.columns)[:12]}: none of the presets fit; "
            + "; ".join(f"{n}: {_required(p)}" for n, p in sorted(PRESETS.items()))
            + " (or give a column mapping)"
        )
    required = _required(mapping)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(
            f"synapse table lacks column(s) {missing} (preset {chosen or 'custom'}); presets: "
            + "; ".join(f"{n}: {_required(p)}" for n, p in sorted(PRESETS.items()))
        )
    out = pd.DataFrame(index=pd.RangeIndex(len(table)))
    unit = np.asarray(position_unit_nm, dtype=np.float64)
    for side, names in (("pre", PRE_COLUMNS), ("post", POST_COLUMNS)):
        if side in mapping:  # a vector column, x y z
            xyz = _vector_column(table[mapping[side][0]], mapping[side][0])  # type: ignore[index]
            zyx = xyz[:, ::-1] * unit
        else:
            zyx = np.column_stack([pd.to_numeric(table[mapping[n]], errors="coerce").to_numpy(np.float64)
                                   for n in names]).reshape(-1, 3) * unit
        for axis, name in enumerate(names):
            out[name] = zyx[:, axis]
    out["confidence"] = (table[confidence_column].to_numpy(np.float64) if confidence_column in table.columns
                         else np.full(len(table), np.nan))
    out["size"] = table[size_column].to_numpy(np.float64) if size_column in table.columns else np.ones(len(table))
    for name in PASSTHROUGH_COLUMNS:
        if name in table.columns:
            out[name] = table[name].to_numpy(np.uint64)
    return out


def synapse_points(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(pre_nm, post_nm)``: two ``(N, 3)`` float64 arrays (nm, zyx) of a canonical table."""
    return (table[list(PRE_COLUMNS)].to_numpy(np.float64).reshape(-1, 3),
            table[list(POST_COLUMNS)].to_numpy(np.float64).reshape(-1, 3))


def synapses_from_arrays(pre_nm: np.ndarray, post_nm: np.ndarray, **columns: np.ndarray) -> pd.DataFrame:
    """A canonical table from ``(N, 3)`` pre and post points (nm, zyx) and extra columns."""
    pre = np.asarray(pre_nm, dtype=np.float64).reshape(-1, 3)
    post = np.asarray(post_nm, dtype=np.float64).reshape(-1, 3)
    if len(pre) != len(post):
        raise InputError(f"pre_nm has {len(pre)} points but post_nm has {len(post)}: expected one each per synapse")
    data: dict[str, np.ndarray] = {}
    for names, points in ((PRE_COLUMNS, pre), (POST_COLUMNS, post)):
        data.update({name: points[:, axis] for axis, name in enumerate(names)})
    data["confidence"] = np.asarray(columns.pop("confidence", np.full(len(pre), np.nan)), dtype=np.float64)
    data["size"] = np.asarray(columns.pop("size", np.ones(len(pre))), dtype=np.float64)
    data.update(columns)
    return pd.DataFrame(data)
