"""A greedy p-median start: good enough to give a run stopped by the clock a solution and a gap."""
from __future__ import annotations

import numpy as np


def greedy(xi, xj, xd, w, fallback, a_row, n_new: int, p: int) -> np.ndarray:
    """p sites added one at a time, each the largest cut in weighted distance (sparse, vectorised)."""
    cur = fallback.copy()  # per active demand: distance now (existing site or the penalty)
    ri = a_row[xi]
    chosen = np.zeros(n_new, bool)
    for _ in range(p):
        save = np.bincount(xj, weights=w[xi] * np.maximum(cur[ri] - xd, 0), minlength=n_new)
        save[chosen] = -1
        j = int(np.argmax(save))
        chosen[j] = True
        mine = xj == j
        np.minimum.at(cur, ri[mine], xd[mine])
    return chosen
