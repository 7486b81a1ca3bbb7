"""OpenStreetMap extracts (.osm.pbf) as Wangge layers, read with GDAL's OSM driver
(inside the pyogrio wheel): buildings with levels, streets, amenities as facilities,
``man_made=surveillance`` as cameras, ``admin_level`` boundaries as communities.

OSM knows no Chinese administrative codes or GB/T 28181 device IDs, so they are made
here from the deployment's settings (district, sub-district, camera centre code), in a
stable order, and the OSM id is kept as ``source_id``.
"""
from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis.problems import ImportFailed, Problem

_TAG = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')

# OSM amenity (or emergency/healthcare) → facility category code (layers.vocab).
AMENITY_CATEGORY = {
    "school": "school", "kindergarten": "kindergarten", "childcare": "kindergarten",
    "hospital": "hospital", "clinic": "clinic", "doctors": "clinic", "pharmacy": "pharmacy",
    "police": "police", "fire_station": "fire_station", "community_centre": "community_service_station",
    "social_facility": "elderly_day_care", "arts_centre": "culture_station",
}
NOT_STREETS = {"raceway", "construction", "proposed", "platform", "abandoned", "bus_stop", "razed"}
CAMERA_TYPE_PTZ = {"dome": 1, "fixed": 3, "panning": 4}


def tags(other: object) -> dict[str, str]:
    return dict(_TAG.findall(other)) if isinstance(other, str) else {}


def _tag_column(frame: pd.DataFrame, key: str) -> pd.Series:
    parsed = frame["other_tags"].map(tags)
    return parsed.map(lambda t: t.get(key))


def _source_ids(frame: pd.DataFrame) -> pd.Series:
    """Stable OSM ids: w123 for ways, r456 for relations, n789 for nodes."""
    if "osm_way_id" in frame:
        way = frame["osm_way_id"].astype("string")
        rel = frame["osm_id"].astype("string")
        return ("w" + way).where(way.notna(), "r" + rel)
    return "n" + frame["osm_id"].astype("string")


def _west_east_north_south(geoms: gpd.GeoSeries, band_deg: float = 0.005) -> np.ndarray:
    """Order for serials (standards §2): west to east, then north to south, in bands."""
    c = geoms.representative_point()
    band = np.floor((c.y.max() - c.y) / band_deg)
    return np.lexsort((c.x.to_numpy(), band.to_numpy()))


def read_osm(path: str | Path, *, subdistrict_code: str, camera_centre_code: str) -> dict[str, gpd.GeoDataFrame]:
    path = Path(path)
    if not path.exists():
        raise ImportFailed([Problem(path.name, "文件不存在 / file not found")])
    try:
        polys = pyogrio.read_dataframe(path, layer="multipolygons")
        lines = pyogrio.read_dataframe(path, layer="lines")
        points = pyogrio.read_dataframe(path, layer="points")
    except Exception as exc:  # GDAL raises several kinds for a damaged extract
        raise ImportFailed([Problem(path.name, f"无法读取OSM文件 / cannot read the OSM extract: {exc}")]) from exc
    return {
        "communities": _communities(polys, subdistrict_code),
        "buildings": _buildings(polys),
        "roads": _roads(lines),
        "facilities": _facilities(points, polys),
        "cameras": _cameras(points, camera_centre_code),
    }


def _communities(polys: gpd.GeoDataFrame, subdistrict_code: str) -> gpd.GeoDataFrame:
    wards = polys[polys["admin_level"].astype("string") == "10"].reset_index(drop=True)
    order = _west_east_north_south(wards.geometry) if len(wards) else np.array([], dtype=int)
    wards = wards.iloc[order].reset_index(drop=True)
    return gpd.GeoDataFrame({
        "code": [f"{subdistrict_code}{i + 1:03d}" for i in range(len(wards))],
        "name": wards["name"].fillna("").to_numpy(),
        "source_id": _source_ids(wards).to_numpy(),
    }, geometry=wards.geometry.values, crs=polys.crs)


def _buildings(polys: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    b = polys[polys["building"].notna()].reset_index(drop=True)
    levels = pd.to_numeric(_tag_column(b, "building:levels"), errors="coerce")
    height = pd.to_numeric(_tag_column(b, "height").str.replace("m", "", regex=False), errors="coerce")
    street, number = _tag_column(b, "addr:street"), _tag_column(b, "addr:housenumber")
    use = b["building"].map({
        "residential": "residential", "apartments": "residential", "house": "residential",
        "commercial": "commercial", "retail": "commercial", "office": "office", "school": "school",
        "hospital": "hospital", "public": "public", "civic": "public", "government": "public",
        "industrial": "industrial", "church": "public",
    }).fillna("other")
    return gpd.GeoDataFrame({
        "source_id": _source_ids(b).to_numpy(),
        "name": b["name"].to_numpy(),
        "address": (number.fillna("") + " " + street.fillna("")).str.strip().replace("", None).to_numpy(),
        "use": use.to_numpy(),
        "floors": levels.where((levels >= 1) & (levels <= 200) & (levels % 1 == 0)).astype("Int64").to_numpy(),
        "height_m": height.where(height > 0).to_numpy(),
    }, geometry=b.geometry.values, crs=polys.crs)


def _roads(lines: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    r = lines[lines["highway"].notna() & ~lines["highway"].isin(NOT_STREETS)].reset_index(drop=True)
    foot = _tag_column(r, "foot")
    walkable = ~r["highway"].isin({"motorway", "motorway_link", "trunk", "trunk_link"}) & (foot != "no")
    return gpd.GeoDataFrame({
        "source_id": _source_ids(r.assign(osm_way_id=r["osm_id"])).to_numpy(),
        "name": r["name"].to_numpy(),
        "road_class": r["highway"].to_numpy(),
        "walkable": walkable.to_numpy(),
    }, geometry=r.geometry.values, crs=lines.crs)


def _amenity(frame: pd.DataFrame) -> pd.Series:
    if "amenity" in frame:
        return frame["amenity"]
    return _tag_column(frame, "amenity")


def _facilities(points: gpd.GeoDataFrame, polys: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    pts = points.assign(amenity=_amenity(points))
    pts = pts[pts["amenity"].isin(AMENITY_CATEGORY)]
    pol = polys[polys["amenity"].isin(AMENITY_CATEGORY)]
    ids = pd.concat([_source_ids(pts), _source_ids(pol)], ignore_index=True)
    geoms = np.concatenate([pts.geometry.values, shapely.point_on_surface(pol.geometry.values)])
    amen = pd.concat([pts["amenity"], pol["amenity"]], ignore_index=True)
    names = pd.concat([pts["name"], pol["name"]], ignore_index=True)
    return gpd.GeoDataFrame({
        "source_id": ids.to_numpy(), "name": names.to_numpy(),
        "category": amen.map(AMENITY_CATEGORY).to_numpy(), "status": "open",
    }, geometry=geoms, crs=points.crs)


def _cameras(points: gpd.GeoDataFrame, centre_code: str) -> gpd.GeoDataFrame:
    cams = points[points["man_made"] == "surveillance"].sort_values("osm_id").reset_index(drop=True)
    t = cams["other_tags"].map(tags)
    azimuth = pd.to_numeric(t.map(lambda d: d.get("camera:direction") or d.get("direction")), errors="coerce")
    ptz = t.map(lambda d: CAMERA_TYPE_PTZ.get(d.get("camera:type", "")))
    indoor = t.map(lambda d: d.get("surveillance") == "indoor")
    # 8 centre + 00 industry + 131 camera + 8 (social-resource access network) + 6 serial
    device = [f"{centre_code}001318{i + 1:06d}" for i in range(len(cams))]
    return gpd.GeoDataFrame({
        "device_id": device, "source_id": _source_ids(cams).to_numpy(), "name": cams["name"].to_numpy(),
        "azimuth": azimuth.where((azimuth >= 0) & (azimuth < 360)).to_numpy(),
        "ptz_type": ptz.astype("Int64").to_numpy(),
        "room_type": np.where(indoor, 2, 1),
    }, geometry=cams.geometry.values, crs=points.crs)
