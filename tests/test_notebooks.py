"""The worked examples in notebooks/ run top to bottom against the demo, so they never rot."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from gis.settings import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(demo, path: Path):
    nb = nbformat.read(path, as_version=4)
    os.environ.setdefault("WANGGE_DB_NAME", "wangge_test")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("households" in str(o) for o in outputs)


def test_notebooks_exist():
    assert NOTEBOOKS, "notebooks/ holds at least one worked example"
