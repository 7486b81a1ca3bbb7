"""The screens' named reads and commands: the one way a screen reaches data.

Each function is written as a plain call into the layer or analysis that owns the SQL
(no SQL here) and decorated by ``ui.seam``: ``@read`` opens the signed-in user's scoped
connection, caches the answer keyed by the user's area and turns a failure into a
reference number; ``@command`` runs in one transaction, forgets every cached read after
the commit and passes refusals the user can act on (a conflict, bad input) as ``Refused``.
Callers never pass the connection: ``data.figures(sub)``.

Why a cache: every widget change reruns the page script; figures over a city's grids
should not be recomputed for each click. Thirty seconds is short enough that an import
shows up at once on the administrator's own screen (commands clear the cache) and soon
on everyone else's. Stored analysis results are in ``ui/coverage_data.py`` (same decorators).
A new screen (events, visits) adds its functions here and nothing below.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd

from analysis import overview, staffing
from layers import buildings, cadres, cameras, facilities, grids
from ui import cache
from ui.handout import GridPack
from ui.seam import Failed, Refused, command, read  # noqa: F401 - screens catch Failed/Refused from here

# --- overview: one function per fact (every screen showing a figure reads it from here) -------


@read
def subdistricts(c) -> pd.DataFrame:
    return overview.subdistricts(c)


@read
def figures(c, subdistrict: str | None, community: str | None = None) -> dict:
    """The key figures of an area (the overview's, the secretary's and the staffing screen's):
    workers and households per worker come from ``analysis.overview.figures`` only."""
    out = overview.figures(c, subdistrict, community)
    out["coverage"] = overview.coverage_figures(c, subdistrict, community)  # the same area as the counts
    return out


@read
def community_table(c, subdistrict: str | None) -> pd.DataFrame:
    return overview.community_table(c, subdistrict)


@read
def grid_table(c, subdistrict: str | None, community: str | None = None) -> pd.DataFrame:
    return overview.grid_table(c, subdistrict, community)


@read
def bounds(c, subdistrict: str | None, community: str | None = None) -> tuple[float, float, float, float] | None:
    return overview.bounds(c, subdistrict, community)


def communities(subdistrict: str | None) -> pd.DataFrame:
    return community_table(subdistrict)[["code", "name"]]


@read
def grid_choices(c, community: str | None = None) -> pd.DataFrame:
    return grids.grid_choices(c, community)


@read
def cameras_in(c, bounds: tuple[float, float, float, float] | None, limit: int | None = None) -> gpd.GeoDataFrame:
    return cameras.cameras_in(c, bounds=bounds, limit=limit)


@read
def facilities_in(c, bounds: tuple[float, float, float, float] | None, limit: int | None = None) -> gpd.GeoDataFrame:
    return facilities.facilities_in(c, bounds=bounds, limit=limit)


@read
def attention_grids(c, subdistrict: str | None, community: str | None = None, limit: int | None = None) -> tuple[pd.DataFrame, int]:
    """The grids needing attention (every verdict but ``ok``), the most pressing first, at most
    ``limit`` of them, and how many there are in all: a city's 50,000 grids are not one table to read."""
    return overview.attention_grids(c, subdistrict, community, limit)


@read
def grid_pack(c, grid_id: int) -> GridPack | None:
    """Everything the grid worker's screen and handouts show about one grid."""
    detail = grids.grid_detail(c, grid_id)
    if detail is None:
        return None
    neighbours = grids.neighbours(c, grid_id)
    status = overview.grid_table(c)  # verdicts for colouring the neighbours; a grid whose staff the
    neighbours = neighbours.merge(status[["id", "status"]].rename(columns={"status": "st"}), on="id", how="left")
    neighbours["st"] = neighbours["st"].fillna("unknown")  # scope may not read is "unknown", never "no worker"
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


@read
def search(c, query: str) -> pd.DataFrame:
    """Hits for a map's search box (what the user may see): layer, id, kind, label, extent."""
    return overview.search(c, query)


@read(cache_it=False)
def detail(c, layer: str, feature_id: object) -> dict | None:
    """The attributes of a clicked feature, looked up by its id (never cached: always current)."""
    # Coverage layers carry the id of what they show: a camera's view, a home, a community.
    layer = {"camera_views": "cameras", "homes_reach": "buildings", "compliance": "communities"}.get(layer, layer)
    if layer in ("grids", "grid", "neighbours", "staffing"):
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


@read(cache_it=False)
def layer_status(c) -> pd.DataFrame:
    from layers.export import status

    return pd.DataFrame(status(c))


def clear() -> None:
    """Forget cached reads (after an import or an edit), every user's."""
    cache.clear()


def import_file(layer: str, path, **options):
    """An upload through exactly the CLI's import (its own transaction, all or nothing);
    ``ImportFailed`` passes as it is (its problems are shown row by row), any other failure
    of the file (unreadable, unknown CRS) as ``Refused``; cached reads are forgotten after."""
    from gis.problems import ImportFailed
    from layers.importer import import_file as do
    from ui.seam import _user_errors, log_failure

    try:
        report = do(layer, path, **options)
    except ImportFailed:
        raise
    except (ValueError, OSError, KeyError, *_user_errors()) as exc:
        raise Refused(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    except Exception as exc:  # noqa: BLE001
        raise Failed(log_failure(exc, "import")) from exc
    cache.clear()
    return report


# --- staffing (the leader's staffing screen and the worker's load) --------------------------

@read
def staffing_state(c) -> dict:
    """Grids with staffing status, the gap list, the summary per community and the workers."""
    now = staffing.state(c)
    return {"grids": now.grids, "gaps": now.gaps, "summary": now.summary, "workers": now.workers}


@read
def worker_load(c, community: str | None = None) -> pd.DataFrame:
    return staffing.workers(c, community)


@read(cache_it=False)
def cadre_registry(c) -> pd.DataFrame:
    return cadres.registry(c)


@command
def assign(c, cadre: str, **kwargs) -> None:
    from grid.assign import assign as do

    do(c, cadre, **kwargs)


@command
def unassign(c, cadre: str, **kwargs) -> None:
    from grid.assign import unassign as do

    do(c, cadre, **kwargs)


@command
def update_cadres(c, changes: list[tuple[str, dict]], actor: str) -> int:
    for cadre_no, diff in changes:
        cadres.update(c, cadre_no, diff, actor=actor)
    return len(changes)


@read(cache_it=False)
def staffing_proposal(c):
    from grid import staffing_plan

    return staffing_plan.propose(c)


@command
def accept_staffing(c, plan, which: list[int], actor: str) -> None:
    from grid import staffing_plan

    staffing_plan.accept(c, plan, which, actor=actor)


# --- grids (the administrator's grid screen) ---------------------------------------------------

@read(cache_it=False)
def grid_problems(c, community: str):
    from grid.checks import check

    return check(c, community)


@command(clears=False)
def propose_grids(c, community: str, lo: int, hi: int, actor: str) -> int:
    from grid import drafts
    from grid.delineate import propose

    return drafts.save(c, propose(c, community, lo, hi), actor=actor)


@read(cache_it=False)
def draft_parts(c, draft_id: int):
    from grid import drafts

    return drafts.parts(c, draft_id)


@command
def accept_draft(c, draft_id: int, actor: str):
    from grid import drafts

    return drafts.accept(c, draft_id, actor=actor)


@command(clears=False)
def discard_draft(c, draft_id: int, actor: str) -> None:
    from grid import drafts

    drafts.discard(c, draft_id, actor=actor)


# --- users and audit (the administrator) -------------------------------------------------------

@read(cache_it=False)
def users(c) -> pd.DataFrame:
    from layers import users as auth

    return auth.list_users(c)


@read(cache_it=False)
def user(c, username: str):
    from layers import users as auth

    return auth.get_user(c, username)


@command(clears=False)
def create_user(c, username: str, password: str, role: str, **values):
    from layers import users as auth

    return auth.create_user(c, username, password, role, **values)


@command(clears=False)
def update_user(c, username: str, **values) -> None:
    from layers import users as auth

    auth.update_user(c, username, **values)


@command(clears=False)
def set_password(c, username: str, password: str) -> None:
    from layers import users as auth

    auth.set_password(c, username, password)


@read(cache_it=False)
def audit_actions(c) -> list[str]:
    from layers.audit import actions

    return actions(c)


@read(cache_it=False)
def audit_log(c, **filters) -> pd.DataFrame:
    from layers.audit import list_audit

    return list_audit(c, **filters)


# --- siting (the planner's screen): stored scenarios are read back by id -----------------

@read
def siting_list(c) -> pd.DataFrame:
    from analysis.siting_scenarios import list_scenarios

    return list_scenarios(c)


@read(life="keep")
def siting_scenario(c, sid: int) -> dict:
    """A stored run: its row, open sites, catchments, homes and unreachable buildings. A
    scenario never changes once saved (it can only be deleted), so it is cached by id."""
    from analysis import siting_scenarios as sc

    demand = sc.demand(c, sid)
    return {"row": sc.scenario(c, sid), "sites": sc.sites(c, sid), "catchments": sc.catchments(c, sid),
            "homes": sc.homes(c, sid), "unreachable": demand[demand["reason"] == "unreachable"].reset_index(drop=True)}


@read(life="keep")
def siting_compare(c, ids: tuple[int, ...], lang: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The comparison table (one column per scenario) and the worst-served grids."""
    from analysis import siting_scenarios as sc

    return sc.compare(c, list(ids), lang), sc.worst_grids(c, list(ids))


@read(life="keep")
def siting_file(c, ids: tuple[int, ...], suffix: str, before: bool = False) -> bytes:
    """``export`` (.csv/.xlsx/.geojson) or ``map_figure`` (.png/.pdf) of scenarios, as bytes."""
    from analysis import siting_scenarios as sc

    with tempfile.TemporaryDirectory(prefix="wangge_siting_") as tmp:
        path = Path(tmp) / f"siting{suffix}"
        if suffix in (".png", ".pdf"):
            sc.map_figure(c, list(ids), path, before=before)
        else:
            sc.export(c, list(ids), path)
        return path.read_bytes()


@command
def siting_run(c, category: str, model: str, progress, **options) -> int:
    """Build, solve and store one run; returns the scenario id."""
    from analysis.siting_scenarios import run

    _, sid = run(c, category, model, progress=progress, **options)
    return int(sid)


@command
def siting_delete(c, sid: int) -> None:
    from analysis.siting_scenarios import delete

    delete(c, sid)
