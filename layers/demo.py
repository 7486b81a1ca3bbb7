"""Loading the demo sub-district (data/boundaries) through the ordinary importers, so the
demo exercises exactly the code paths real data takes."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

from sqlalchemy import Connection, text

from gis.db import transaction
from gis.settings import ROOT
from layers.importer import ImportReport, import_file

DEMO_DIR = ROOT / "data" / "boundaries"
GPKG = DEMO_DIR / "demo.gpkg"
# (layer, file, layer inside the file, crs for tables without one)
STEPS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("subdistricts", "demo.gpkg", "subdistrict", None),
    ("communities", "demo.gpkg", "communities", None),
    ("grids", "demo.gpkg", "grids", None),
    ("buildings", "demo.gpkg", "buildings", None),
    ("roads", "demo.gpkg", "roads", None),
    ("cameras", "demo.gpkg", "cameras", None),
    ("facilities", "demo.gpkg", "facilities", None),
    ("cadres", "cadres.csv", None, "EPSG:4326"),
    ("assignments", "assignments.csv", None, None),
)


def is_loaded(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT EXISTS (SELECT 1 FROM subdistricts s JOIN communities c ON c.subdistrict_code = s.code)")).scalar_one())


def clear(conn: Connection) -> None:
    """Empty every layer (the demo replaces the whole database content)."""
    conn.execute(text("TRUNCATE assignments, cadres, building_groups, buildings, cameras, facilities, roads, grids, communities, subdistricts, districts RESTART IDENTITY CASCADE"))


def load(force: bool = False, progress: Callable[[str], None] | None = None, conn: Connection | None = None) -> list[ImportReport] | None:
    """Load the demo in one transaction; with data already there, do nothing unless forced."""
    reports: list[ImportReport] = []
    with (nullcontext(conn) if conn is not None else transaction(owner=True)) as conn:
        if is_loaded(conn):
            if not force:
                return None
            clear(conn)
        for layer, file, inner, crs in STEPS:
            reports.append(import_file(layer, DEMO_DIR / file, source_layer=inner, crs=crs, conn=conn, actor="demo"))
            if progress:
                progress(layer)
    return reports
