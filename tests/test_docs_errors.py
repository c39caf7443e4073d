"""docs/errors.md lists at least 30 bad inputs, and every test it names exists (so the catalogue
cannot drift from the tests that check each message)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_bad_input_row_names_an_existing_test():
    rows = [line for line in (REPO / "docs" / "errors.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| bad input", "| ---"))]
    assert len(rows) >= 30
    missing, names = [], {}
    for row in rows:
        references = REFERENCE.findall(row)
        assert references, f"row names no test: {row[:120]}"
        for file, name in references:
            path = REPO / file
            if path not in names:
                names[path] = _test_names(path) if path.exists() else set()
            if name not in names[path]:
                missing.append(f"{file}::{name}")
    assert not missing, missing
