"""Writing many rows fast with COPY, also under row-level security.

PostgreSQL refuses ``COPY FROM`` into a table whose row-level security applies to the
connection (migration 0013), so ``copy_target`` stages the rows in a temporary table and
inserts them from there, where the policies check every row. The layer loader
(``layers.base.copy_rows``: binary COPY, index rebuilds) runs as the owner and writes
directly; everything else writes through these.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
from sqlalchemy import Connection, text


@contextmanager
def copy_target(conn: Connection, table: str, columns: Sequence[str]) -> Iterator[str]:
    """The table a COPY of ``columns`` should write to: ``table`` itself, or, where row-level
    security applies to this connection (migration 0013: PostgreSQL refuses COPY FROM then),
    a temporary table of those columns whose rows are inserted into ``table`` when the block
    ends, so that the policies check every row."""
    place = _building_place(conn, table, columns)
    if not place and not conn.execute(text("SELECT row_security_active(to_regclass(:t))"), {"t": table}).scalar():
        yield table
        return
    cols = ", ".join(columns)
    stage = "_copy_" + table.replace(".", "_")
    conn.execute(text(f"DROP TABLE IF EXISTS pg_temp.{stage}"))
    conn.execute(text(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"))
    yield stage
    if place:
        # rows that copy a building carry its district, community and grid (migration 0021): on Citus
        # the district routes the row to its shard, so it must be in the INSERT itself. The places are
        # read first into a temporary table (a distributed read), then joined locally: Citus 13.2
        # crashed on the one-statement form (INSERT … SELECT stage LEFT JOIN buildings, under RLS).
        conn.execute(text("DROP TABLE IF EXISTS pg_temp._places"))
        conn.execute(text(f"CREATE TEMP TABLE _places ON COMMIT DROP AS SELECT id, {', '.join(place)} FROM buildings "
                          f"WHERE id = ANY(ARRAY(SELECT building_id FROM {stage}))"))
        conn.execute(text(f"INSERT INTO {table} ({cols}, {', '.join(place)}) SELECT {', '.join('s.' + c for c in columns)}, "
                          f"{', '.join('p.' + c for c in place)} FROM {stage} s LEFT JOIN _places p ON p.id = s.building_id"))
        conn.execute(text("DROP TABLE pg_temp._places"))
    else:
        conn.execute(text(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}"))
    conn.execute(text(f"DROP TABLE pg_temp.{stage}"))


def _building_place(conn: Connection, table: str, columns: Sequence[str]) -> list[str]:
    """The building's place columns (district_code, community_code, grid_id) that ``table`` has
    and the writer leaves out, when the rows name a building."""
    if "building_id" not in columns or table == "buildings":
        return []
    # on one node the triggers of migration 0021 fill them; only Citus needs them in the INSERT
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")).scalar():
        return []
    have = set(conn.execute(text("""SELECT column_name FROM information_schema.columns
                                    WHERE table_schema = 'public' AND table_name = :t"""), {"t": table}).scalars())
    return [c for c in ("district_code", "community_code", "grid_id") if c in have and c not in columns]


def copy_into(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY rows into a table (text format; None becomes NULL, lists become arrays)."""
    raw = conn.connection.dbapi_connection
    with copy_target(conn, table, columns) as target, raw.cursor() as cur, \
            cur.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def copy_text(conn: Connection, table: str, columns: Sequence[str], lines: Sequence[str]) -> None:
    """COPY rows already formatted as COPY text lines (tab-separated, ``\\N`` for NULL)."""
    raw = conn.connection.dbapi_connection
    with copy_target(conn, table, columns) as target, raw.cursor() as cur, \
            cur.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as cp:
        if lines:
            cp.write("\n".join(lines) + "\n")


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame) -> None:
    """COPY a frame of plain values (no arrays) in one CSV write: NaN/None become NULL."""
    buf = io.StringIO()
    frame.to_csv(buf, header=False, index=False, na_rep="")
    raw = conn.connection.dbapi_connection
    with copy_target(conn, table, list(frame.columns)) as target, raw.cursor() as cur, \
            cur.copy(f"COPY {target} ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv)") as cp:
        cp.write(buf.getvalue())
