"""The dashboard's reads, cached briefly per process and per user area (``ui.cache``).

Why a cache: every widget change reruns the page script; figures over a city's grids
should not be recomputed for each click. Thirty seconds is short enough that an
import shows up at once on the administrator's own screen (``clear()`` after an import)
and soon on everyone else's. No SQL here: each function calls the analysis or layer
that owns the query.
"""
from __future__ import annotations

import geopandas as gpd
import pandas as pd

from analysis import overview
from gis.db import app_engine
from gis.scope import current as current_scope
from layers import buildings, cadres, cameras, facilities, grids
from ui import cache
from ui.cache import cached
from ui.handout import GridPack


@cached
def subdistricts() -> pd.DataFrame:
    with app_engine().connect() as c:
        return overview.subdistricts(c)


@cached
def figures(subdistrict: str | None, community: str | None = None) -> dict:
    with app_engine().connect() as c:
        out = overview.figures(c, subdistrict, community)
        out["coverage"] = overview.coverage_figures(c, subdistrict)
        return out


@cached
def community_table(subdistrict: str | None) -> pd.DataFrame:
    with app_engine().connect() as c:
        return overview.community_table(c, subdistrict)


@cached
def grid_table(subdistrict: str | None, community: str | None = None) -> pd.DataFrame:
    with app_engine().connect() as c:
        return overview.grid_table(c, subdistrict, community)


@cached
def bounds(subdistrict: str | None, community: str | None = None) -> tuple[float, float, float, float] | None:
    with app_engine().connect() as c:
        return overview.bounds(c, subdistrict, community)


@cached
def communities(subdistrict: str | None) -> pd.DataFrame:
    table = community_table(subdistrict)
    return table[["code", "name"]]


@cached
def grid_choices(community: str | None = None) -> pd.DataFrame:
    with app_engine().connect() as c:
        return grids.grid_choices(c, community)


@cached
def cameras_in(bounds: tuple[float, float, float, float] | None) -> gpd.GeoDataFrame:
    with app_engine().connect() as c:
        return cameras.cameras_in(c, bounds=bounds)


@cached
def facilities_in(bounds: tuple[float, float, float, float] | None) -> gpd.GeoDataFrame:
    with app_engine().connect() as c:
        return facilities.facilities_in(c, bounds=bounds)


@cached
def grid_pack(grid_id: int) -> GridPack | None:
    """Everything the grid worker's screen and handouts show about one grid."""
    with app_engine().connect() as c:
        detail = grids.grid_detail(c, grid_id)
        if detail is None:
            return None
        neighbours = grids.neighbours(c, grid_id)
        status = overview.grid_table(c)  # verdicts for colouring the neighbours …
        viewer = current_scope()
        if viewer is not None and viewer.role == "worker":  # … but a worker's scope sees only their own
            status = status[status["id"].astype(int).isin(viewer.grids)]  # grids' homes and staff: others uncoloured
        neighbours = neighbours.merge(status[["id", "status"]].rename(columns={"status": "st"}), on="id", how="left")
        return GridPack(
            detail=detail,
            figures=overview.grid_figures(c, grid_id),
            shape=grids.grid_shape(c, grid_id),
            buildings=buildings.grid_buildings(c, grid_id, with_geometry=True),
            cameras=cameras.cameras_in(c, grid_id=grid_id),
            facilities=facilities.facilities_in(c, grid_id=grid_id),
            neighbours=neighbours,
            staff=cadres.grid_staff(c, grid_id),
        )


def detail(layer: str, feature_id: object) -> dict | None:
    """The attributes of a clicked feature, looked up by its id (never cached: always current)."""
    # Coverage layers carry the id of what they show: a camera's view, a home, a community.
    layer = {"camera_views": "cameras", "homes_reach": "buildings", "compliance": "communities"}.get(layer, layer)
    with app_engine().connect() as c:
        if layer in ("grids", "grid", "neighbours"):
            row = grids.grid_detail(c, int(feature_id))
            if row:
                row.update({k: v for k, v in overview.grid_figures(c, int(feature_id)).items() if k not in row})
            return row
        if layer == "buildings":
            return buildings.building_detail(c, int(feature_id))
        if layer == "cameras":
            return cameras.camera_detail(c, int(feature_id))
        if layer == "facilities":
            return facilities.facility_detail(c, int(feature_id))
        if layer == "communities":
            table = overview.community_table(c)
            rows = table[table["code"] == str(feature_id)].to_dict("records")
            return rows[0] if rows else None
    return None


def layer_status() -> pd.DataFrame:
    from layers.export import status

    with app_engine().connect() as c:
        return pd.DataFrame(status(c))


def clear() -> None:
    """Forget cached reads (after an import or an edit), every user's."""
    cache.clear()


# --- siting (the planner's screen): stored scenarios are read back by id -----------------

@cached
def siting_list() -> pd.DataFrame:
    from analysis.siting_scenarios import list_scenarios

    with app_engine().connect() as c:
        return list_scenarios(c)


@cached(life="keep")
def siting_scenario(sid: int) -> dict:
    """A stored run: its row, open sites, catchments, homes and unreachable buildings. A
    scenario never changes once saved (it can only be deleted), so it is cached by id."""
    from analysis import siting_scenarios as sc

    with app_engine().connect() as c:
        demand = sc.demand(c, sid)
        return {"row": sc.scenario(c, sid), "sites": sc.sites(c, sid), "catchments": sc.catchments(c, sid),
                "homes": sc.homes(c, sid), "unreachable": demand[demand["reason"] == "unreachable"].reset_index(drop=True)}


@cached(life="keep")
def siting_compare(ids: tuple[int, ...], lang: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison table (one column per scenario) and the worst-served grids."""
    from analysis import siting_scenarios as sc

    with app_engine().connect() as c:
        return sc.compare(c, list(ids), lang), sc.worst_grids(c, list(ids))


@cached(life="keep")
def siting_file(ids: tuple[int, ...], suffix: str, before: bool = False) -> bytes:
    """``export`` (.csv/.xlsx/.geojson) or ``map_figure`` (.png/.pdf) of scenarios, as bytes."""
    import tempfile
    from pathlib import Path

    from analysis import siting_scenarios as sc

    with tempfile.TemporaryDirectory(prefix="wangge_siting_") as tmp, app_engine().connect() as c:
        path = Path(tmp) / f"siting{suffix}"
        if suffix in (".png", ".pdf"):
            sc.map_figure(c, list(ids), path, before=before)
        else:
            sc.export(c, list(ids), path)
        return path.read_bytes()


def siting_run(category: str, model: str, progress, **options) -> int:
    """Build, solve and store one run (never cached); returns the scenario id."""
    from analysis.siting_scenarios import run
    from gis.db import transaction

    with transaction() as c:
        _, sid = run(c, category, model, progress=progress, **options)
    siting_list.clear()
    return int(sid)


def siting_delete(sid: int) -> None:
    from analysis.siting_scenarios import delete
    from gis.db import transaction

    with transaction() as c:
        delete(c, sid)
    siting_list.clear()
