"""Import a file into a layer: read, map columns, validate everything, reproject, write
in one transaction. Nothing is written unless every row passes (or, with
``skip_invalid``, the rows that fail are listed and left out).
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, text

from gis.crs import SourceCRS, unshift
from gis.db import transaction
from gis.osm import read_osm
from gis.problems import ImportFailed, Problem
from gis.readers import read_vector
from gis.settings import get_settings
from layers.admin import COMMUNITIES, SUBDISTRICTS
from layers.audit import record
from layers.base import ImportContext, LayerSpec, check_duplicates, check_fields, check_geometry, copy_rows, map_columns, max_id, without_jit
from layers.buildings import BUILDINGS
from layers.cadres import ASSIGNMENTS, CADRES
from layers.cameras import CAMERAS
from layers.facilities import FACILITIES
from layers.grids import GRIDS
from layers.roads import ROADS

LAYERS: dict[str, LayerSpec] = {s.name: s for s in (SUBDISTRICTS, COMMUNITIES, GRIDS, BUILDINGS, CAMERAS, FACILITIES, ROADS, CADRES, ASSIGNMENTS)}
# Order in which layers depend on each other (parents first).
LOAD_ORDER = list(LAYERS)


def layer_spec(name: str) -> LayerSpec:
    """A layer by its English or Chinese name."""
    for spec in LAYERS.values():
        if name.casefold() in (spec.name, spec.zh, spec.table):
            return spec
    raise KeyError(f"unknown layer {name!r}; layers: {', '.join(f'{s.name} ({s.zh})' for s in LAYERS.values())}")


@dataclass
class ImportReport:
    layer: str
    file: str
    rows: int
    crs: str | None
    seconds: float
    skipped: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "layer": self.layer, "file": self.file, "rows": self.rows, "crs": self.crs, "seconds": round(self.seconds, 3),
            "skipped": [p.to_dict() for p in self.skipped], "repaired": [p.to_dict() for p in self.repaired], "notes": self.notes,
        }


def import_file(
    layer: str,
    path: str | Path,
    *,
    crs: str | None = None,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    source_layer: str | None = None,
    skip_invalid: bool = False,
    repair: bool = False,
    replace: bool = False,
    district_code: str | None = None,
    conn: Connection | None = None,
    actor: str | None = None,
) -> ImportReport:
    spec = layer_spec(layer)
    source = read_vector(path, layer=source_layer, crs=crs, encoding=encoding)
    ctx = ImportContext(
        file=source.name, district_code=district_code or get_settings().default_district_code,
        repair=repair, skip_invalid=skip_invalid, replace=replace, notes=list(source.notes), unreadable=dict(source.unreadable),
    )
    with _atomic(conn) as c:
        return import_frame(spec, source.frame, source.crs, ctx, c, mapping=mapping, actor=actor)


@contextmanager
def _atomic(conn: Connection | None) -> Iterator[Connection]:
    """Its own transaction, or a savepoint inside the caller's: a failed import leaves no trace either way."""
    if conn is None:
        with transaction(owner=True) as own:
            yield own
    else:
        with conn.begin_nested():
            yield conn


def import_frame(
    spec: LayerSpec,
    gdf: gpd.GeoDataFrame,
    src_crs: SourceCRS | None,
    ctx: ImportContext,
    conn: Connection,
    *,
    mapping: dict[str, str] | None = None,
    actor: str | None = None,
) -> ImportReport:
    started = time.perf_counter()
    problems: list[Problem] = []
    gdf = gdf.reset_index(drop=True)
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf:
        gdf = gpd.GeoDataFrame(gdf, geometry=gpd.GeoSeries([None] * len(gdf)))
    gdf, mapped = map_columns(gdf, spec, mapping or {}, ctx.file)
    problems += mapped
    frame = check_fields(gdf, spec, ctx, problems)
    _district(frame, gdf, spec, ctx, problems)
    if spec.prepare:
        frame = spec.prepare(frame, ctx, problems)
    if spec.unique_id:
        check_duplicates(frame[spec.id_field], spec.id_field, ctx, problems)

    geoms = np.asarray(gdf.geometry.values, dtype=object)
    if spec.geom:
        has_geom = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if has_geom.any() and src_crs is None:
            problems.append(Problem(ctx.file, "缺少坐标系 / the file declares no CRS: pass --crs (EPSG code, gcj02 or bd09)"))
        else:
            geographic = src_crs is None or src_crs.crs.is_geographic
            geoms = check_geometry(geoms, spec, frame[spec.id_field], ctx, problems, geographic)
            geoms = _to_storage(geoms, src_crs, frame[spec.id_field], ctx, problems)

    fatal = [p for p in problems if p.row is None]
    bad_rows = sorted({p.row for p in problems if p.row is not None})
    if fatal or (bad_rows and not ctx.skip_invalid):
        raise ImportFailed(sorted(problems, key=lambda p: (p.row or 0)))
    if bad_rows:
        ctx.skipped.extend(sorted(problems, key=lambda p: p.row or 0))
        keep = np.ones(len(frame), dtype=bool)
        keep[np.array(bad_rows) - 1] = False
        # Keep the source positions as the index: problems found later still name source rows.
        frame, geoms = frame[keep], geoms[keep]

    _check_existing(conn, spec, frame, ctx)
    _check_communities(conn, spec, frame, ctx)
    if spec.geom:
        frame["geom"] = geoms  # EPSG:4326 geometries; copy_rows encodes them as EWKB while writing
    if ctx.replace:
        _clear(conn, spec, frame)
    if spec.before_write:
        spec.before_write(conn, frame, ctx)
    since = max_id(conn, spec.table) if spec.has_serial_id else 0
    columns = ["district_code", *(f.name for f in spec.stored if f.name != "district_code")]
    if spec.geom:
        columns.append("geom")
    columns += [c for c in spec.derived if c in frame.columns]
    if spec.direct_copy and len(frame):
        copy_rows(conn, spec.table, frame, list(dict.fromkeys(columns)), bulk=True)
    if spec.after_write and len(frame):
        spec.after_write(conn, frame, ctx)
    with without_jit(conn):
        for sql in spec.after_sql:
            conn.execute(text(sql), {"since": since} if ":since" in sql else {})
    from gis.citus import sync_building_places

    sync_building_places(conn)  # on Citus, what the place triggers do on one node (migration 0021)
    report = ImportReport(spec.name, ctx.file, len(frame), src_crs.label if src_crs else None, time.perf_counter() - started,
                          ctx.skipped, ctx.repaired, ctx.notes)
    record(conn, "import", spec.table, actor=actor, after={k: v for k, v in report.to_dict().items() if k != "seconds"},
          district_code=frame["district_code"].iloc[0] if len(frame) else None)
    return report


def _district(frame: pd.DataFrame, gdf: gpd.GeoDataFrame, spec: LayerSpec, ctx: ImportContext, problems: list[Problem]) -> None:
    if spec.district_from_code:
        frame["district_code"] = frame[spec.id_field].str[:6]
    elif "district_code" in gdf.columns:
        given = gdf["district_code"].astype("string").str.strip()
        frame["district_code"] = given.fillna(ctx.district_code)
        bad = ~frame["district_code"].str.fullmatch(r"[0-9]{6}").fillna(False)
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append(Problem(ctx.file, f"区县代码须为6位数字 / district_code must be 6 digits: {given.iloc[i]!r}", row=int(i) + 1, column="district_code"))
    else:
        frame["district_code"] = ctx.district_code


def _to_storage(geoms: np.ndarray, src: SourceCRS | None, ids: pd.Series, ctx: ImportContext, problems: list[Problem]) -> np.ndarray:
    """Reproject to EPSG:4326; undo GCJ-02/BD-09 shifts; flag points that fall off the earth."""
    if src is None:
        return geoms
    present = ~shapely.is_missing(geoms)
    if src.shift:
        geoms = geoms.copy()
        geoms[present] = unshift(geoms[present], src.shift)
        ctx.notes.append(f"coordinates converted from {src.shift} to WGS-84")
    elif src.crs.to_epsg() != 4326:
        geoms = np.asarray(gpd.GeoSeries(geoms, crs=src.crs).to_crs(4326).values, dtype=object)
    bounds = np.full((len(geoms), 4), np.nan)
    if present.any():
        bounds[present] = shapely.bounds(geoms[present])
    bad = present & ~(np.isfinite(bounds).all(axis=1) & (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180) & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90))
    for i in np.flatnonzero(bad):
        if not any(p.row == i + 1 for p in problems):
            problems.append(Problem(ctx.file, f"坐标超出范围 / coordinates fall outside the earth after reprojection from {src.label}", row=int(i) + 1, source_id=str(ids.iloc[i])))
    return geoms


def _check_existing(conn: Connection, spec: LayerSpec, frame: pd.DataFrame, ctx: ImportContext) -> None:
    if not spec.unique_id or ctx.replace or not len(frame):
        return
    current = " AND valid_to IS NULL" if spec.table == "grids" else ""
    if not conn.execute(text(f"SELECT EXISTS (SELECT 1 FROM {spec.table} WHERE TRUE{current})")).scalar_one():
        return  # an empty layer holds no IDs (and 100,000 IDs need not travel to learn that)
    existing = set(conn.execute(
        text(f"SELECT {spec.id_field} FROM {spec.table} WHERE {spec.id_field} = ANY(:ids){current}"),
        {"ids": frame[spec.id_field].astype(str).tolist()},
    ).scalars())
    if existing:
        rows = frame.index[frame[spec.id_field].astype(str).isin(existing)]
        raise ImportFailed([
            Problem(ctx.file, f"ID 已存在于{spec.zh}图层 / ID already in layer {spec.name} (use --replace to replace the layer)",
                    row=int(i) + 1, source_id=str(frame.at[i, spec.id_field]))
            for i in rows
        ])


def _check_communities(conn: Connection, spec: LayerSpec, frame: pd.DataFrame, ctx: ImportContext) -> None:
    """A community code must name a community in the table: a problem by row, not a foreign-key error."""
    if spec.table == "communities" or "community_code" not in frame or not len(frame):
        return
    given = frame["community_code"].dropna().astype(str)
    known = set(conn.execute(text("SELECT code FROM communities WHERE code = ANY(:c)"), {"c": sorted(set(given))}).scalars())
    missing = given[~given.isin(known)]
    if len(missing):
        raise ImportFailed([
            Problem(ctx.file, f"社区不存在 / no community {c!r} (import the communities layer first)", row=int(i) + 1,
                    source_id=str(frame.at[i, spec.id_field]), column="community_code")
            for i, c in missing.items()
        ])


def _clear(conn: Connection, spec: LayerSpec, frame: pd.DataFrame) -> None:
    """--replace: the file replaces the layer within its districts (grids are retired, not deleted)."""
    districts = sorted(frame["district_code"].dropna().unique().tolist())
    if spec.table == "grids":
        conn.execute(text("UPDATE buildings SET grid_id = NULL WHERE grid_id IN (SELECT id FROM grids WHERE valid_to IS NULL AND district_code = ANY(:d))"), {"d": districts})
        conn.execute(text("UPDATE grids SET valid_to = greatest(current_date, valid_from) WHERE valid_to IS NULL AND district_code = ANY(:d)"), {"d": districts})
    elif spec.table == "assignments":
        conn.execute(text("UPDATE assignments SET valid_to = current_date WHERE valid_to IS NULL AND district_code = ANY(:d)"), {"d": districts})
    else:
        conn.execute(text(f"DELETE FROM {spec.table} WHERE district_code = ANY(:d)"), {"d": districts})


def import_osm(
    path: str | Path,
    *,
    subdistrict_code: str | None = None,
    skip_invalid: bool = False,
    repair: bool = False,
    actor: str | None = None,
    progress=None,
    conn: Connection | None = None,
) -> list[ImportReport]:
    """Every layer an OSM extract holds, in one transaction: all of them land or none."""
    settings = get_settings()
    subdistrict_code = subdistrict_code or settings.default_subdistrict_code
    extract = read_osm(path, subdistrict_code=subdistrict_code, camera_centre_code=settings.camera_centre_code)
    reports: list[ImportReport] = []
    # Features GDAL returned but no geometry can be made of: refused as a whole without
    # --skip-invalid (every one listed), else each named in its layer's report.
    failures: list[Problem] = [] if skip_invalid else [p for k, probs in extract.unreadable.items() if k != "other" for p in probs]
    with _atomic(conn) as conn:
        for name, gdf in extract.frames.items():
            ctx = ImportContext(file=f"{Path(path).name} [{name}]", district_code=subdistrict_code[:6],
                                repair=repair, skip_invalid=skip_invalid)
            if name == "communities":
                ctx.notes.extend(extract.notes)
            try:
                report = import_frame(layer_spec(name), gdf, SourceCRS(gdf.crs) if gdf.crs else None, ctx, conn, actor=actor)
                report.skipped[:0] = extract.unreadable.get(name, [])
                reports.append(report)
            except ImportFailed as exc:
                failures.extend(exc.problems)
            if progress:
                progress(name)
        if failures:
            raise ImportFailed(failures)
        buildings = next((r for r in reports if r.layer == "buildings"), None)
        if buildings is not None and buildings.rows:
            from layers.buildings import plausibility, plausibility_text

            buildings.notes.append(plausibility_text(plausibility(
                conn, extract.frames["buildings"]["source_id"].astype(str).tolist(), extract.residential_land_ha)))
        if extract.unreadable.get("other"):
            reports[-1].notes.append(
                f"{len(extract.unreadable['other'])} 个不导入的要素几何无法读取（如土地利用关系）/ unreadable features Wangge does not import "
                f"(e.g. landuse relations), ignored: {', '.join(p.source_id or '?' for p in extract.unreadable['other'][:20])}")
    return reports
