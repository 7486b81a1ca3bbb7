"""Reading vector files as they come from the field: GeoJSON, GeoPackage, Shapefile
(often GBK), CSV/Excel with coordinate columns.

The reader's job ends at "a frame of features in the file's own CRS, with text decoded":
validation against a layer and reprojection belong to the importer. Problems that make
the whole file unreadable raise ``ImportFailed`` naming the file (and the row, for text
that will not decode).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis.crs import CRSProblem, SourceCRS, parse_crs
from gis.problems import ImportFailed, Problem

LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度", "东经")
LAT_NAMES = ("lat", "latitude", "y", "纬度", "北纬")
WKT_NAMES = ("wkt", "geometry", "geom", "几何")  # polygons and lines in a table (what `wangge export` writes)
# Tried in order when a file does not say its encoding. GB18030 is a superset of GBK.
FALLBACK_ENCODINGS = ("utf-8", "gb18030")


@dataclass
class Source:
    path: Path
    frame: gpd.GeoDataFrame
    crs: SourceCRS | None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)
    unreadable: dict[int, str] = field(default_factory=dict)  # row -> why no geometry could be made of it

    @property
    def name(self) -> str:
        return self.path.name


def read_vector(
    path: str | Path,
    *,
    layer: str | None = None,
    crs: str | None = None,
    encoding: str | None = None,
) -> Source:
    path = Path(path)
    if not path.exists():
        raise ImportFailed([Problem(path.name, "文件不存在 / file not found")])
    suffix = "".join(path.suffixes[-2:]).lower() if path.name.lower().endswith(".osm.pbf") else path.suffix.lower()
    try:
        declared = parse_crs(crs)
    except CRSProblem as exc:
        raise ImportFailed([Problem(path.name, str(exc))]) from exc

    if suffix in (".csv", ".txt", ".xlsx", ".xls"):
        return _read_table(path, declared, encoding)
    if suffix == ".osm.pbf":
        raise ImportFailed([Problem(path.name, "OSM extracts are imported with `wangge import-osm`")])

    notes: list[str] = []
    if suffix == ".shp":
        encoding = encoding or _shapefile_encoding(path, notes)
    elif suffix in (".geojson", ".json"):
        _check_text(path, encoding or "utf-8")
    try:
        # Arrow: GDAL hands over whole columns (geometry as WKB), no per-feature Python objects.
        import warnings

        with warnings.catch_warnings():  # GDAL's note on a ring it cannot close: the feature is named below
            warnings.simplefilter("ignore", RuntimeWarning)
            frame = pyogrio.read_dataframe(path, layer=layer, use_arrow=True, **({"encoding": encoding} if encoding else {}))
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ImportFailed([Problem(path.name, f"无法读取 / cannot read: {exc}")]) from exc
    except UnicodeDecodeError as exc:
        raise ImportFailed([Problem(path.name, f"文本编码错误 / undecodable text ({encoding}): {exc.reason}")]) from exc
    except shapely.errors.ShapelyError:
        # One feature GEOS cannot build (a ring of two points, an unclosed ring) sinks a whole-column
        # read: read again feature by feature, keeping every readable one and naming the rest.
        frame, unreadable = read_per_feature(path, layer, encoding)
        file_crs = parse_crs(frame.crs) if frame.crs is not None else None
        return Source(path, frame, declared or file_crs, encoding, notes, unreadable)

    file_crs = parse_crs(frame.crs) if getattr(frame, "crs", None) is not None else None  # a table without geometry has none
    if declared and file_crs and not declared.shift and not declared.crs.equals(file_crs.crs):
        notes.append(f"file says {file_crs.label}, using the declared {declared.label}")
    return Source(path, frame, declared or file_crs, encoding, notes)


def read_per_feature(path: Path, layer: str | None = None, encoding: str | None = None) -> tuple[gpd.GeoDataFrame, dict[int, str]]:
    """GDAL hands over each feature's WKB and attributes; each geometry is parsed on its own.
    Returns the frame (no geometry where none can be made) and {row: reason} for those."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        meta, _fids, wkb, fields = pyogrio.raw.read(path, layer=layer, return_fids=True, **({"encoding": encoding} if encoding else {}))
    frame = pd.DataFrame({name: col for name, col in zip(meta["fields"], fields)})
    wkb = np.asarray(wkb, dtype=object) if wkb is not None else np.full(len(frame), None, dtype=object)
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    broken: dict[int, str] = {}
    for i in np.flatnonzero(shapely.is_missing(geoms) & pd.notna(wkb)):
        try:
            shapely.from_wkb(wkb[i])
            reason = "GEOS could not read the geometry"
        except Exception as exc:  # GEOSException / ShapelyError: the reason is in the message
            reason = str(exc)
        broken[int(i)] = reason
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms), crs=meta.get("crs")), broken


def _read_table(path: Path, declared: SourceCRS | None, encoding: str | None) -> Source:
    """CSV/Excel: points from longitude/latitude columns; rows without both have no geometry."""
    notes: list[str] = []
    if path.suffix.lower() in (".xlsx", ".xls"):
        df = pd.read_excel(path, dtype=str)
    else:
        raw = path.read_bytes()
        encoding = encoding or _guess_encoding(raw, path)
        try:
            text = raw.decode("utf-8-sig" if encoding == "utf-8" else encoding)
        except LookupError as exc:
            raise ImportFailed([Problem(path.name, f"未知编码 / unknown encoding {encoding!r}")]) from exc
        except UnicodeDecodeError:
            _undecodable(raw, path, (encoding,), f"文本不是 {encoding} 编码 / text does not decode as {encoding}")
        from io import StringIO

        df = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
        if encoding != "utf-8":
            notes.append(f"text decoded as {encoding}")
    df.columns = [str(c).strip() for c in df.columns]
    lon_col = _find(df.columns, LON_NAMES)
    lat_col = _find(df.columns, LAT_NAMES)
    geometry = np.full(len(df), None, dtype=object)
    problems: list[Problem] = []
    if lon_col and lat_col:
        lon = pd.to_numeric(df[lon_col], errors="coerce")
        lat = pd.to_numeric(df[lat_col], errors="coerce")
        bad = (lon.isna() & df[lon_col].notna()) | (lat.isna() & df[lat_col].notna())
        for i in np.flatnonzero(bad.to_numpy()):
            problems.append(Problem(path.name, f"坐标不是数字 / coordinate is not a number: {df[lon_col].iloc[i]!r}, {df[lat_col].iloc[i]!r}", row=int(i) + 1))
        ok = (lon.notna() & lat.notna()).to_numpy()
        geometry[ok] = shapely.points(lon[ok].to_numpy(), lat[ok].to_numpy())
        df = df.drop(columns=[lon_col, lat_col])
    elif lon_col or lat_col:
        problems.append(Problem(path.name, "只有经度或纬度一列 / only one of the longitude/latitude columns is present"))
    elif wkt_col := _find(df.columns, WKT_NAMES):
        given = [v if isinstance(v, str) and v.strip() else None for v in df[wkt_col]]
        geometry = shapely.from_wkt(np.array(given, dtype=object), on_invalid="ignore")
        for i in np.flatnonzero([g is not None for g in given] & shapely.is_missing(geometry)):
            problems.append(Problem(path.name, f"不是WKT几何 / not a WKT geometry: {given[i][:40]!r}", row=int(i) + 1, column=wkt_col))
        df = df.drop(columns=[wkt_col])
    if problems:
        raise ImportFailed(problems)
    has_points = any(g is not None for g in geometry)
    if has_points and declared is None:
        raise ImportFailed([Problem(path.name, "CSV/Excel 不带坐标系 / the table carries no CRS: pass --crs EPSG:4326 (or gcj02, bd09, EPSG:4490)")])
    frame = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geometry), crs=declared.crs if declared else None)
    return Source(path, frame, declared, encoding, notes)


def _find(columns, names: tuple[str, ...]) -> str | None:
    lowered = {str(c).strip().lower(): c for c in columns}
    for n in names:
        if n in lowered:
            return lowered[n]
    return None


def _guess_encoding(raw: bytes, path: Path) -> str:
    for enc in FALLBACK_ENCODINGS:
        try:
            raw.decode(enc)
            return enc
        except UnicodeDecodeError:
            continue
    _undecodable(raw, path, FALLBACK_ENCODINGS, "文本既不是 UTF-8 也不是 GBK / text is neither UTF-8 nor GBK")


def _undecodable(raw: bytes, path: Path, encodings: tuple[str, ...], why: str) -> NoReturn:
    """Name the data row the text stops decoding at, under the encoding that gets furthest:
    a GBK file fails UTF-8 at its first Chinese character, not at the bad bytes."""
    start = 0
    for enc in encodings:
        try:
            raw.decode(enc)
        except UnicodeDecodeError as exc:
            start = max(start, exc.start)
    line = raw[:start].count(b"\n") + 1  # line 1 is the header
    raise ImportFailed([Problem(path.name, why, row=max(line - 1, 1))])


def _check_text(path: Path, encoding: str) -> None:
    raw = path.read_bytes()
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFailed([Problem(path.name, f"文本不是 {encoding} / text is not valid {encoding} (line {line})")]) from exc
    _check_control_chars(path, raw, encoding)


def _check_control_chars(path: Path, raw: bytes, encoding: str) -> None:
    """GDAL cuts a text value at a NUL ("a\\u0000b" is read as "a"): find such values in a
    GeoJSON before it does and report each feature (issue 19). A byte scan first, so that a
    clean file is not parsed twice."""
    import json
    import re

    if not re.search(rb"\\u00[01][0-9a-fA-F]|\\u007[fF]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", raw):
        return
    rx = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    try:
        doc = json.loads(raw.decode(encoding))
    except ValueError:
        return  # GDAL reports what is malformed
    features = doc.get("features", []) if isinstance(doc, dict) else []
    problems = []
    for n, feat in enumerate(features, 1):
        props = (feat.get("properties") or {}) if isinstance(feat, dict) else {}
        for key, value in props.items() if isinstance(props, dict) else ():
            if isinstance(value, str) and rx.search(value):
                problems.append(Problem(path.name, f"含控制字符 / {key!r} holds a control character (e.g. NUL): {value!r}",
                                        row=n, column=str(key)))
    if problems:
        raise ImportFailed(problems)


def _dbf_records(dbf: Path) -> list[bytes]:
    """Raw records of a dBase table (the attribute part of a shapefile)."""
    data = dbf.read_bytes()
    count, header_len, record_len = struct.unpack("<IHH", data[4:12])
    return [data[header_len + i * record_len: header_len + (i + 1) * record_len] for i in range(count)]


def _shapefile_encoding(path: Path, notes: list[str]) -> str:
    """The encoding of a shapefile's attributes: its .cpg if any, else UTF-8 if every record
    decodes, else GBK/GB18030 (Chinese desktop GIS writes GBK without a .cpg); otherwise
    the first row that decodes under neither is named."""
    cpg = path.with_suffix(".cpg")
    dbf = path.with_suffix(".dbf")
    if not dbf.exists():
        return "utf-8"
    records = _dbf_records(dbf)
    candidates: tuple[str, ...] = FALLBACK_ENCODINGS
    if cpg.exists():
        declared = cpg.read_text(errors="replace").strip() or "utf-8"
        candidates = ({"936": "gbk", "cp936": "gbk"}.get(declared.lower(), declared),)
    first_bad: int | None = None
    for enc in candidates:
        bad = None
        for i, rec in enumerate(records):
            try:
                rec.decode(enc)
            except (UnicodeDecodeError, LookupError):
                bad = i
                break
        if bad is None:
            if enc != "utf-8":
                notes.append(f"attributes decoded as {enc}")
            return enc
        # The encoding that decodes furthest is the file's: its first bad record is the one to fix.
        first_bad = bad if first_bad is None else max(first_bad, bad)
    raise ImportFailed([Problem(path.name, f"属性文本无法解码 / attribute text does not decode as {' or '.join(candidates)}", row=(first_bad or 0) + 1)])
