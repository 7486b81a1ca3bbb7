"""The solver wrapper: columns and rows collected as numpy blocks and handed to HiGHS in one
go; the answer as a plain dict (status, optimal, gap, objective, bound, x, seconds, size)."""
from __future__ import annotations

import time

import highspy
import numpy as np

from gis.solver import new_solver


class Mip:
    """Columns and rows collected as numpy blocks, handed to HiGHS in one go (CSR rows)."""

    def __init__(self) -> None:
        self.n_cols = 0
        self.n_rows = 0
        self._cols: list[tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = []
        self._rows_lo: list[np.ndarray] = []
        self._rows_hi: list[np.ndarray] = []
        self._coo: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def cols(self, cost, lo, hi, integer: bool = False) -> np.ndarray:
        cost = np.asarray(cost, float)
        n = len(cost)
        self._cols.append((cost, np.broadcast_to(np.asarray(lo, float), n).copy(),
                           np.broadcast_to(np.asarray(hi, float), n).copy(), integer))
        idx = np.arange(self.n_cols, self.n_cols + n)
        self.n_cols += n
        return idx

    def rows(self, n: int, lo, hi, row, col, val) -> np.ndarray:
        """n rows; entries (row in 0..n-1, column, value)."""
        self._rows_lo.append(np.broadcast_to(np.asarray(lo, float), n).copy())
        self._rows_hi.append(np.broadcast_to(np.asarray(hi, float), n).copy())
        row = np.asarray(row, np.int64) + self.n_rows
        self._coo.append((row, np.asarray(col, np.int64), np.broadcast_to(np.asarray(val, float), len(row)).copy()))
        idx = np.arange(self.n_rows, self.n_rows + n)
        self.n_rows += n
        return idx

    def solve(self, maximize: bool, time_limit: float, mip_gap: float, start: np.ndarray | None = None,
              options: dict | None = None) -> dict:
        h = new_solver()
        h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("random_seed", 0)
        for k, v in (options or {}).items():
            h.setOptionValue(k, v)
        cost = np.concatenate([c[0] for c in self._cols]) if self._cols else np.zeros(0)
        lo = np.concatenate([c[1] for c in self._cols]) if self._cols else np.zeros(0)
        hi = np.concatenate([c[2] for c in self._cols]) if self._cols else np.zeros(0)
        integer = np.concatenate([np.full(len(c[0]), c[3]) for c in self._cols]) if self._cols else np.zeros(0, bool)
        empty_i, empty_f = np.array([], dtype=np.int32), np.array([], dtype=float)
        h.addCols(self.n_cols, cost, lo, hi, 0, empty_i, empty_i, empty_f)
        ints = np.flatnonzero(integer).astype(np.int32)
        if len(ints):
            h.changeColsIntegrality(len(ints), ints, np.full(len(ints), highspy.HighsVarType.kInteger, dtype=np.uint8))
        if self.n_rows:
            r = np.concatenate([c[0] for c in self._coo])
            c = np.concatenate([c[1] for c in self._coo])
            v = np.concatenate([c[2] for c in self._coo])
            order = np.argsort(r, kind="stable")
            r, c, v = r[order], c[order], v[order]
            starts = np.searchsorted(r, np.arange(self.n_rows)).astype(np.int32)
            h.addRows(self.n_rows, np.concatenate(self._rows_lo), np.concatenate(self._rows_hi), len(v),
                      starts, c.astype(np.int32), v)
        if maximize:
            h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        if start is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, start))
            sol.value_valid = True
            h.setSolution(sol)
        t0 = time.perf_counter()
        h.run()
        seconds = time.perf_counter() - t0
        status = h.getModelStatus()
        info = h.getInfo()
        has = info.primal_solution_status == 2  # kSolutionStatusFeasible
        optimal = status == highspy.HighsModelStatus.kOptimal
        name = "optimal" if optimal else ("time_limit" if status == highspy.HighsModelStatus.kTimeLimit
                                          else h.modelStatusToString(status).lower().replace(" ", "_"))
        gap = float(info.mip_gap) if has and np.isfinite(info.mip_gap) else None
        if optimal and gap is None:
            gap = 0.0
        x = np.array(h.getSolution().col_value) if has else None
        if has and abs(float(cost @ x) - info.objective_function_value) > 1e-6 * max(1.0, abs(info.objective_function_value)):
            # the solution HiGHS hands back must be the one it reports on; if not, say so
            optimal, name, gap = False, "inconsistent_solution", None
        return {"status": name, "optimal": optimal, "gap": gap, "objective": float(info.objective_function_value) if has else None,
                "bound": float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else None, "x": x, "seconds": seconds,
                "nodes": int(info.mip_node_count), "cols": self.n_cols, "rows": self.n_rows,
                "nonzeros": int(sum(len(c[0]) for c in self._coo))}


def trivial(maximize: bool = False) -> dict:
    return {"status": "optimal", "optimal": True, "gap": 0.0, "objective": 0.0, "bound": 0.0, "x": np.zeros(0), "seconds": 0.0,
            "nodes": 0, "cols": 0, "rows": 0, "nonzeros": 0}


def strip_x(res: dict) -> dict:
    return {k: v for k, v in res.items() if k != "x"}
