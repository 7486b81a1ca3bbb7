"""Key figures of a sub-district, its communities and its grids, judged against the rules.

Why here and not in the pages: the same figures feed the leader's overview, the
community secretary's screen, the map's colours (vector tiles carry each grid's
verdict) and later reports, so the SQL and the rules it applies live in one place.
Every verdict names its rule (``RULES``) so a screen can say what a figure is judged
against, e.g. "户数标准 300–500 (standards §2)"; the values come from
``gis.settings`` so a sub-district with other local rules changes a setting, not code.

Full-time staffing counts current assignments (``valid_to IS NULL``) with role
``full_time_worker``; a worker assigned to two grids counts once in a total and once
in each grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, text

from gis.settings import Settings, get_settings

# Grid verdicts, in the order they are decided (the first that applies wins).
NO_WORKER = "no_worker"  # no current full-time worker: 一格一员 not met
OVER = "over"  # households above the band, or residents above the ceiling
UNDER = "under"  # households below the band
OK = "ok"
UNKNOWN = "unknown"  # the scope may not read this grid's staff or homes: no verdict, never "no worker"
STATUSES = (UNKNOWN, NO_WORKER, OVER, UNDER, OK)


def readable_sql(grid_id: str, community_code: str) -> str:
    """Whether the signed scope may read a grid's staff (``assignments``) and homes: the same
    area the row-level policies use (``wangge_area``). Without a scope (owner, migrations)
    every grid counts as readable, as before. Each part is an uncorrelated sub-query, so the
    scope is verified and the area computed once per query, not once per grid (50,000 HMAC
    checks for a city's grid table)."""
    area = "wangge_area('assignments', false)"
    return f"""coalesce((SELECT wangge_scope() IS NULL) OR (SELECT all_rows FROM {area})
              OR {community_code} = ANY ((SELECT communities FROM {area})::bpchar[])
              OR {grid_id} = ANY ((SELECT grids FROM {area})::bigint[]), false)"""


@dataclass(frozen=True)
class Rule:
    """A rule a figure is judged against: its setting values and where it comes from."""

    key: str
    values: tuple[float, ...]
    source: str = "standards §2"


def rules(settings: Settings | None = None) -> dict[str, Rule]:
    s = settings or get_settings()
    return {
        "households_band": Rule("households_band", (s.grid_households_min, s.grid_households_max)),
        "residents_max": Rule("residents_max", (s.grid_residents_max,)),
        "one_grid_one_worker": Rule("one_grid_one_worker", (1,)),
        "households_per_worker": Rule("households_per_worker", (s.households_per_worker,)),
    }


def status_case(households: str, residents: str, full_time: str, grid_type: str, settings: Settings | None = None,
                readable: str = "TRUE") -> str:
    """The SQL CASE that turns a grid's counts into its verdict (first rule that applies wins);
    ``readable`` (``readable_sql``) false gives ``unknown``."""
    s = settings or get_settings()
    lo, hi, res_max = int(s.grid_households_min), int(s.grid_households_max), int(s.grid_residents_max)
    return f"""CASE WHEN NOT {readable} THEN '{UNKNOWN}'
             WHEN coalesce({full_time}, 0) = 0 THEN '{NO_WORKER}'
             WHEN {grid_type} = 'comprehensive' AND (coalesce({households}, 0) > {hi} OR coalesce({residents}, 0) > {res_max}) THEN '{OVER}'
             WHEN {grid_type} = 'comprehensive' AND coalesce({households}, 0) < {lo} THEN '{UNDER}'
             ELSE '{OK}' END"""


def grid_status_sql(grid_id: str, grid_type: str = "g.grid_type", settings: Settings | None = None,
                    community_code: str = "g.community_code") -> str:
    """A one-row subquery (for ``CROSS JOIN LATERAL``) giving a grid's households,
    residents, full-time workers and verdict.

    The household band applies to comprehensive grids only: a dedicated grid (a school,
    a hospital) is sized by its unit, not by households (standards §1-2). Households,
    residents and buildings come from ``building_stats`` (kept by triggers on every write to
    ``buildings``, migration 0024; read under the buildings' own policy, so a scope sums the
    buildings it may read, as a sum over ``buildings`` did).
    """
    return f"""
      SELECT hh.households, hh.residents, hh.buildings, ft.n AS full_time,
        {status_case('hh.households', 'hh.residents', 'ft.n', grid_type, settings, readable_sql(grid_id, community_code))} AS status
      FROM (SELECT coalesce(sum(s.households), 0)::int AS households, coalesce(sum(s.residents), 0)::int AS residents,
                   coalesce(sum(s.buildings), 0)::int AS buildings
            FROM building_stats s WHERE s.grid_id = {grid_id}) hh,
           (SELECT count(DISTINCT a.cadre_id)::int AS n FROM assignments a
            WHERE a.grid_id = {grid_id} AND a.role = 'full_time_worker' AND a.valid_to IS NULL) ft"""


def grid_status_in_box_sql(box: str, near: str = "TRUE") -> str:
    """Current grids meeting ``box`` (an EPSG:3857 geometry expression) with their verdict:
    what a map tile of grids needs. Each grid's totals and staff are looked up by its id
    (index lookups, linear in the grids of the tile): a join of aggregates was planned as a
    nested loop over a mis-estimated box (one row expected, 3,400 found) and took 4 s for
    one low-zoom tile. ``near``: a further condition on ``g`` that an index can serve under the
    policies (the tiles' plain-number box, migration 0024)."""
    return f"""
      SELECT g.id, g.grid_type, g.community_code, g.geom_3857,
             {status_case('hh.households', 'hh.residents', 'ft.n', 'g.grid_type', readable=readable_sql('g.id', 'g.community_code'))} AS status
      FROM grids g
      CROSS JOIN LATERAL (SELECT sum(s.households) AS households, sum(s.residents) AS residents
                          FROM building_stats s WHERE s.grid_id = g.id) hh
      CROSS JOIN LATERAL (SELECT count(DISTINCT a.cadre_id) AS n FROM assignments a
                          WHERE a.grid_id = g.id AND a.role = 'full_time_worker' AND a.valid_to IS NULL) ft
      WHERE g.valid_to IS NULL AND {near} AND g.geom_3857 && {box}"""


def community_worst_in_box_sql(box: str, near: str = "TRUE") -> str:
    """Communities holding current grids that meet ``box``, each with the most pressing verdict
    among those grids (no worker, over, under, unknown, ok): the grids layer at low zoom, where a
    city's 50,000 grids would be a few pixels each (and megabytes of tiles)."""
    order = ", ".join(f"'{s}'" for s in (NO_WORKER, OVER, UNDER, UNKNOWN, OK))
    return f"""
      SELECT c.code, c.geom_3857, (ARRAY[{order}])[min(array_position(ARRAY[{order}], s.status::text))] AS status
      FROM ({grid_status_in_box_sql(box, near)}) s JOIN communities c ON c.code = s.community_code
      GROUP BY c.code, c.geom_3857"""


def _grid_stats(where: str = "TRUE") -> str:
    """Every current grid meeting ``where`` with its counts and verdict, joined once (not a
    sub-query per grid: a city has 50,000 grids)."""
    return f"""
      SELECT g.id, g.code, g.name, g.grid_type, g.community_code, coalesce(hh.households, 0)::int AS households,
             coalesce(hh.residents, 0)::int AS residents, coalesce(hh.buildings, 0)::int AS buildings,
             coalesce(ft.n, 0)::int AS full_time,
             {status_case('hh.households', 'hh.residents', 'ft.n', 'g.grid_type', readable=readable_sql('g.id', 'g.community_code'))} AS status
      FROM grids g
      LEFT JOIN (SELECT s.grid_id, sum(s.households) AS households, sum(s.residents) AS residents, sum(s.buildings) AS buildings
                 FROM building_stats s WHERE s.grid_id IS NOT NULL GROUP BY 1) hh ON hh.grid_id = g.id
      LEFT JOIN (SELECT a.grid_id, count(DISTINCT a.cadre_id) AS n FROM assignments a
                 WHERE a.role = 'full_time_worker' AND a.valid_to IS NULL GROUP BY 1) ft ON ft.grid_id = g.id
      WHERE g.valid_to IS NULL AND {where}"""


def subdistricts(conn: Connection) -> pd.DataFrame:
    """Sub-districts that have communities (what the overview can be about)."""
    return pd.read_sql(text("""
        SELECT s.code, s.name FROM subdistricts s
        WHERE EXISTS (SELECT 1 FROM communities c WHERE c.subdistrict_code = s.code) ORDER BY s.code"""), conn)


def figures(conn: Connection, subdistrict_code: str | None = None, community_code: str | None = None) -> dict[str, float | int | None]:
    """Key figures of a sub-district (or of one community): counts, staffing, verdicts.

    ``households_per_full_time`` is None where nobody is a full-time worker (not 0, not
    infinity: there is no ratio to show).
    """
    area = _area_filter(subdistrict_code, community_code)
    row = conn.execute(text(f"""
        WITH gs AS ({_grid_stats(area.replace('{c}', 'g.community_code'))}),
        ft AS (SELECT DISTINCT a.cadre_id FROM assignments a JOIN grids g ON g.id = a.grid_id
               WHERE a.role = 'full_time_worker' AND a.valid_to IS NULL AND g.valid_to IS NULL
                 AND {area.replace('{c}', 'g.community_code')})
        SELECT
          (SELECT count(*) FROM communities c WHERE {area.replace('{c}', 'c.code')}) AS communities,
          (SELECT count(*) FROM gs) AS grids,
          bs.buildings, bs.households, bs.residents, bs.estimated_buildings,
          (SELECT count(*) FROM ft) AS full_time_workers,
          (SELECT count(*) FROM gs WHERE status = '{NO_WORKER}') AS grids_without_full_time,
          (SELECT count(*) FROM gs WHERE grid_type = 'comprehensive' AND households > :hi) AS grids_over_band,
          (SELECT count(*) FROM gs WHERE grid_type = 'comprehensive' AND households < :lo) AS grids_under_band,
          (SELECT count(*) FROM gs WHERE grid_type = 'comprehensive' AND residents > :res) AS grids_over_residents,
          (SELECT count(*) FROM gs WHERE grid_type = 'comprehensive') AS comprehensive_grids
        FROM (SELECT coalesce(sum(buildings), 0) AS buildings, coalesce(sum(households), 0) AS households,
                     coalesce(sum(residents), 0) AS residents, coalesce(sum(estimated_buildings), 0) AS estimated_buildings
              FROM building_stats b WHERE {area.replace('{c}', 'b.community_code')}) bs
    """), _params(subdistrict_code, community_code)).mappings().one()
    out: dict[str, float | int | None] = {k: int(v) for k, v in row.items()}
    out["households_per_full_time"] = round(out["households"] / out["full_time_workers"], 1) if out["full_time_workers"] else None
    return out


def community_table(conn: Connection, subdistrict_code: str | None = None) -> pd.DataFrame:
    """One row per community: the overview figures side by side."""
    area = _area_filter(subdistrict_code, None)
    return pd.read_sql(text(f"""
        WITH gs AS ({_grid_stats(area.replace('{c}', 'g.community_code'))}),
        per_grid AS (
          SELECT community_code, count(*) AS grids,
                 count(*) FILTER (WHERE status = '{NO_WORKER}') AS grids_without_full_time,
                 count(*) FILTER (WHERE grid_type = 'comprehensive' AND households > :hi) AS grids_over_band,
                 count(*) FILTER (WHERE grid_type = 'comprehensive' AND households < :lo) AS grids_under_band
          FROM gs GROUP BY 1),
        per_building AS (
          SELECT community_code, sum(buildings)::bigint AS buildings, sum(households)::bigint AS households,
                 sum(residents)::bigint AS residents
          FROM building_stats GROUP BY 1),
        ft AS (
          SELECT g.community_code, count(DISTINCT a.cadre_id) AS full_time_workers
          FROM assignments a JOIN grids g ON g.id = a.grid_id
          WHERE a.role = 'full_time_worker' AND a.valid_to IS NULL AND g.valid_to IS NULL GROUP BY 1)
        SELECT c.code, c.name, coalesce(pg.grids, 0) AS grids, coalesce(pb.buildings, 0) AS buildings,
               coalesce(pb.households, 0) AS households, coalesce(pb.residents, 0) AS residents,
               coalesce(ft.full_time_workers, 0) AS full_time_workers,
               coalesce(pg.grids_without_full_time, 0) AS grids_without_full_time,
               round(pb.households::numeric / nullif(ft.full_time_workers, 0), 1)::float8 AS households_per_full_time,
               coalesce(pg.grids_over_band, 0) AS grids_over_band, coalesce(pg.grids_under_band, 0) AS grids_under_band
        FROM communities c
        LEFT JOIN per_grid pg ON pg.community_code = c.code
        LEFT JOIN per_building pb ON pb.community_code = c.code
        LEFT JOIN ft ON ft.community_code = c.code
        WHERE {area.replace('{c}', 'c.code')}
        ORDER BY c.code"""), conn, params=_params(subdistrict_code, None))


def grid_table(conn: Connection, subdistrict_code: str | None = None, community_code: str | None = None) -> pd.DataFrame:
    """One row per current grid with its households, residents, full-time workers and verdict."""
    area = _area_filter(subdistrict_code, community_code)
    return pd.read_sql(text(_grid_stats(area.replace("{c}", "g.community_code")) + " ORDER BY g.code"), conn,
                       params=_params(subdistrict_code, community_code))


def attention_grids(conn: Connection, subdistrict_code: str | None = None, community_code: str | None = None,
                    limit: int | None = None) -> tuple[pd.DataFrame, int]:
    """Grids whose verdict is not ``ok``, the most pressing first (no full-time worker, over the
    band, under it, then those whose staff the scope may not read), by code within a verdict;
    at most ``limit`` rows, and the number of such grids in all."""
    area = _area_filter(subdistrict_code, community_code)
    order = ", ".join(f"'{s}'" for s in (NO_WORKER, OVER, UNDER, UNKNOWN))
    frame = pd.read_sql(text(f"""
        SELECT x.*, count(*) OVER () AS total FROM ({_grid_stats(area.replace("{c}", "g.community_code"))}) x
        WHERE x.status <> '{OK}'
        ORDER BY array_position(ARRAY[{order}], x.status::text), x.code
        {"LIMIT :limit" if limit is not None else ""}"""), conn,
        params={**_params(subdistrict_code, community_code), "limit": limit})
    total = int(frame["total"].iloc[0]) if len(frame) else 0
    return frame.drop(columns=["total"]), total


def grid_figures(conn: Connection, grid_id: int) -> dict:
    """The verdict row of one grid (households, residents, buildings, full-time workers, status)."""
    row = conn.execute(text(_grid_stats("g.id = :id")), {"id": grid_id}).mappings().one_or_none()
    return dict(row) if row else {}


def coverage_figures(conn: Connection, subdistrict_code: str | None = None, community_code: str | None = None) -> dict[str, float]:
    """Coverage figures, once the coverage analyses (issue 6) have stored results: shares in 0..1.

    - ``camera_roads``: street length seen by cameras at the configured detail level;
    - ``camera_key_places``: key public places seen by at least one camera (雪亮工程: 100%);
    - ``service_households``: households within walking distance (on the network) of each
      facility category that has a service radius, averaged over those categories;
    - ``compliance``: share of standards checks the communities pass.
    Empty until those analyses have run; the overview then says "not yet analysed".
    """
    exists = conn.execute(text("SELECT to_regclass('camera_coverage') IS NOT NULL")).scalar_one()
    if not exists:
        return {}
    s = get_settings()
    area = _area_filter(subdistrict_code, community_code)
    out: dict[str, float] = {}
    cam = conn.execute(text(f"""
        SELECT sum(road_covered_m) / nullif(sum(road_m), 0), sum(key_places_covered)::float8 / nullif(sum(key_places), 0)
        FROM camera_coverage WHERE scope = 'community' AND detail_level = :level AND {area.replace('{c}', 'community_code')}"""),
        {**_params(subdistrict_code, community_code), "level": s.camera_detail_level}).one()
    if cam[0] is not None:
        out["camera_roads"] = float(cam[0])
    if cam[1] is not None:
        out["camera_key_places"] = float(cam[1])
    svc = conn.execute(text(f"""
        WITH per_cat AS (
          SELECT d.category, sum(sb.households) FILTER (WHERE d.network_m <= fc.default_radius_m)::float8
                 / nullif(sum(sb.households), 0) AS share
          FROM service_distances d JOIN service_buildings sb ON sb.building_id = d.building_id AND sb.district_code = d.district_code
          JOIN facility_categories fc ON fc.code = d.category AND fc.default_radius_m IS NOT NULL
          JOIN buildings b ON b.id = d.building_id AND b.district_code = d.district_code AND {area.replace('{c}', 'b.community_code')}
          GROUP BY 1)
        SELECT avg(share) FROM per_cat"""), _params(subdistrict_code, community_code)).scalar_one()
    if svc is not None:
        out["service_households"] = float(svc)
    comp = conn.execute(text(f"""
        SELECT avg(passed::int)::float8 FROM compliance_results WHERE {area.replace('{c}', 'community_code')}"""),
        _params(subdistrict_code, community_code)).scalar_one()
    if comp is not None:
        out["compliance"] = float(comp)
    return out


def bounds(conn: Connection, subdistrict_code: str | None = None, community_code: str | None = None) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) of the communities in view, for fitting the map."""
    area = _area_filter(subdistrict_code, community_code).replace("{c}", "c.code")
    row = conn.execute(text(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(c.geom) AS e FROM communities c WHERE {area}) x"),
                       _params(subdistrict_code, community_code)).one()
    return None if row[0] is None else tuple(float(v) for v in row)  # type: ignore[return-value]


def _area_filter(subdistrict_code: str | None, community_code: str | None) -> str:
    """A WHERE fragment on a community-code column (``{c}`` stands for it)."""
    if community_code:
        return "{c} = :community"
    if subdistrict_code:
        return "left({c}, 9) = :subdistrict"
    return "TRUE"


def _params(subdistrict_code: str | None, community_code: str | None) -> dict:
    s = get_settings()
    return {"subdistrict": subdistrict_code, "community": community_code,
            "lo": s.grid_households_min, "hi": s.grid_households_max, "res": s.grid_residents_max}


def search(conn: Connection, query: str, limit: int = 12) -> pd.DataFrame:
    """Find what a map can be framed on: grids and communities by code or name, buildings by
    address, name or source ID, cadres by name or number (framed on their grids).

    Each hit: layer (grids | communities | buildings), id, kind (grid | community | building
    | cadre), label, and its extent (west, south, east, north). Row-level security decides
    what is found: a worker finds the buildings of their own grid, a secretary the cadres of
    their community (through the assignments they may read).
    """
    q = query.strip()
    if not q:
        return pd.DataFrame(columns=["layer", "id", "kind", "label", "w", "s", "e", "n"])
    pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    ext = "ST_XMin(x.e) AS w, ST_YMin(x.e) AS s, ST_XMax(x.e) AS e, ST_YMax(x.e) AS n"
    return pd.read_sql(text(f"""
        (SELECT 'communities' AS layer, c.code::text AS id, 'community' AS kind, c.name || '（' || c.code || '）' AS label, {ext}
           FROM communities c CROSS JOIN LATERAL (SELECT ST_Envelope(c.geom) AS e) x
          WHERE c.code ILIKE :p OR c.name ILIKE :p ORDER BY c.code LIMIT :n)
        UNION ALL
        (SELECT 'grids', g.id::text, 'grid', g.name || '（' || g.code || '）', {ext}
           FROM grids g CROSS JOIN LATERAL (SELECT ST_Envelope(g.geom) AS e) x
          WHERE g.valid_to IS NULL AND (g.code ILIKE :p OR g.name ILIKE :p) ORDER BY g.code LIMIT :n)
        UNION ALL
        (SELECT 'buildings', b.id::text, 'building', coalesce(b.address, b.name, b.source_id), {ext}
           FROM buildings b CROSS JOIN LATERAL (SELECT ST_Envelope(b.geom) AS e) x
          WHERE b.address ILIKE :p OR b.name ILIKE :p OR b.source_id ILIKE :p ORDER BY b.address LIMIT :n)
        UNION ALL
        (SELECT 'grids', g.id::text, 'cadre', k.name || '（' || k.cadre_no || '）· ' || g.name, {ext}
           FROM assignments a JOIN cadres k ON k.id = a.cadre_id JOIN grids g ON g.id = a.grid_id AND g.valid_to IS NULL
           CROSS JOIN LATERAL (SELECT ST_Envelope(g.geom) AS e) x
          WHERE a.valid_to IS NULL AND (k.name ILIKE :p OR k.cadre_no ILIKE :p) ORDER BY k.cadre_no LIMIT :n)"""),
        conn, params={"p": pattern, "n": limit})
