"""What every layer shares: a declared schema, validation of a frame against it, and a
bulk write that lands whole or not at all.

A layer module declares a ``LayerSpec`` (its table, geometry kind, ID column and fields
with their Chinese/English header aliases) and, where it needs one, hooks that derive
columns before writing and SQL that fills in spatial relations after. Validation is
vectorised (pandas/shapely) so 100,000 rows check in well under a second.
"""
from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, text

from gis.ewkb import ewkb, ewkb_hex
from gis.problems import Problem, remedy
from gis.settings import get_settings
from layers.vocab import Term, normalise

Kind = Literal["text", "int", "float", "bool", "date", "vocab"]
GeomKind = Literal["MultiPolygon", "Point", "LineString", None]

TRUE = {"1", "true", "t", "yes", "y", "是", "对", "可", "√"}
FALSE = {"0", "false", "f", "no", "n", "否", "不", "不可", "×"}


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind = "text"
    required: bool = False
    aliases: tuple[str, ...] = ()
    vocab: tuple[Term, ...] | None = None
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    default: Any = None
    store: bool = True  # False: used during import (e.g. grid_code) but not a table column


@dataclass
class LayerSpec:
    name: str
    table: str
    geom: GeomKind
    id_field: str
    fields: tuple[Field, ...]
    geom_required: bool = True
    zh: str = ""
    # Derive or check columns after field validation: (frame, context, problems) -> frame
    prepare: Callable[[pd.DataFrame, "ImportContext", list[Problem]], pd.DataFrame] | None = None
    # SQL run after the rows are written; :since is the highest id before the import.
    after_sql: tuple[str, ...] = ()
    # Writes before the main table (parent rows) and after it (e.g. building group counts)
    before_write: Callable[[Connection, pd.DataFrame, "ImportContext"], None] | None = None
    after_write: Callable[[Connection, pd.DataFrame, "ImportContext"], None] | None = None
    district_from_code: bool = False  # district code = first 6 characters of the ID
    has_serial_id: bool = True
    unique_id: bool = True  # the ID column may not repeat within a file or against the table
    direct_copy: bool = True  # False: after_write does the writing (rows that need resolving)
    derived: tuple[str, ...] = ()  # table columns a hook fills in (written when the frame has them)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    @property
    def stored(self) -> list[Field]:
        return [f for f in self.fields if f.store]


@dataclass
class ImportContext:
    file: str
    district_code: str
    repair: bool = False
    skip_invalid: bool = False
    replace: bool = False
    notes: list[str] = field(default_factory=list)
    # (row, source id, why) of each feature skipped or repaired
    skipped: list[Problem] = field(default_factory=list)
    repaired: list[Problem] = field(default_factory=list)
    # 0-based row -> why GEOS could not make a geometry of what GDAL read (issue 13)
    unreadable: dict[int, str] = field(default_factory=dict)


# --- column mapping ----------------------------------------------------------------------

def map_columns(frame: pd.DataFrame, spec: LayerSpec, mapping: dict[str, str], file: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Rename source headers (Chinese or English, any case) to the layer's field names."""
    problems: list[Problem] = []
    rename: dict[str, str] = {}
    known = {f.name for f in spec.fields}
    for src, dest in mapping.items():
        if src not in frame.columns:
            problems.append(Problem(file, f"--map 的源字段不存在 / mapped source column {src!r} is not in the file", column=src))
        elif dest not in known:
            problems.append(Problem(file, f"--map 的目标字段未知 / {dest!r} is not a field of layer {spec.name}: {sorted(known)}", column=dest))
        else:
            rename[src] = dest
    taken = set(rename.values())
    lowered = {str(c).strip().casefold(): c for c in frame.columns if c not in rename and c != frame.geometry.name}
    for f in spec.fields:
        if f.name in taken:
            continue
        for alias in (f.name, *f.aliases):
            col = lowered.get(alias.casefold())
            if col is not None and col not in rename:
                rename[col] = f.name
                taken.add(f.name)
                break
    return frame.rename(columns=rename), problems


# --- field validation --------------------------------------------------------------------

def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask)


CONTROL_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


def check_fields(frame: pd.DataFrame, spec: LayerSpec, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    """Coerce each field to its kind; every value that will not coerce is a row problem."""
    out = pd.DataFrame(index=frame.index)
    ids = frame[spec.id_field].astype("string") if spec.id_field in frame.columns else pd.Series([None] * len(frame), index=frame.index)

    def bad(mask: np.ndarray, column: str, why: Callable[[int], str]) -> None:
        for i in _rows(mask):
            problems.append(Problem(ctx.file, why(i), row=int(i) + 1, source_id=_str(ids.iloc[i]), column=column))

    for f in spec.fields:
        if f.name not in frame.columns:
            if f.required:
                problems.append(Problem(ctx.file, f"缺少必填字段 / missing required field {f.name!r} (accepted headers: {', '.join((f.name, *f.aliases))})", column=f.name))
            out[f.name] = f.default
            continue
        raw = frame[f.name]
        if raw.dtype == object or pd.api.types.is_string_dtype(raw):
            # NUL and other control characters: PostgreSQL text cannot hold NUL, and a silent cut
            # ("a\0b" stored as "a") loses data; tab, line feed and carriage return are text.
            ctrl = raw.astype("string").str.contains(CONTROL_CHARS, regex=True).fillna(False).to_numpy(dtype=bool)
            bad(ctrl, f.name, lambda i, raw=raw, f=f: f"含控制字符 / {f.name!r} holds a control character "
                                                      f"(e.g. NUL): {str(raw.iloc[i])!r}")
        present = raw.notna().to_numpy() & (raw.astype("string").str.strip().fillna("") != "").to_numpy()
        if f.required:
            bad(~present, f.name, lambda i, f=f: f"必填字段为空 / required field {f.name!r} is empty")
        if f.kind in ("int", "float"):
            num = pd.to_numeric(raw.where(present), errors="coerce")
            bad(present & num.isna().to_numpy(), f.name, lambda i, raw=raw, f=f: f"不是数字 / {f.name!r} is not a number: {raw.iloc[i]!r}")
            if f.kind == "int":
                frac = num.notna().to_numpy() & (num.fillna(0) % 1 != 0).to_numpy()
                bad(frac, f.name, lambda i, raw=raw, f=f: f"不是整数 / {f.name!r} is not a whole number: {raw.iloc[i]!r}")
                num = num.where(~frac)  # reported; blank it so the Int64 cast below cannot fail
            if f.min is not None:
                bad((num < f.min).fillna(False).to_numpy(), f.name, lambda i, num=num, f=f: f"{f.name!r}={num.iloc[i]:g} 小于下限 / below the minimum {f.min:g}")
            if f.max is not None:
                bad((num > f.max).fillna(False).to_numpy(), f.name, lambda i, num=num, f=f: f"{f.name!r}={num.iloc[i]:g} 超过上限 / above the maximum {f.max:g}")
            if f.default is not None:
                num = num.where(present, f.default)
            out[f.name] = num.astype("Int64") if f.kind == "int" else num.astype("Float64")
        elif f.kind == "bool":
            s = raw.astype("string").str.strip().str.casefold()
            val = pd.Series(pd.NA, index=raw.index, dtype="boolean")
            val[s.isin(TRUE).fillna(False)] = True
            val[s.isin(FALSE).fillna(False)] = False
            bad(present & val.isna().to_numpy(), f.name, lambda i, raw=raw, f=f: f"不是是/否 / {f.name!r} is not yes/no: {raw.iloc[i]!r}")
            if f.default is not None:
                val = val.fillna(f.default)
            out[f.name] = val
        elif f.kind == "date":
            val = pd.to_datetime(raw.where(present), errors="coerce", format="mixed")
            bad(present & val.isna().to_numpy(), f.name, lambda i, raw=raw, f=f: f"不是日期 / {f.name!r} is not a date: {raw.iloc[i]!r}")
            out[f.name] = val.dt.date
        elif f.kind == "vocab":
            assert f.vocab is not None
            uniques = {v: normalise(f.vocab, v) for v in raw[present].astype(str).unique()}
            val = raw.astype("string").map(lambda v: uniques.get(v) if v is not pd.NA else None)
            unknown = present & val.isna().to_numpy()
            allowed = "、".join(t.zh for t in f.vocab)
            bad(unknown, f.name, lambda i, raw=raw, f=f: f"未知取值 / unknown {f.name} {raw.iloc[i]!r}; allowed: {allowed}")
            if f.default is not None:
                val = val.fillna(f.default)
            out[f.name] = val.astype(object).where(val.notna(), None)
        else:
            s = raw.astype("string").str.strip()
            s = s.where(present, None)
            # Numbers read as floats from a DBF/GeoPackage ("1.0") are codes here: drop the ".0".
            # (match, then cut: a regex replace with a back-reference runs in Python per value)
            dot0 = s.str.fullmatch(r"[0-9]+\.0").fillna(False).to_numpy(dtype=bool)
            if dot0.any():
                s = s.where(~dot0, s.str[:-2])
            if f.pattern:
                rx = re.compile(f.pattern)
                mism = present & ~s.fillna("").map(lambda v: bool(rx.fullmatch(v))).to_numpy()
                bad(mism, f.name, lambda i, s=s, f=f: f"格式不符 / {f.name!r}={s.iloc[i]!r} does not match {f.pattern}")
            if f.default is not None:
                s = s.fillna(f.default)
            out[f.name] = s.astype(object).where(s.notna(), None)
    return out


def check_duplicates(values: pd.Series, column: str, ctx: ImportContext, problems: list[Problem]) -> None:
    dup = values.notna() & values.duplicated(keep=False)
    if not dup.any():
        return
    first: dict[str, int] = {}
    for i in _rows(dup.to_numpy()):
        v = str(values.iloc[i])
        if v in first:
            problems.append(Problem(ctx.file, f"ID 重复 / duplicate ID {v!r} (first at row {first[v] + 1})", row=int(i) + 1, source_id=v, column=column))
        else:
            first[v] = int(i)


def _str(v: Any) -> str | None:
    return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else str(v)


# --- geometry validation -----------------------------------------------------------------

def check_geometry(geoms: np.ndarray, spec: LayerSpec, ids: pd.Series, ctx: ImportContext, problems: list[Problem], geographic: bool) -> np.ndarray:
    """Right type, not empty, valid (or repaired when asked), coordinates in range.
    Returns the geometries with polygons promoted to MultiPolygon and lines merged."""
    geoms = geoms.copy()
    n = len(geoms)

    def report(i: int, why: str) -> None:
        problems.append(Problem(ctx.file, why, row=i + 1, source_id=_str(ids.iloc[i])))

    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if spec.geom is None:
        return geoms
    for i in _rows(missing):
        if int(i) in ctx.unreadable:  # GDAL read it, GEOS could not build it: say why and what to do
            why = ctx.unreadable[int(i)]
            report(int(i), f"几何无法读取 / unreadable geometry: {why}; {remedy(why)}")
        elif spec.geom_required:
            report(int(i), "几何为空 / empty or missing geometry")
    present = ~missing
    types = shapely.get_type_id(geoms)
    allowed = {"MultiPolygon": (3, 6), "Point": (0, 4), "LineString": (1, 5)}[spec.geom]
    wrong = present & ~np.isin(types, allowed)
    for i in _rows(wrong):
        report(int(i), f"几何类型错误 / wrong geometry type {geoms[i].geom_type}; layer {spec.name} needs {spec.geom}")
    ok = present & ~wrong
    if geographic:
        xmin, ymin, xmax, ymax = (np.full(n, np.nan) for _ in range(4))
        b = shapely.bounds(geoms[ok])
        xmin[ok], ymin[ok], xmax[ok], ymax[ok] = b.T
        out = ok & ((xmin < -180) | (xmax > 180) | (ymin < -90) | (ymax > 90))
        for i in _rows(out):
            report(int(i), f"坐标超出范围 / coordinates out of range (lon {xmin[i]:.6g}..{xmax[i]:.6g}, lat {ymin[i]:.6g}..{ymax[i]:.6g})")
        ok &= ~out
    invalid = ok & ~shapely.is_valid(geoms)
    for i in _rows(invalid):
        reason = shapely.is_valid_reason(geoms[i])
        if ctx.repair and spec.geom == "MultiPolygon":
            fixed = _polygonal(shapely.make_valid(geoms[i]))
            if fixed is not None and not fixed.is_empty:
                geoms[i] = fixed
                ctx.repaired.append(Problem(ctx.file, f"已修复 / repaired: {reason}", row=int(i) + 1, source_id=_str(ids.iloc[i])))
                continue
        report(int(i), f"几何无效 / invalid geometry: {reason}; {remedy(reason)}")
    # Normalise kinds: Polygon → MultiPolygon, single-part MultiPoint → Point, lines merged.
    if spec.geom == "MultiPolygon":
        poly = ok & (shapely.get_type_id(geoms) == 3)  # not `types`: repaired ones are MultiPolygons now
        geoms[poly] = shapely.multipolygons(geoms[poly][:, None]) if poly.any() else geoms[poly]
    elif spec.geom == "Point":
        multi = ok & (types == 4)
        for i in _rows(multi):
            if shapely.get_num_geometries(geoms[i]) == 1:
                geoms[i] = shapely.get_geometry(geoms[i], 0)
            else:
                report(int(i), "多点几何 / a MultiPoint with several points; one point per feature is needed")
    elif spec.geom == "LineString":
        multi = ok & (types == 5)
        if multi.any():
            geoms[multi] = shapely.line_merge(geoms[multi])
    return geoms


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry | None:
    parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not parts:
        return None
    u = shapely.union_all(parts)
    return shapely.multipolygons([u]) if u.geom_type == "Polygon" else u


# --- writing -----------------------------------------------------------------------------

# PostgreSQL column type -> psycopg binary dumper; every column of a COPY must have one for
# the binary format, else the rows go as CSV text.
_BINARY_TYPES = {
    "text": "text", "character varying": "text", "character": "text", "smallint": "int2", "integer": "int4",
    "bigint": "int8", "real": "float4", "double precision": "float8", "boolean": "bool", "date": "date",
    "geometry": "bytea",  # (E)WKB bytes: geometry_recv reads them as they are
}
# A load this large into a table holding fewer rows builds the table's secondary indexes
# afterwards (a sorted GiST build is several times faster than 100,000 GiST inserts).
REBUILD_INDEXES_MIN_ROWS = 10_000
COPY_CHUNK = 10_000  # rows encoded at a time while the server takes the previous ones


def copy_rows(conn: Connection, table: str, frame: pd.DataFrame, columns: list[str], *, bulk: bool = False) -> None:
    """COPY rows into a table in the current transaction: binary (geometry as WKB bytes)
    when every column's type has a binary form, CSV otherwise. ``bulk``: a large load into
    a table with fewer rows than it brings builds the secondary indexes after the rows
    (inside a savepoint: a failure restores them with everything else)."""
    if bulk and len(frame) >= REBUILD_INDEXES_MIN_ROWS:
        with conn.begin_nested(), _bulk_memory(conn):
            fewer = _fewer_rows_than(conn, table, len(frame))
            indexes = _secondary_indexes(conn, table) if fewer else []
            keys = _foreign_keys(conn, table) if fewer and not _citus(conn) else []
            for name, _ in indexes:
                conn.execute(text(f"DROP INDEX {name}"))
            for name, _ in keys:
                conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
            _copy(conn, table, frame, columns)
            for _, ddl in indexes:
                conn.execute(text(ddl))
            for name, ddl in keys:  # validated by one join over the table, not by a check per row
                conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {name} {ddl}"))
    else:
        _copy(conn, table, frame, columns)


@contextmanager
def _bulk_memory(conn: Connection) -> Iterator[None]:
    """Sort memory for one large load (settings ``import_work_mem``, ``import_maintenance_work_mem``),
    local to the transaction and given back afterwards."""
    s = get_settings()
    before = conn.execute(text("SELECT current_setting('work_mem'), current_setting('maintenance_work_mem')")).one()
    conn.execute(text("SELECT set_config('work_mem', :w, true), set_config('maintenance_work_mem', :m, true)"),
                 {"w": s.import_work_mem, "m": s.import_maintenance_work_mem})
    yield
    conn.execute(text("SELECT set_config('work_mem', :w, true), set_config('maintenance_work_mem', :m, true)"),
                 {"w": before[0], "m": before[1]})


def _citus(conn: Connection) -> bool:
    from gis.citus import is_citus

    return is_citus(conn)


def _copy(conn: Connection, table: str, frame: pd.DataFrame, columns: list[str]) -> None:
    """COPY into ``table``, or, where row-level security applies to this role (every layer
    table FORCEs it, the owner included: migration 0016, and PostgreSQL refuses COPY FROM
    there), into a temporary staging table and then one INSERT that the policies check."""
    cols = ", ".join(columns)
    if conn.execute(text("SELECT row_security_active(to_regclass(:t))"), {"t": table}).scalar():
        stage = "_copy_" + table.replace(".", "_")
        conn.execute(text(f"DROP TABLE IF EXISTS pg_temp.{stage}"))
        conn.execute(text(f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"))
        _copy_direct(conn, stage, frame, columns, types_of=table)
        with conn.connection.driver_connection.cursor() as cur:  # (errors as a COPY raises them: psycopg's)
            cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM pg_temp.{stage}")
            cur.execute(f"DROP TABLE pg_temp.{stage}")
        return
    _copy_direct(conn, table, frame, columns, types_of=table)


def _copy_direct(conn: Connection, table: str, frame: pd.DataFrame, columns: list[str], *, types_of: str) -> None:
    cols = ", ".join(columns)
    raw = conn.connection.driver_connection
    values = _binary_columns(conn, types_of, frame, columns)
    with raw.cursor() as cur:
        if values is not None:
            types, data = values
            # A writer thread feeds the server while this one encodes the next chunk: the
            # server's work (constraints, the EPSG:3857 column, indexes) overlaps ours.
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT binary)", writer=QueuedLibpqWriter(cur)) as cp:
                cp.set_types(types)
                for start in range(0, len(frame), COPY_CHUNK):
                    part = [d(start, start + COPY_CHUNK) if callable(d) else d[start:start + COPY_CHUNK] for d in data]
                    for row in zip(*part):
                        cp.write_row(row)
            return
        buf = io.StringIO()
        encoded = {c: _hex_column(frame[c]) for c in columns if frame[c].dtype == object}
        frame[columns].assign(**{c: v for c, v in encoded.items() if v is not None}).to_csv(buf, index=False, header=False, na_rep="")
        buf.seek(0)
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as cp:
            while chunk := buf.read(1 << 20):
                cp.write(chunk)


def _hex_column(s: pd.Series) -> np.ndarray | None:
    """Geometries or WKB bytes as hex EWKB text (for CSV); None if the column holds neither."""
    v = s.to_numpy(dtype=object)
    if shapely.is_geometry(v).any():
        return ewkb_hex(np.where(shapely.is_geometry(v), v, None))
    if any(isinstance(x, bytes) for x in v):
        return np.array([x.hex() if isinstance(x, bytes) else x for x in v], dtype=object)
    return None


def _binary_columns(conn: Connection, table: str, frame: pd.DataFrame, columns: list[str]) -> tuple[list[str], list] | None:
    """Each column as Python values of its table column's type, or None (use CSV) when a
    type has no binary dumper here or a value will not convert. Geometry objects stay
    objects: they are encoded chunk by chunk while the rows go out."""
    pg = dict(conn.execute(text(
        "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
        "WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped"), {"t": table}).all())
    types = [_BINARY_TYPES.get(pg.get(c, "")) for c in columns]
    if None in types:
        return None
    try:
        return types, [_python_values(frame[c], t) for c, t in zip(columns, types)]
    except (TypeError, ValueError, OverflowError):
        return None


def _python_values(s: pd.Series, kind: str):
    if kind == "text":
        return s.astype("string").to_numpy(dtype=object, na_value=None)
    if kind in ("int2", "int4", "int8"):
        return pd.to_numeric(s).astype("Int64").to_numpy(dtype=object, na_value=None)
    if kind in ("float4", "float8"):
        return pd.to_numeric(s).astype("Float64").to_numpy(dtype=object, na_value=None)
    if kind == "bool":
        return s.astype("boolean").to_numpy(dtype=object, na_value=None)
    if kind == "date":
        out = np.array(pd.to_datetime(s).dt.date, dtype=object)
    else:  # bytea (geometry): shapely geometries (EPSG:4326), WKB bytes or hex text
        v = s.to_numpy(dtype=object)
        geom = shapely.is_geometry(v)
        if geom.any():
            if not (geom | pd.isna(v)).all():
                raise TypeError("a geometry column mixes geometries with other values")
            v = np.where(geom, v, None)
            return lambda a, b: ewkb(v[a:b])
        out = np.array([bytes.fromhex(x) if isinstance(x, str) else x for x in v], dtype=object)
    out[pd.isna(out)] = None
    return out


def _fewer_rows_than(conn: Connection, table: str, n: int) -> bool:
    return int(conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT :n) s"), {"n": n}).scalar_one()) < n


def _foreign_keys(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(quoted name, definition) of the table's own foreign keys. A large load into a table
    holding fewer rows than it brings drops them and adds them back after the rows: PostgreSQL
    then checks every row by one join (``RI_Initial_Check``; the owner may, row-level security
    notwithstanding) instead of one look-up per row and key queued as an after-trigger event
    (15.5 s of 54 s of the buildings INSERT at 1,000,000 buildings, growing faster than the rows).
    Same constraints, same names; a row that breaks one fails the load as before."""
    return [tuple(r) for r in conn.execute(text("""
        SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = to_regclass(:t) AND contype = 'f' ORDER BY conname"""), {"t": table}).all()]


def _secondary_indexes(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes no constraint owns (not primary, unique or exclusion)."""
    return [tuple(r) for r in conn.execute(text("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
        WHERE i.indrelid = to_regclass(:t) AND NOT i.indisprimary AND NOT i.indisunique AND NOT i.indisexclusion
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1"""), {"t": table}).all()]


@contextmanager
def without_jit(conn: Connection) -> Iterator[None]:
    """No JIT for spatial joins: PostGIS calls are opaque to it, and compiling one costs
    ~0.35 s even when there is nothing to join. Local to the transaction: a rollback
    (every failed import has one) reverts it too."""
    jit = conn.execute(text("SELECT current_setting('jit'), set_config('jit', 'off', true)")).scalar_one()
    yield
    conn.execute(text("SELECT set_config('jit', :jit, true)"), {"jit": jit})


def max_id(conn: Connection, table: str) -> int:
    return int(conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar_one())


def to_frame(gdf: gpd.GeoDataFrame) -> pd.DataFrame:
    return pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
