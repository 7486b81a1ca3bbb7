"""The siting models' input: demand points, sites and the sparse walking distances between
them (``SitingInput``, validated on construction), and what every model derives from it
for one radius and cut-off (``prepare``).

Where the numbers come from (PostGIS, a file, a benchmark) is ``analysis/siting_inputs.py``'s
business; nothing here is ever dense.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gis.errors import BadInput

INF = np.inf


class SitingError(BadInput):
    """Inputs the models cannot take (unknown model, missing p, inconsistent arrays)."""


# --- inputs -------------------------------------------------------------------------------

@dataclass
class SitingInput:
    """Demand points, sites and the sparse walking-distance table between them.

    Arrays are aligned: ``demand_*`` has one entry per demand point, ``site_*`` one per
    site, ``pair_*`` one per (demand, site) pair within ``cutoff``. ``pair_demand`` and
    ``pair_site`` are positions (0-based) into the demand and site arrays.
    """

    demand_id: np.ndarray
    weight: np.ndarray
    site_id: np.ndarray
    existing: np.ndarray
    capacity: np.ndarray
    pair_demand: np.ndarray
    pair_site: np.ndarray
    pair_distance: np.ndarray
    cutoff: float = INF  # pairs beyond this were not computed
    demand_group: np.ndarray | None = None  # e.g. the grid code of each demand point
    demand_label: np.ndarray | None = None  # e.g. the building's source_id / address
    site_name: np.ndarray | None = None
    demand_xy: np.ndarray | None = None  # (n, 2) lon/lat, for maps and exports
    site_xy: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.demand_id = np.asarray(self.demand_id)
        self.weight = np.asarray(self.weight, dtype=float)
        self.site_id = np.asarray(self.site_id)
        n, m = len(self.demand_id), len(self.site_id)
        self.existing = np.zeros(m, bool) if self.existing is None else np.asarray(self.existing, dtype=bool)
        cap = np.full(m, INF) if self.capacity is None else np.asarray(self.capacity, dtype=float)
        self.capacity = np.where(np.isnan(cap), INF, cap)
        self.pair_demand = np.asarray(self.pair_demand, dtype=np.int64)
        self.pair_site = np.asarray(self.pair_site, dtype=np.int64)
        self.pair_distance = np.asarray(self.pair_distance, dtype=float)
        if len(self.weight) != n or len(self.existing) != m or len(self.capacity) != m:
            raise SitingError("demand/site arrays have different lengths")
        if not (len(self.pair_demand) == len(self.pair_site) == len(self.pair_distance)):
            raise SitingError("pair arrays have different lengths")
        if len(self.pair_demand) and (self.pair_demand.min() < 0 or self.pair_demand.max() >= n
                                      or self.pair_site.min() < 0 or self.pair_site.max() >= m):
            raise SitingError("a pair points outside the demand or site arrays")
        if (self.weight < 0).any() or not np.isfinite(self.weight).all():
            raise SitingError("weights must be finite and non-negative")
        if len(self.pair_distance) and ((self.pair_distance < 0).any() or not np.isfinite(self.pair_distance).all()):
            raise SitingError("distances must be finite and non-negative")
        if (self.capacity < 0).any():
            raise SitingError("capacities must be non-negative")
        if len(pd.unique(self.demand_id)) != n or len(pd.unique(self.site_id)) != m:
            raise SitingError("demand and site ids must be unique")
        # one pair per (i, j): the shortest
        if len(self.pair_demand):
            key = self.pair_demand * m + self.pair_site
            order = np.lexsort((self.pair_distance, key))
            first = np.ones(len(order), bool)
            first[1:] = key[order][1:] != key[order][:-1]
            keep = order[first]
            self.pair_demand, self.pair_site, self.pair_distance = self.pair_demand[keep], self.pair_site[keep], self.pair_distance[keep]

    @property
    def n_demand(self) -> int:
        return len(self.demand_id)

    @property
    def n_sites(self) -> int:
        return len(self.site_id)

    @classmethod
    def from_frames(cls, demand: pd.DataFrame, sites: pd.DataFrame, pairs: pd.DataFrame, cutoff: float = INF,
                    **extra) -> SitingInput:
        """Build from frames: demand (id, weight[, group, label, lon, lat]), sites (id[, existing,
        capacity, name, lon, lat]) and pairs (demand_id, site_id, distance) keyed by the ids."""
        d_pos = pd.Series(np.arange(len(demand)), index=demand["id"].to_numpy())
        s_pos = pd.Series(np.arange(len(sites)), index=sites["id"].to_numpy())
        pi = d_pos.reindex(pairs["demand_id"].to_numpy()).to_numpy()
        pj = s_pos.reindex(pairs["site_id"].to_numpy()).to_numpy()
        if np.isnan(pi).any() or np.isnan(pj).any():
            raise SitingError("a pair names an unknown demand point or site")

        def col(frame, name, default=None):
            return frame[name].to_numpy() if name in frame.columns else default

        def xy(frame):
            return frame[["lon", "lat"]].to_numpy(float) if {"lon", "lat"} <= set(frame.columns) else None

        return cls(demand["id"].to_numpy(), demand["weight"].to_numpy(float), sites["id"].to_numpy(),
                   col(sites, "existing", np.zeros(len(sites), bool)), col(sites, "capacity", np.full(len(sites), INF)),
                   pi.astype(np.int64), pj.astype(np.int64), pairs["distance"].to_numpy(float), cutoff,
                   demand_group=col(demand, "group"), demand_label=col(demand, "label"), site_name=col(sites, "name"),
                   demand_xy=xy(demand), site_xy=xy(sites), **extra)

    def nearest(self, k: int) -> SitingInput:
        """The same input keeping, for each demand point, only its k nearest sites (and every
        existing site within the cut-off, which always stays open and counts)."""
        order = np.lexsort((self.pair_distance, self.pair_demand))
        pd_sorted = self.pair_demand[order]
        starts = np.searchsorted(pd_sorted, pd_sorted, side="left")
        rank = np.arange(len(order)) - starts
        keep = order[(rank < k) | self.existing[self.pair_site[order]]]
        keep.sort()
        return self._with_pairs(keep, {**self.meta, "nearest_k": k})

    def within(self, cutoff: float) -> SitingInput:
        keep = np.flatnonzero(self.pair_distance <= cutoff)
        out = self._with_pairs(keep, self.meta)
        out.cutoff = min(self.cutoff, cutoff)
        return out

    def _with_pairs(self, keep: np.ndarray, meta: dict) -> SitingInput:
        return SitingInput(self.demand_id, self.weight, self.site_id, self.existing, self.capacity, self.pair_demand[keep],
                           self.pair_site[keep], self.pair_distance[keep], self.cutoff, self.demand_group, self.demand_label,
                           self.site_name, self.demand_xy, self.site_xy, dict(meta))

    def subset_demand(self, mask: np.ndarray) -> SitingInput:
        """Only the demand points where ``mask`` is true (pairs renumbered)."""
        mask = np.asarray(mask, bool)
        new_pos = np.cumsum(mask) - 1
        keep = np.flatnonzero(mask[self.pair_demand])

        def sub(a):
            return None if a is None else a[mask]

        return SitingInput(self.demand_id[mask], self.weight[mask], self.site_id, self.existing, self.capacity,
                           new_pos[self.pair_demand[keep]], self.pair_site[keep], self.pair_distance[keep], self.cutoff,
                           sub(self.demand_group), sub(self.demand_label), self.site_name, sub(self.demand_xy),
                           self.site_xy, dict(self.meta))


@dataclass
class Prepared:
    inp: SitingInput
    radius: float
    cutoff: float
    new: np.ndarray  # positions of candidate (new) sites
    new_pos: np.ndarray  # site position -> position among new sites (-1 for existing)
    pi: np.ndarray  # model pairs (≤ cutoff)
    pj: np.ndarray
    pd_: np.ndarray
    reach: np.ndarray  # demand reachable within the model's cut-off by any site


def prepare(inp: SitingInput, radius: float, cutoff: float) -> Prepared:
    keep = inp.pair_distance <= cutoff
    pi, pj, pdist = inp.pair_demand[keep], inp.pair_site[keep], inp.pair_distance[keep]
    new = np.flatnonzero(~inp.existing)
    new_pos = np.full(inp.n_sites, -1)
    new_pos[new] = np.arange(len(new))
    reach = np.zeros(inp.n_demand, bool)
    reach[pi] = True
    reach &= inp.weight > 0
    return Prepared(inp, radius, cutoff, new, new_pos, pi, pj, pdist, reach)


def cover_rows(demand: np.ndarray, site: np.ndarray, weight: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """Group demand points by their set of covering sites: (distinct sets, weight per set,
    set index per demand point in ``np.unique(demand)`` order)."""
    order = np.lexsort((site, demand))
    d, s = demand[order], site[order]
    uniq, starts = np.unique(d, return_index=True)
    bounds = np.append(starts, len(d))
    sets: dict[tuple[int, ...], int] = {}
    which = np.empty(len(uniq), np.int64)
    for k in range(len(uniq)):
        key = tuple(s[bounds[k]:bounds[k + 1]].tolist())
        which[k] = sets.setdefault(key, len(sets))
    w = np.zeros(len(sets))
    np.add.at(w, which, weight[uniq])
    return list(sets), w, which
