"""Writes the worked-example notebooks from plain Python cells, so that the notebooks in
git are reviewable source; `tests/test_notebooks.py` executes them against the demo."""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

GRIDS = [
    new_markdown_cell("# 网格体检 A health check of the demo sub-district's grids\n\n"
                      "Reads the demo 紫阳街道 from PostGIS (run `make demo` first, or point `WANGGE_DB_NAME` at a loaded database), "
                      "checks the grid layer's topology, compares each grid with the household band of standards §2, "
                      "and asks for an automatic delineation of one community — without accepting it."),
    new_code_cell("from gis.db import transaction\n"
                  "from grid.checks import check, summary\n"
                  "from grid.stats import band_rule, grid_stats, rollup\n"
                  "from grid.delineate import propose\n"
                  "from analysis.staffing import gaps"),
    new_code_cell("with transaction(owner=True) as conn:\n"
                  "    problems = check(conn)\n"
                  "    grids = grid_stats(conn)\n"
                  "    proposal = propose(conn, '420106010002')\n"
                  "    staffing = gaps(conn)\n"
                  "summary(problems)"),
    new_markdown_cell("Households per grid against the band:"),
    new_code_cell("print(band_rule())\n"
                  "grids.standing.value_counts()"),
    new_code_cell("rollup(grids)[['community_code', 'community_name', 'grids', 'households', 'residents', 'grids_under', 'grids_over']]"),
    new_markdown_cell("An automatic proposal for 首义社区 (a draft: nothing is changed):"),
    new_code_cell("frame = proposal.frame()\n"
                  "assert abs(frame.households.sum() - grids[grids.community_code == '420106010002'].households.sum()) == 0\n"
                  "frame[['serial', 'households', 'residents', 'buildings', 'compactness', 'standing']]"),
    new_code_cell("for p in proposal.problems:\n    print(p)"),
    new_markdown_cell("Staffing gaps, each naming its rule:"),
    new_code_cell("staffing.groupby('rule_name').size()"),
]


def main() -> None:
    nb = new_notebook(cells=GRIDS, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, HERE / "01_grid_health_check.ipynb")


if __name__ == "__main__":
    main()
