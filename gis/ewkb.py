"""Geometries as EWKB (with their SRID), the form COPY sends them in: bytes for binary COPY,
hex text for text or CSV COPY (then ``ST_GeomFromEWKB(decode(col, 'hex'))`` if staged)."""
from __future__ import annotations

import numpy as np
import shapely


def ewkb(geoms, srid: int = 4326) -> np.ndarray:
    """Binary EWKB with the SRID (what binary COPY sends), None where there is no geometry."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms)
    out = np.full(len(geoms), None, dtype=object)
    if present.any():
        out[present] = shapely.to_wkb(shapely.set_srid(geoms[present], srid), include_srid=True)
    return out


def ewkb_hex(geoms, srid: int = 4326) -> np.ndarray:
    """Hex EWKB text with the SRID, None where there is no geometry."""
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms)
    out = np.full(len(geoms), None, dtype=object)
    if present.any():
        out[present] = shapely.to_wkb(shapely.set_srid(geoms[present], srid), hex=True, include_srid=True)
    return out
