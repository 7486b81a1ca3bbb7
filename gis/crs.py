"""CRS policy: what is stored, what lengths are measured in, and the Chinese map shifts.

Stored: EPSG:4326. Measured: a metric CRS picked for the data's place (a CGCS2000
3-degree Gauss-Krüger zone inside China, the UTM zone elsewhere). GCJ-02 (AMap,
Tencent) and BD-09 (Baidu) are not CRSs pyproj knows: they are obfuscating shifts, so
they are undone here with prcoords' iterative inverses (sub-millimetre round trip).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import prcoords
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis.errors import BadInput

STORAGE_EPSG = 4326
SHIFTED = {"gcj02": "GCJ-02", "gcj-02": "GCJ-02", "bd09": "BD-09", "bd-09": "BD-09"}


class CRSProblem(BadInput):
    """A CRS that is missing or that nobody knows."""


@dataclass(frozen=True)
class SourceCRS:
    """What the coordinates in a file really are: a proper CRS, or WGS-84 shifted by a Chinese map."""

    crs: CRS
    shift: str | None = None  # "GCJ-02" | "BD-09"

    @property
    def label(self) -> str:
        return self.shift or (self.crs.to_string() if self.crs.to_epsg() is None else f"EPSG:{self.crs.to_epsg()}")


def parse_crs(text: str | int | CRS | None) -> SourceCRS | None:
    """Read a user's CRS: ``EPSG:4490``, ``4547``, a WKT/PROJ string, ``gcj02`` or ``bd09``."""
    if text is None or text == "":
        return None
    if isinstance(text, CRS):
        return SourceCRS(text)
    key = str(text).strip().lower()
    if key in SHIFTED:
        return SourceCRS(CRS.from_epsg(STORAGE_EPSG), SHIFTED[key])
    try:
        return SourceCRS(CRS.from_user_input(int(key) if key.isdigit() else str(text).strip()))
    except CRSError as exc:
        raise CRSProblem(f"unknown CRS {text!r}: {exc}") from exc


def metric_epsg(lon: float, lat: float) -> int:
    """EPSG of the metric CRS for measuring near (lon, lat)."""
    if 73.5 <= lon <= 135.1 and 18.0 <= lat <= 53.6:
        central = int(round(lon / 3.0) * 3)  # CGCS2000 3-degree GK zones, CM 75E (4534) .. 135E (4554)
        central = min(max(central, 75), 135)
        return 4534 + (central - 75) // 3
    zone = int((lon + 180) // 6) + 1
    return (32600 if lat >= 0 else 32700) + zone


def _apply(geoms: np.ndarray, fn) -> np.ndarray:
    """Run a per-point (lat, lon) -> Coords function over every vertex of every geometry."""

    def vertices(xy: np.ndarray) -> np.ndarray:
        out = np.empty_like(xy)
        for i, (x, y) in enumerate(xy):
            c = fn(prcoords.Coords(y, x))
            out[i] = (c.lon, c.lat)
        return out

    return shapely.transform(geoms, vertices)


def unshift(geoms: np.ndarray, shift: str) -> np.ndarray:
    """GCJ-02 / BD-09 coordinates back to WGS-84 (never store shifted data)."""
    fn = {"GCJ-02": prcoords.gcj_wgs_bored, "BD-09": prcoords.bd_wgs_bored}[shift]
    return _apply(geoms, fn)


def shift(geoms: np.ndarray, to: str) -> np.ndarray:
    """WGS-84 to GCJ-02 / BD-09: only for drawing over a shifted basemap or exporting to one."""
    fn = {"GCJ-02": prcoords.wgs_gcj, "BD-09": prcoords.wgs_bd}[to]
    return _apply(geoms, fn)
