"""Building totals kept on write (migration 0024 ``building_stats``): the overview's figures,
the community and grid tables and the grid tiles read them instead of summing a city's
buildings on every page run. They must equal the live sums after any write, at once, and
follow the buildings' row-level policy (a scope sums the buildings it may read)."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from analysis import overview
from gis.db import app_engine, owner_engine
from gis.scope import Scope, use_scope

LIVE = """SELECT community_code, grid_id, count(*) AS buildings, sum(households) AS households, sum(residents) AS residents,
                 count(*) FILTER (WHERE households_source = 'estimated') AS estimated_buildings
          FROM buildings GROUP BY 1, 2"""
KEPT = "SELECT community_code, grid_id, buildings, households, residents, estimated_buildings FROM building_stats"


def _rows(c, sql: str) -> set[tuple]:
    return {tuple(int(v) if isinstance(v, (int, float)) or hasattr(v, "as_integer_ratio") else v for v in r)
            for r in c.execute(text(sql))}


def test_totals_follow_every_kind_of_write(demo: dict) -> None:
    """Insert, update (households, residents, estimate, a move to another grid and community),
    delete, in one transaction rolled back at the end: the kept rows equal the live sums after each."""
    with owner_engine().connect() as c:
        tx = c.begin()
        try:
            assert _rows(c, KEPT) == _rows(c, LIVE)
            two = c.execute(text("""SELECT g.id, g.community_code FROM grids g WHERE g.valid_to IS NULL
                AND EXISTS (SELECT 1 FROM buildings b WHERE b.grid_id = g.id) ORDER BY g.id DESC LIMIT 2""")).all()
            (g1, c1), (g2, c2) = two[0], two[1]
            ids = c.execute(text("SELECT id FROM buildings WHERE grid_id = :g ORDER BY id LIMIT 3"), {"g": g1}).scalars().all()
            c.execute(text("UPDATE buildings SET households = households + 7, residents = residents + 20 WHERE id = ANY(:i)"),
                      {"i": ids})
            assert _rows(c, KEPT) == _rows(c, LIVE)
            c.execute(text("UPDATE buildings SET households_source = 'estimated' WHERE id = :i"), {"i": ids[0]})
            assert _rows(c, KEPT) == _rows(c, LIVE)
            c.execute(text("UPDATE buildings SET grid_id = :g, community_code = :c WHERE id = :i"),
                      {"g": g2, "c": c2, "i": ids[1]})
            assert _rows(c, KEPT) == _rows(c, LIVE)
            c.execute(text("UPDATE buildings SET grid_id = NULL WHERE id = :i"), {"i": ids[2]})  # outside every grid
            assert _rows(c, KEPT) == _rows(c, LIVE)
            c.execute(text("DELETE FROM buildings WHERE id = ANY(:i)"), {"i": ids[:2]})
            assert _rows(c, KEPT) == _rows(c, LIVE)
            cols = c.execute(text("""SELECT string_agg(quote_ident(attname), ', ') FROM pg_attribute
                WHERE attrelid = 'buildings'::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
                  AND attname NOT IN ('id', 'source_id')""")).scalar_one()
            c.execute(text(f"INSERT INTO buildings ({cols}, source_id) SELECT {cols}, source_id || '-copy' FROM buildings "
                           "WHERE grid_id = :g"), {"g": g2})
            assert _rows(c, KEPT) == _rows(c, LIVE)
            c.execute(text("TRUNCATE buildings CASCADE"))
            assert _rows(c, KEPT) == set()
        finally:
            tx.rollback()
        assert _rows(c, KEPT) == _rows(c, LIVE)
    del c1


def test_an_edit_changes_the_figures_at_once(demo: dict, accounts: dict) -> None:
    """A leader's edit of households (through the app role, under the leader's scope) is in the
    leader's figures, community table and grid table in the same moment, not after a refresh."""
    leader = Scope(accounts["leader"].username, "leader")
    with owner_engine().connect() as c:
        bid, grid, community = c.execute(text(
            "SELECT id, grid_id, community_code FROM buildings WHERE grid_id IS NOT NULL ORDER BY id LIMIT 1")).one()
    sub = community[:9]
    with use_scope(leader), app_engine().connect() as c:
        before = overview.figures(c, sub)["households"]
        comm = overview.community_table(c, sub).set_index("code").loc[community, "households"]
        grid_hh = overview.grid_table(c, sub).set_index("id").loc[grid, "households"]
    try:
        with use_scope(leader), app_engine().begin() as c:
            assert c.execute(text("UPDATE buildings SET households = households + 11 WHERE id = :i"), {"i": bid}).rowcount == 1
        with use_scope(leader), app_engine().connect() as c:
            assert overview.figures(c, sub)["households"] == before + 11
            assert overview.community_table(c, sub).set_index("code").loc[community, "households"] == comm + 11
            assert overview.grid_table(c, sub).set_index("id").loc[grid, "households"] == grid_hh + 11
    finally:
        with owner_engine().begin() as c:
            c.execute(text("UPDATE buildings SET households = households - 11 WHERE id = :i"), {"i": bid})


@pytest.mark.parametrize("role", ["leader", "secretary", "worker", "planner"])
def test_a_scope_sums_only_the_buildings_it_may_read(demo: dict, accounts: dict, role: str) -> None:
    """The kept totals under a scope equal the live sums over the buildings that scope reads."""
    a = accounts[role]
    with use_scope(Scope(a.username, role, a.communities, a.grids)), app_engine().connect() as c:
        kept = c.execute(text("SELECT coalesce(sum(households), 0), coalesce(sum(buildings), 0) FROM building_stats")).one()
        live = c.execute(text("SELECT coalesce(sum(households), 0), count(*) FROM buildings")).one()
        assert tuple(map(int, kept)) == tuple(map(int, live))
    if role in ("secretary", "worker"):
        with owner_engine().connect() as c:
            assert int(c.execute(text("SELECT count(*) FROM buildings")).scalar_one()) > int(live[1])  # a part, not all


def test_nobody_but_the_owner_writes_the_totals(demo: dict, accounts: dict) -> None:
    from sqlalchemy.exc import DBAPIError

    leader = Scope(accounts["leader"].username, "leader")
    with use_scope(leader), app_engine().connect() as c:
        with pytest.raises(DBAPIError):
            c.execute(text("UPDATE building_stats SET households = 0"))
        c.rollback()
        with pytest.raises(DBAPIError):
            c.execute(text("UPDATE tile_epochs SET v = 0"))
        c.rollback()


def test_low_zoom_grid_tiles_carry_each_communitys_most_pressing_verdict(demo: dict, accounts: dict) -> None:
    """The grids layer below its detail zoom: one feature per community, coloured by the most
    pressing verdict among its grids (as the grid table gives them), and with no id to click."""
    from webapp import tiles

    leader = Scope(accounts["leader"].username, "leader")
    rank = {s: i for i, s in enumerate((overview.NO_WORKER, overview.OVER, overview.UNDER, overview.UNKNOWN, overview.OK))}
    box = "ST_Transform(ST_MakeEnvelope(-180, -85, 180, 85, 4326), 3857)"
    with use_scope(leader), app_engine().connect() as c:
        got = dict(c.execute(text(f"SELECT code, status FROM ({overview.community_worst_in_box_sql(box)}) s")).all())
        table = overview.grid_table(c)
        assert tiles.tile(c, "grids", tiles.GRIDS_DETAIL_ZOOM - 1, 0, 0, size=512) == b""  # an empty corner
    want = {code: min(g["status"], key=rank.get) for code, g in table.groupby("community_code")}
    assert got == want and len(got) > 1
    assert tiles._layers()["grids"].detail_zoom == tiles.GRIDS_DETAIL_ZOOM and "NULL::bigint AS id" in tiles._layers()["grids"].sql_low
