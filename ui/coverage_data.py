"""The coverage screens' reads: stored camera, service and compliance results, their
freshness, and the recompute button's refresh — each a call into the analysis module that
owns the query (no SQL here).

Part of the screens' one seam (``ui.seam``'s decorators, as ``ui/data.py``); a separate
module from ``ui/data.py`` because these reads are keyed on the *result version*
(the id and time of the newest stored run of each analysis) besides the user's area
(``ui.cache``): a recompute shows at once, and stored results are otherwise kept ten
minutes. Freshness itself (``freshness``) is never cached: the stale warning must appear
as soon as a camera or facility has been edited.
"""
from __future__ import annotations

import geopandas as gpd
import pandas as pd
import shapely

from analysis import cameras, compliance, services
from analysis import freshness as fresh
from analysis.runs import last_run
from gis.db import app_engine
from gis.scope import SYSTEM, use_scope
from ui.seam import read

Version = tuple  # ((analysis, run id, computed_at) …): part of every cache key below


@read(cache_it=False)
def versions(c, detail: str) -> Version:
    """The newest stored run of each analysis (None where it never ran): cheap, uncached."""
    runs = {"cameras": last_run(c, "cameras", detail), "services": last_run(c, "services"),
            "compliance": last_run(c, "compliance")}
    return tuple((k, r["id"], str(r["computed_at"])) if r else (k, None, None) for k, r in runs.items())


def has(version: Version, analysis: str) -> bool:
    """Whether ``analysis`` has stored results in this version."""
    return any(k == analysis and rid is not None for k, rid, _ in version)


def freshness(detail: str) -> pd.DataFrame:
    """analysis, scope, code, computed_at, stale, why (``analysis.freshness.status``), never cached.

    Read with the SYSTEM scope: staleness compares fingerprints of *all* the rows a stored
    figure was computed from, and a grid worker (who may read only their grid's buildings)
    would otherwise see every other home as deleted, so everything as stale. The answer
    names areas and reasons only, never a row; screens filter it to the user's area."""
    with use_scope(SYSTEM), app_engine().connect() as c:
        return fresh.status(c, detail)


# --- cameras ---------------------------------------------------------------------------------

@read(life="long")
def camera_figures(c, detail: str, version: Version) -> pd.DataFrame:
    """Per grid, community and sub-district: lengths, areas, counts and shares (0–1)."""
    return cameras.coverage(c, detail)


@read(life="long")
def camera_report(c, detail: str, version: Version) -> pd.DataFrame:
    return cameras.camera_report(c, detail)


@read(life="long")
def xueliang(c, detail: str, version: Version) -> pd.DataFrame:
    return cameras.xueliang(c, detail)


@read(life="long")
def key_places(c, detail: str, version: Version) -> pd.DataFrame:
    return cameras.key_places(c, detail)


MAP_TOLERANCE_DEG = 1e-6  # about 0.1 m: what a map at zoom 19 can show; exports keep the exact geometry


def _for_map(frame: gpd.GeoDataFrame, for_map: bool) -> gpd.GeoDataFrame:
    """Exact shadows make a view a polygon of many vertices: a map needs a fifth of the bytes
    (the demo's views: 393 KB of GeoJSON → 70 KB, 99.6 % of the area kept)."""
    if not for_map or frame.empty:
        return frame
    geoms = shapely.set_precision(shapely.simplify(frame.geometry.to_numpy(), MAP_TOLERANCE_DEG, preserve_topology=True),
                                  MAP_TOLERANCE_DEG)
    out = frame.copy()
    out[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs)
    return out


@read(life="long")
def camera_views(c, detail: str, version: Version, community: str | None = None, for_map: bool = False) -> gpd.GeoDataFrame:
    """Visible areas (EPSG:4326): id = camera id, st = counted | not_counted."""
    frame = cameras.view_layer(c, detail, community)
    frame["id"] = frame["camera_id"]
    frame["st"] = frame["counted"].map({True: "counted", False: "not_counted"})
    return _for_map(frame, for_map)


@read(life="long")
def uncovered(c, detail: str, version: Version, community: str | None = None, for_map: bool = False) -> gpd.GeoDataFrame:
    """Uncovered road stretches and open space per unit (EPSG:4326), with an ``id`` per row."""
    frame = cameras.uncovered(c, community, detail)
    return _for_map(frame.assign(id=range(1, len(frame) + 1)), for_map)


# --- services --------------------------------------------------------------------------------

@read(life="long")
def category_coverage(c, version: Version, community: str | None = None) -> pd.DataFrame:
    return services.category_coverage(c, community)


@read(life="long")
def life_circles(c, version: Version, community: str | None = None) -> pd.DataFrame:
    return services.life_circle_coverage(c, community)


@read(life="long")
def homes(c, category: str, version: Version, community: str | None = None) -> gpd.GeoDataFrame:
    """Homes as points (EPSG:4326) with st = within | overclaimed (a buffer says yes, the
    walk no) | beyond; id = building id."""
    frame = services.home_layer(c, category, community)
    st_ = pd.Series("beyond", index=frame.index)
    if "within" in frame:
        st_[frame["overclaimed"]] = "overclaimed"
        st_[frame["within"]] = "within"
    frame["st"] = st_
    frame["id"] = frame["building_id"]
    return frame.set_geometry(frame.geometry.representative_point())


# --- compliance ------------------------------------------------------------------------------

@read(life="long")
def compliance_table(c, version: Version) -> pd.DataFrame:
    return compliance.stored_table(c)


@read(life="long")
def compliance_layer(c, version: Version) -> gpd.GeoDataFrame:
    """Community outlines, st = pass (every rule) | fail_one | fail_more."""
    frame = compliance.community_layer(c)
    frame["st"] = ["pass" if f == 0 else "fail_one" if f == 1 else "fail_more" for f in frame["failed"]]
    return frame


def rules() -> pd.DataFrame:
    return compliance.rules()


# --- recompute -------------------------------------------------------------------------------

def recompute(detail: str, full: bool = False) -> dict:
    """Bring every analysis up to date: cameras and services incrementally (only what the
    edits touch) unless ``full`` or nothing is stored; compliance whole (it is cheap).
    Returns each refresh's answer.

    Runs with the SYSTEM scope: the stored results are one set for the whole database
    (a refresh deletes and rewrites rows), so they must be computed from every building,
    not from the rows the pressing user may read. Only the leader's screen offers it."""
    out = {}
    with use_scope(SYSTEM):
        with app_engine().begin() as c:
            out["cameras"] = cameras.refresh(c, detail, full=full)
        with app_engine().begin() as c:
            out["services"] = services.refresh(c, full=full)
        with app_engine().begin() as c:
            out["compliance"] = {"communities": len(compliance.refresh(c))}
    return out
