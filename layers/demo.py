"""Loading the demo sub-district (data/boundaries) through the ordinary importers, so the
demo exercises exactly the code paths real data takes."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

from sqlalchemy import Connection, text

from gis.db import transaction
from gis.scope import SYSTEM, use_scope
from gis.settings import ROOT
from layers import users as auth
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
    conn.execute(text("TRUNCATE patrol_tracks CASCADE"))  # their segments; persons, their groups and visits go with the buildings (CASCADE)
    # (named too: on Citus keys from persons and events to the distributed buildings cannot exist, so no cascade reaches them)
    conn.execute(text("TRUNCATE persons, events CASCADE"))  # (events: the same, keys to buildings)
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
        _load_people(conn)
    return reports


def _load_people(conn: Connection) -> None:
    """The demo's register of generated persons (layers/people_demo.py), when the key that
    encrypts their ID numbers is set (scripts/bootstrap.sh writes WANGGE_PEOPLE_KEY into .env)."""
    import tempfile
    from pathlib import Path

    from gis import scope
    from gis.settings import get_settings
    from layers import people_demo

    if not get_settings().people_key:
        return
    # the people tables force row-level security on the owner too: act as the system
    scope.apply(conn.connection.dbapi_connection, scope.SYSTEM)
    with tempfile.TemporaryDirectory(prefix="wangge_people_") as tmp:
        people_demo.load(conn, Path(tmp))


# One account per role for trying the dashboard; the password is the deployment's own
# (WANGGE_DEMO_PASSWORD, generated into .env by scripts/bootstrap.sh), never committed.
DEMO_ACCOUNTS = ("leader", "secretary", "worker", "planner", "admin")


def ensure_accounts(conn: Connection, password: str) -> list[dict]:
    """Create the missing demo accounts (``demo_<role>``); existing ones are left as they are.

    The secretary gets the community of the demo's first full-time worker, and the worker
    that cadre's grids, so the two screens show a real worker's day.
    """
    first = conn.execute(text("""
        SELECT c.community_code, array_agg(a.grid_id ORDER BY a.grid_id) AS grids
          FROM assignments a JOIN cadres c ON c.id = a.cadre_id
         WHERE a.valid_to IS NULL AND a.role = 'full_time_worker' AND a.grid_id IS NOT NULL
         GROUP BY c.cadre_no, c.community_code ORDER BY c.cadre_no LIMIT 1""")).first()
    area = {"secretary": {"communities": (first.community_code,)},
            "worker": {"communities": (first.community_code,), "grids": tuple(first.grids)}} if first else {}
    out = []
    with use_scope(SYSTEM):
        for role in DEMO_ACCOUNTS:
            name = f"demo_{role}"
            if auth.get_user(conn, name) is None:
                auth.create_user(conn, name, password, role, display_name=f"演示{role}", **area.get(role, {}))
                created = True
            else:
                created = False
            out.append({"username": name, "role": role, "created": created})
    return out
