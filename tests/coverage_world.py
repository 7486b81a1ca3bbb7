"""Hand-built worlds for the coverage tests, in metres (EPSG:4547 around an origin in
Wuhan), written straight into the layer tables of a rolled-back connection."""
from __future__ import annotations

from sqlalchemy import Connection, text

SRID = 4547
X0, Y0 = 530_000.0, 3_380_000.0  # EPSG:4547 metres, central Wuhan
SUB, COM = "420106010", "420106010001"
COVERAGE_TABLES = ("coverage_runs, camera_views, camera_coverage, camera_key_places, service_buildings, service_facilities, "
                   "compliance_results")


def clear_results(conn: Connection) -> None:
    """Forget stored coverage results (inside the test's rolled-back transaction)."""
    conn.execute(text(f"TRUNCATE {COVERAGE_TABLES} RESTART IDENTITY"))


def _g(wkt: str) -> str:
    return f"ST_Transform(ST_GeomFromText('{wkt}', {SRID}), 4326)"


def _pts(coords) -> str:
    return ", ".join(f"{X0 + x} {Y0 + y}" for x, y in coords)


def box_wkt(x0: float, y0: float, x1: float, y1: float, multi: bool = True) -> str:
    ring = f"(({_pts([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)])}))"
    return f"MULTIPOLYGON({ring})" if multi else f"POLYGON{ring}"


def world(conn: Connection, x0: float = -500, y0: float = -500, x1: float = 500, y1: float = 500, grids: int = 1) -> None:
    """A district, sub-district (metric SRID 4547), one community over the box, and
    ``grids`` grids cutting it into vertical strips."""
    clear_results(conn)
    conn.execute(text("INSERT INTO districts (code, name) VALUES ('420106', '武昌区')"))
    conn.execute(text(f"INSERT INTO subdistricts (code, district_code, name, metric_srid, geom) VALUES ('{SUB}', '420106', '测试街道', {SRID}, {_g(box_wkt(x0, y0, x1, y1))})"))
    conn.execute(text(f"INSERT INTO communities (code, subdistrict_code, district_code, name, geom) VALUES ('{COM}', '{SUB}', '420106', '测试社区', {_g(box_wkt(x0, y0, x1, y1))})"))
    step = (x1 - x0) / grids
    for i in range(grids):
        conn.execute(text(f"""INSERT INTO grids (code, name, community_code, district_code, geom)
            VALUES ('{COM}{i + 1:03d}', '测试网格{i + 1}', '{COM}', '420106', {_g(box_wkt(x0 + i * step, y0, x0 + (i + 1) * step, y1))})"""))


def building(conn: Connection, sid: str, x0: float, y0: float, x1: float, y1: float, households: int = 0, use: str = "residential") -> int:
    bid = conn.execute(text(f"""
        INSERT INTO buildings (source_id, district_code, community_code, households, use, geom)
        VALUES (:sid, '420106', '{COM}', :h, :u, {_g(box_wkt(x0, y0, x1, y1))}) RETURNING id"""), {"sid": sid, "h": households, "u": use}).scalar_one()
    conn.execute(text("""UPDATE buildings b SET grid_id = g.id FROM grids g
                         WHERE b.id = :id AND g.valid_to IS NULL AND ST_Intersects(g.geom, ST_PointOnSurface(b.geom))"""), {"id": bid})
    return int(bid)


def road(conn: Connection, sid: str, coords, walkable: bool = True, road_class: str = "residential") -> int:
    return int(conn.execute(text(f"""
        INSERT INTO roads (source_id, district_code, road_class, walkable, geom)
        VALUES (:sid, '420106', :c, :w, {_g(f'LINESTRING({_pts(coords)})')}) RETURNING id"""), {"sid": sid, "c": road_class, "w": walkable}).scalar_one())


def camera(conn: Connection, serial: int, x: float, y: float, **fields) -> int:
    row = {"device_id": f"42010601001310{serial:06d}", "status": "online", **fields}
    cols = ", ".join(row)
    vals = ", ".join(f":{k}" for k in row)
    return int(conn.execute(text(f"""INSERT INTO cameras ({cols}, district_code, geom)
        VALUES ({vals}, '420106', {_g(f'POINT({X0 + x} {Y0 + y})')}) RETURNING id"""), row).scalar_one())


def facility(conn: Connection, sid: str, x: float, y: float, category: str, status: str = "open", floor_area: float | None = None,
             name: str | None = None) -> int:
    return int(conn.execute(text(f"""
        INSERT INTO facilities (source_id, district_code, community_code, name, category, status, floor_area, geom)
        VALUES (:sid, '420106', '{COM}', :n, :c, :s, :a, {_g(f'POINT({X0 + x} {Y0 + y})')}) RETURNING id"""),
        {"sid": sid, "n": name or sid, "c": category, "s": status, "a": floor_area}).scalar_one())
