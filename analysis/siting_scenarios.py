"""Siting scenarios: every run kept with its inputs and results, compared side by side,
exported (CSV/Excel, GeoJSON) and drawn as a map for a planner's report (PNG or PDF).

    result, sid = run(conn, "community_service_station", "lscp")          # build, solve, save
    compare(conn, [sid, other])                                           # one column per scenario
    export(conn, [sid, other], "siting.xlsx")                             # or .csv / .geojson
    map_figure(conn, [sid, other], "siting.pdf")                          # or .png

Tables (migration 0009): ``siting_scenarios`` (inputs, status, figures),
``siting_scenario_sites`` (open sites as points), ``siting_scenario_demand`` (where each
home went). Pages call these functions; nothing here imports Streamlit.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from analysis.siting import SitingInput, SitingResult, solve
from analysis.siting_inputs import build_input
from gis.copy import copy_frame
from gis.fonts import cjk_font
from gis.frames import records
from gis.messages import msg
from gis.inert import inert_frame
from layers.vocab import FACILITY_CATEGORIES, label


MODEL_ZH = {"lscp": "集合覆盖", "mclp": "最大覆盖", "pmedian": "p-中值"}


# --- running and saving ---------------------------------------------------------------------

def run(conn: Connection, category: str, model: str, *, radius: float | None = None, cutoff: float | None = None,
        p: int | None = None, candidates: str | Path | None = None, crs: str | None = None, weight: str = "households",
        capacitated: bool = False, candidate_capacity: float | None = None, time_limit: float = 60.0,
        mip_gap: float = 1e-6, unserved_penalty: float | None = None, split_demand: bool = False, name: str | None = None,
        save_run: bool = True, progress: Callable[[str, float], None] | None = None) -> tuple[SitingResult, int | None]:
    """Build the input from the database, solve, and (by default) store the scenario.
    ``progress(step, fraction)`` is called as the steps start (a screen's progress bar);
    solving takes at most ``time_limit`` seconds."""
    tick = progress or (lambda step, fraction: None)
    tick(msg("siting.step.reading"), 0.0)
    inp = build_input(conn, category, radius=radius, cutoff=cutoff, weight=weight, candidates=candidates, crs=crs,
                      candidate_capacity=candidate_capacity)
    tick(msg("siting.step.solving", pairs=len(inp.pair_distance), time_limit=time_limit), 0.3)
    result = solve(inp, model, inp.meta["radius_m"], p, capacitated=capacitated, cutoff=inp.meta["cutoff_m"],
                   time_limit=time_limit, mip_gap=mip_gap, unserved_penalty=unserved_penalty, split_demand=split_demand)
    result.notes[:0] = inp.meta.get("notes", [])
    sid = None
    if save_run:
        tick(msg("siting.step.saving"), 0.9)
        sid = save(conn, result, inp, name=name, params={"mip_gap": mip_gap, "unserved_penalty": unserved_penalty,
                                                          "split_demand": split_demand, "candidate_capacity": candidate_capacity})
    tick(msg("siting.step.done"), 1.0)
    return result, sid


def save(conn: Connection, result: SitingResult, inp: SitingInput, *, name: str | None = None,
         params: dict | None = None) -> int:
    """Store a result with the input it came from; returns the scenario id."""
    meta = inp.meta
    s = result.summary()
    params = {**(params or {}), "candidate_count": meta.get("candidate_count"), "existing_count": meta.get("existing_count"),
              "demand_count": meta.get("demand_count"), "pairs": meta.get("pairs"), "network": meta.get("network"),
              "srid": meta.get("srid"), "details": {k: v for k, v in result.details.items() if k != "phase1"},
              "build_s": s["build_s"]}
    sid = conn.execute(text("""
        INSERT INTO siting_scenarios (name, category, model, capacitated, radius_m, cutoff_m, p, candidates, weight, time_limit_s,
            params, status, gap, objective, new_sites, total_weight, covered_weight, covered_before, served_weight,
            mean_distance_m, p95_distance_m, unreachable_weight, unserved_weight, solve_s, worst_grids, notes)
        VALUES (:name, :category, :model, :cap, :radius, :cutoff, :p, :cands, :weight, :tl, CAST(:params AS jsonb), :status,
            :gap, :objective, :new_sites, :total, :covered, :before, :served, :mean, :p95, :unreach, :unserved, :solve_s,
            CAST(:worst AS jsonb), CAST(:notes AS jsonb))
        RETURNING id"""), {
        "name": name, "category": meta.get("category", "unknown"), "model": result.model, "cap": result.capacitated,
        "radius": result.radius, "cutoff": result.cutoff, "p": result.p, "cands": meta.get("candidates", "given"),
        "weight": meta.get("weight", "households"), "tl": result.time_limit, "params": json.dumps(params, default=_json_default),
        "status": result.status, "gap": result.gap, "objective": result.objective, "new_sites": s["new_sites"],
        "total": result.total_weight, "covered": result.covered_weight, "before": result.covered_before,
        "served": result.served_weight, "mean": result.mean_distance_m, "p95": result.p95_distance_m,
        "unreach": s["unreachable_weight"], "unserved": s["unserved_weight"], "solve_s": result.solve_seconds,
        "worst": json.dumps(records(result.worst_grids), default=_json_default),
        "notes": json.dumps(result.notes, ensure_ascii=False)}).scalar_one()
    sites = result.sites.reset_index(drop=True)
    serial = {k: i + 1 for i, k in enumerate(sites["site_id"].tolist())}
    if len(sites):
        conn.execute(text("""
            INSERT INTO siting_scenario_sites (scenario_id, serial, site_key, name, existing, facility_id, capacity,
                assigned_weight, demand_points, geom)
            VALUES (:sid, :serial, :key, :name, :existing, :fid, :cap, :load, :npts, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"""),
            [{"sid": sid, "serial": serial[r.site_id], "key": str(r.site_id), "name": None if pd.isna(r.name) else str(r.name),
              "existing": bool(r.existing), "fid": _facility_id(r.site_id) if r.existing else None,
              "cap": None if pd.isna(r.capacity) else float(r.capacity), "load": float(r.assigned_weight),
              "npts": int(r.demand_points), "lon": float(r.lon), "lat": float(r.lat)} for r in sites.itertuples()])
    a = result.assignment
    if len(a):
        frame = pd.DataFrame({
            "scenario_id": sid, "building_id": a["demand_id"].astype("int64"),
            "grid_code": a["group"] if "group" in a else None,
            "site_serial": a["site_id"].map(serial).astype("Int64"), "share": a["share"].astype(float),
            "weight": a["weight"].astype(float), "distance_m": a["distance_m"].astype(float),
            "within_radius": a["within_radius"].astype(bool), "reason": a.get("reason"),
            "covered_before": a["covered_before"].astype(bool) if "covered_before" in a else False})
        copy_frame(conn, "siting_scenario_demand", frame)
    return int(sid)


def _facility_id(key: Any) -> int | None:
    text_ = str(key)
    return int(text_[1:]) if text_.startswith("F") and text_[1:].isdigit() else None


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


# --- reading --------------------------------------------------------------------------------

def list_scenarios(conn: Connection, category: str | None = None, limit: int = 100) -> pd.DataFrame:
    return pd.read_sql(text("""
        SELECT id, name, created_at, created_by, category, model, capacitated, radius_m, cutoff_m, p, candidates, weight,
               status, gap, objective, new_sites, covered_weight / nullif(total_weight, 0) AS coverage_share,
               mean_distance_m, p95_distance_m
        FROM siting_scenarios WHERE CAST(:c AS text) IS NULL OR category = :c ORDER BY id DESC LIMIT :n"""),
        conn, params={"c": category, "n": limit})


def scenario(conn: Connection, sid: int) -> dict:
    row = conn.execute(text("SELECT * FROM siting_scenarios WHERE id = :id"), {"id": sid}).mappings().one_or_none()
    if row is None:
        raise KeyError(f"no siting scenario {sid}")
    return dict(row)


def sites(conn: Connection, sid: int) -> gpd.GeoDataFrame:
    """Open sites of a scenario (EPSG:4326), new first."""
    return gpd.read_postgis(text("""
        SELECT scenario_id, serial, site_key, name, existing, NOT existing AS new, facility_id, capacity, assigned_weight,
               demand_points, ST_X(geom) AS lon, ST_Y(geom) AS lat, geom
        FROM siting_scenario_sites WHERE scenario_id = :id ORDER BY existing, assigned_weight DESC"""),
        conn, params={"id": sid}, geom_col="geom")


def catchments(conn: Connection, sid: int) -> gpd.GeoDataFrame:
    """Per open site, the homes assigned to it (a convex hull around their footprints,
    EPSG:4326) with their weight: the catchment the screen draws for each new site."""
    return gpd.read_postgis(text("""
        SELECT s.serial, s.site_key, s.name, s.existing, sum(d.weight) AS weight, count(*) AS homes,
               ST_ConvexHull(ST_Collect(b.geom)) AS geom
        FROM siting_scenario_demand d JOIN siting_scenario_sites s ON s.scenario_id = d.scenario_id AND s.serial = d.site_serial
        JOIN buildings b ON b.id = d.building_id AND b.district_code = d.district_code
        WHERE d.scenario_id = :id GROUP BY s.serial, s.site_key, s.name, s.existing ORDER BY s.serial"""),
        conn, params={"id": sid}, geom_col="geom")


def homes(conn: Connection, sid: int) -> gpd.GeoDataFrame:
    """Every home of a scenario as a point (EPSG:4326) with its weight and whether it is
    within the radius before (existing sites only) and after (the scenario's sites)."""
    return gpd.read_postgis(text("""
        SELECT d.building_id, d.grid_code, sum(d.weight) AS weight, bool_or(d.covered_before) AS covered_before,
               bool_or(d.within_radius) AS covered_after, min(d.distance_m) AS distance_m, ST_PointOnSurface(b.geom) AS geom
        FROM siting_scenario_demand d JOIN buildings b ON b.id = d.building_id AND b.district_code = d.district_code
        WHERE d.scenario_id = :id GROUP BY d.building_id, d.grid_code, b.geom"""), conn, params={"id": sid}, geom_col="geom")


def demand(conn: Connection, sid: int) -> pd.DataFrame:
    return pd.read_sql(text("""
        SELECT d.building_id, b.source_id, d.grid_code, d.site_serial, s.site_key, d.share, d.weight, d.distance_m,
               d.within_radius, d.covered_before, d.reason
        FROM siting_scenario_demand d LEFT JOIN buildings b ON b.id = d.building_id AND b.district_code = d.district_code
        LEFT JOIN siting_scenario_sites s ON s.scenario_id = d.scenario_id AND s.serial = d.site_serial
        WHERE d.scenario_id = :id ORDER BY d.building_id"""), conn, params={"id": sid})


def delete(conn: Connection, sid: int) -> None:
    # the demand rows first, by name: on Citus their key to the scenario cannot be kept (a distributed
    # table's key to a replicated one: gis/citus.py), so no cascade would remove them
    conn.execute(text("DELETE FROM siting_scenario_demand WHERE scenario_id = :id"), {"id": sid})
    conn.execute(text("DELETE FROM siting_scenarios WHERE id = :id"), {"id": sid})


# --- comparing ------------------------------------------------------------------------------

COMPARE_ROWS = (
    ("名称 name", "name"), ("设施类别 category", "category_label"), ("模型 model", "model_label"),
    ("半径 radius (m)", "radius_m"), ("截断距离 cut-off (m)", "cutoff_m"), ("p", "p"), ("候选点 candidates", "candidates"),
    ("需求权重 weight", "weight"), ("求解状态 status", "status"), ("差距 gap", "gap"), ("目标值 objective", "objective"),
    ("新增站点 new sites", "new_sites"), ("覆盖户数 households covered", "covered_weight"),
    ("覆盖率 share covered", "coverage_share"), ("现状覆盖率 share covered before", "covered_before_share"),
    ("平均步行距离 mean walk (m)", "mean_distance_m"), ("95%步行距离 P95 walk (m)", "p95_distance_m"),
    ("不可达户数 unreachable", "unreachable_weight"), ("未服务户数 unserved", "unserved_weight"),
    ("最差网格 worst-served grids", "worst_text"), ("求解时间 solve (s)", "solve_s"),
)


def compare(conn: Connection, ids: list[int], lang: str = "zh") -> pd.DataFrame:
    """Scenarios side by side: one column per scenario, one row per figure."""
    if not ids:
        raise ValueError("give at least one scenario")
    cols = {}
    for sid in ids:
        r = scenario(conn, sid)
        total = r["total_weight"] or 0.0
        worst = r["worst_grids"] or []
        r = {**r,
             "category_label": f"{label(FACILITY_CATEGORIES, r['category'], 'zh')} {r['category']}",
             "model_label": f"{MODEL_ZH.get(r['model'], r['model'])} {r['model']}" + (" (capacitated)" if r["capacitated"] else ""),
             "coverage_share": round(r["covered_weight"] / total, 4) if total else None,
             "covered_before_share": round(r["covered_before"] / total, 4) if total else None,
             "worst_text": "; ".join(f"{g['group']} {g['covered_share']:.0%}" for g in worst[:3]),
             "gap": None if r["gap"] is None else round(r["gap"], 6),
             "name": r["name"] or f"#{sid}"}
        cols[f"#{sid}"] = [r.get(k) for _, k in COMPARE_ROWS]
    index = [lab if lang == "zh" else lab.split(" ", 1)[-1] for lab, _ in COMPARE_ROWS]
    return pd.DataFrame(cols, index=index)


def worst_grids(conn: Connection, ids: list[int], n: int = 10) -> pd.DataFrame:
    rows = []
    for sid in ids:
        for g in (scenario(conn, sid)["worst_grids"] or [])[:n]:
            rows.append({"scenario": sid, **g})
    return pd.DataFrame(rows)


# --- exporting ------------------------------------------------------------------------------

def export(conn: Connection, ids: list[int], path: str | Path) -> Path:
    """.csv: the comparison; .xlsx: comparison, sites and worst grids as sheets; .geojson:
    the sites of every scenario (points, EPSG:4326) with their scenario and figures."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        inert_frame(compare(conn, ids)).to_csv(path, encoding="utf-8-sig")
    elif suffix in (".xlsx", ".xls"):
        all_sites = pd.concat([pd.DataFrame(sites(conn, sid).drop(columns="geom")) for sid in ids], ignore_index=True)
        with pd.ExcelWriter(path, engine="openpyxl") as xl:
            inert_frame(compare(conn, ids)).to_excel(xl, sheet_name="对比 comparison")
            inert_frame(all_sites).to_excel(xl, sheet_name="站点 sites", index=False)
            inert_frame(worst_grids(conn, ids)).to_excel(xl, sheet_name="最差网格 worst grids", index=False)
    elif suffix in (".geojson", ".json"):
        frames = [sites(conn, sid) for sid in ids]
        gdf = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geom", crs=4326)
        for c in ("capacity",):
            gdf[c] = gdf[c].astype(float)
        path.write_text(gdf.to_json(ensure_ascii=False, drop_id=True), encoding="utf-8")
    else:
        raise ValueError(f"unknown export format {suffix!r}: .csv, .xlsx or .geojson")
    return path


# --- the map for a report -------------------------------------------------------------------

def map_figure(conn: Connection, ids: list[int], path: str | Path, title: str | None = None, before: bool = False) -> Path:
    """One panel per scenario (and with ``before``, first a panel of the existing sites
    alone): homes within the radius of an open site (green) or not (red), existing sites
    (black squares), new sites (numbered stars) with their catchments, the road network and
    community boundaries; the figures under each panel. PNG or PDF (by the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not ids:
        raise ValueError("give at least one scenario")
    path = Path(path)
    font = cjk_font()
    comm = gpd.read_postgis(text("SELECT code, name, geom FROM communities ORDER BY code"), conn, geom_col="geom")
    roads = gpd.read_postgis(text("SELECT geom FROM roads WHERE walkable"), conn, geom_col="geom")
    panels = ([("before", ids[0])] if before else []) + [("after", sid) for sid in ids]
    fig, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 8.2), squeeze=False)
    for ax, (kind, sid) in zip(axes[0], panels):
        r = scenario(conn, sid)
        pts = homes(conn, sid)
        st = sites(conn, sid)
        hull = catchments(conn, sid) if kind == "after" else None
        if kind == "before":
            st = st[st["existing"]]
        if len(roads):
            roads.plot(ax=ax, color="#c8ccd2", linewidth=0.5, zorder=1)
        if len(comm):
            comm.boundary.plot(ax=ax, color="#6b7280", linewidth=0.9, linestyle="--", zorder=2)
            for c in comm.itertuples():
                pt = c.geom.representative_point()
                ax.annotate(c.name, (pt.x, pt.y), fontproperties=font, fontsize=7, color="#6b7280", ha="center", alpha=0.8)
        if hull is not None and len(hull[~hull["existing"]]):
            hull[~hull["existing"]].plot(ax=ax, facecolor="#fde68a", edgecolor="#d97706", alpha=0.35, linewidth=0.6, zorder=2)
        if len(pts):
            sizes = 2 + 10 * np.sqrt(pts["weight"] / max(pts["weight"].max(), 1))
            inside = pts["covered_before" if kind == "before" else "covered_after"].to_numpy(bool)
            ax.scatter(pts.geometry.x[~inside], pts.geometry.y[~inside], s=sizes[~inside], c="#dc2626", alpha=0.6, lw=0, zorder=3)
            ax.scatter(pts.geometry.x[inside], pts.geometry.y[inside], s=sizes[inside], c="#16a34a", alpha=0.5, lw=0, zorder=3)
        old = st[st["existing"]]
        new = st[~st["existing"]]
        if len(old):
            ax.scatter(old.geometry.x, old.geometry.y, marker="s", s=40, c="black", zorder=5)
        if len(new):
            ax.scatter(new.geometry.x, new.geometry.y, marker="*", s=160, c="#2563eb", edgecolors="white", linewidths=0.6, zorder=6)
            for k, srow in enumerate(new.itertuples(), start=1):
                ax.annotate(str(k), (srow.geom.x, srow.geom.y), xytext=(4, 4), textcoords="offset points", fontsize=7,
                            color="#1e3a8a", zorder=7)
        total = r["total_weight"] or 1.0
        what = f"{label(FACILITY_CATEGORIES, r['category'])} · 半径 {r['radius_m']:.0f} m"
        if kind == "before":
            ax.set_title(f"现状 before: 现有设施 existing sites\n{what}", fontproperties=font, fontsize=11, loc="left")
            figures = (f"现有设施 {len(old)} 个；半径内 {r['covered_before']:.0f} / {total:.0f} 户 ({r['covered_before'] / total:.1%})")
        else:
            gap = "" if r["status"] == "optimal" else f"，差距 gap {r['gap']:.2%}" if r["gap"] is not None else ""
            ax.set_title(f"方案 #{sid} {r['name'] or ''}\n{what} · {MODEL_ZH.get(r['model'], r['model'])}"
                         + (f" · p={r['p']}" if r["p"] is not None else ""), fontproperties=font, fontsize=11, loc="left")
            figures = (f"新增站点 {r['new_sites']} 个；覆盖 {r['covered_weight']:.0f} / {total:.0f} 户 "
                       f"({r['covered_weight'] / total:.1%}，现状 {r['covered_before'] / total:.1%})\n"
                       f"平均步行 {_m(r['mean_distance_m'])}，95% 步行 {_m(r['p95_distance_m'])}；"
                       f"不可达 {r['unreachable_weight']:.0f} 户；求解 {r['status']}{gap}")
        ax.text(0.0, -0.03, figures, transform=ax.transAxes, fontproperties=font, fontsize=8.5, va="top")
        y0_, y1_ = ax.get_ylim()
        ax.set_aspect(1 / np.cos(np.radians((y0_ + y1_) / 2)))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
        _scale_bar(ax, font)
    handles = [Line2D([], [], marker="o", ls="", color="#16a34a", label="半径内住宅 homes within the radius"),
               Line2D([], [], marker="o", ls="", color="#dc2626", label="半径外住宅 homes beyond it"),
               Line2D([], [], marker="s", ls="", color="black", label="现有设施 existing"),
               Line2D([], [], marker="*", ls="", color="#2563eb", markersize=12, label="新增选址 new site"),
               Line2D([], [], color="#d97706", label="新站服务范围 catchment of a new site")]
    fig.legend(handles=handles, loc="lower center", ncol=5, prop=font, frameon=False)
    fig.suptitle(title or "设施选址方案 / siting scenarios", fontproperties=font, fontsize=14, x=0.02, ha="left")
    fig.text(0.98, 0.955, "步行距离沿道路网计算 / walking distances along the road network", fontproperties=font, fontsize=7,
             ha="right", color="#6b7280")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.88, bottom=0.14, wspace=0.05)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=170 if path.suffix.lower() == ".png" else None)
    plt.close(fig)
    return path


def _m(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f} m"


def _scale_bar(ax, font) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    lat = (y0 + y1) / 2
    m_per_deg = 111_320 * np.cos(np.radians(lat))
    width_m = (x1 - x0) * m_per_deg
    bar = next((b for b in (50, 100, 200, 250, 500, 1000, 2000, 5000) if b >= width_m / 6), 5000)
    bx, by = x0 + (x1 - x0) * 0.04, y0 + (y1 - y0) * 0.04
    ax.plot([bx, bx + bar / m_per_deg], [by, by], color="black", lw=2, zorder=8)
    ax.annotate(f"{bar} m", (bx, by + (y1 - y0) * 0.012), fontsize=7, zorder=8)
    ax.annotate("N ↑", (x1 - (x1 - x0) * 0.07, y1 - (y1 - y0) * 0.06), fontproperties=font, fontsize=10, weight="bold")
