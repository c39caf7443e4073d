"""Read synapse tables (CSV or parquet) and per-segment tables; write edge and synapse tables."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from axonseg.errors import InputError

SUFFIXES = (".csv", ".parquet", ".pq", ".tsv")


def read_table(path: str | Path, what: str = "synapse table") -> pd.DataFrame:
    """A CSV (comma), TSV or parquet file as a DataFrame.

    Raises:
        InputError: missing, empty (0 bytes) or unparsable file, or an unknown suffix (naming
            ``what``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: file not found")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{what} {path}: unknown suffix {suffix!r}: expected one of {list(SUFFIXES)}")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path} is empty (0 bytes): expected a header row and one row per entry")
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        # pyarrow's ArrowInvalid (not a parquet file) is a ValueError too
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        kind = "parquet" if suffix in (".parquet", ".pq") else suffix.lstrip(".").upper()
        raise InputError(f"{what} {path} cannot be read as {kind} ({reason})") from None


def write_table(table: pd.DataFrame, path: Path) -> Path:
    """Write ``table`` as parquet or CSV (by suffix), atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".parquet":
        table.to_parquet(tmp, index=False)
    else:
        table.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path
