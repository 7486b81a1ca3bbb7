"""Is a stored coverage figure still true? One table for the dashboard: per analysis and
area, when the figure was computed and whether its inputs changed since (and which).

Each analysis keeps fingerprints (md5) of the rows it used next to its results: cameras
(camera rows, footprints in range, roads, footprints and facilities in each unit),
services (homes, facilities, the walkable roads), compliance (facilities and households of
each community), plus the settings. Comparing them with the current rows is what
``stale`` means; nothing relies on triggers or timestamps on the layers.
"""
from __future__ import annotations

import pandas as pd
from sqlalchemy import Connection

from analysis import cameras, compliance, services


def status(conn: Connection, detail: str | None = None) -> pd.DataFrame:
    """analysis, scope, code, computed_at, stale, why — for every stored figure."""
    rows = []
    cam = cameras.stale_units(conn, detail)
    for r in cam.itertuples(index=False):
        why = [w for w in ("missing", "gone", "own_inputs_changed", "cameras_changed") if getattr(r, w)]
        rows.append({"analysis": "cameras", "scope": "grid" if len(r.code) > 12 else "community", "code": r.code,
                     "computed_at": r.computed_at, "stale": bool(r.stale), "why": ",".join(why)})
    srv = services.stale(conn)
    for r in srv.itertuples(index=False):
        why = [w for w in ("homes_changed", "facilities_changed", "inputs_changed_everywhere") if getattr(r, w)]
        # computed_at is empty for an area without homes (a school's grid): nothing to be stale.
        rows.append({"analysis": "services", "scope": r.scope, "code": r.code, "computed_at": r.computed_at,
                     "stale": bool(r.stale), "why": ",".join(why)})
    comp = compliance.stored(conn)
    if len(comp):
        per = comp.groupby("community_code").agg(computed_at=("computed_at", "min"), stale=("stale", "any")).reset_index()
        for r in per.itertuples(index=False):
            rows.append({"analysis": "compliance", "scope": "community", "code": r.community_code, "computed_at": r.computed_at,
                         "stale": bool(r.stale), "why": "facilities_or_households_changed" if r.stale else ""})
    return pd.DataFrame(rows, columns=["analysis", "scope", "code", "computed_at", "stale", "why"])
