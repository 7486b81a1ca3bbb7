"""OpenStreetMap extracts (.osm.pbf) as Wangge layers, read with GDAL's OSM driver
(inside the pyogrio wheel): buildings with levels, streets, amenities as facilities,
``man_made=surveillance`` as cameras, ``admin_level`` boundaries as communities.

OSM knows no Chinese administrative codes or GB/T 28181 device IDs, so they are made
here from the deployment's settings (district, sub-district, camera centre code), in a
stable order, and the OSM id is kept as ``source_id``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from gis.problems import ImportFailed, Problem, remedy

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
    """One tag's values out of GDAL's hstore-like ``other_tags``, vectorised (one regex pass
    in C per column instead of a dict per feature)."""
    other = frame["other_tags"].astype(object).where(frame["other_tags"].notna(), "")
    found = pd.Series(other, index=frame.index, dtype="string").str.extract(
        r'(?:^|,)"' + re.escape(key) + r'"=>"((?:[^"\\]|\\.)*)"', expand=False)
    return found.astype(object).where(found.notna(), None)


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


@dataclass
class OsmExtract:
    """What an extract gave: one frame per Wangge layer, and per layer the features GDAL
    returned but that cannot be made into a geometry (each named, with the remedy)."""

    frames: dict[str, gpd.GeoDataFrame]
    unreadable: dict[str, list[Problem]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)  # features GDAL returned per OSM layer
    residential_land_ha: float | None = None  # landuse=residential, to check estimated households against


def read_layer(path: Path, layer: str) -> tuple[gpd.GeoDataFrame, dict[int, str]]:
    """One layer of the extract, feature by feature where it must be (gis.readers.read_per_feature):
    one multipolygon GDAL assembled with a two-point ring (GEOS refuses it) costs that
    feature, not the file."""
    from gis.readers import read_per_feature

    frame, broken = read_per_feature(path, layer)
    return frame.set_crs(frame.crs or "EPSG:4326", allow_override=True), broken


def read_osm(path: str | Path, *, subdistrict_code: str, camera_centre_code: str) -> OsmExtract:
    path = Path(path)
    if not path.exists():
        raise ImportFailed([Problem(path.name, "文件不存在 / file not found")])
    try:
        # OSM XML (e.g. from Overpass) is often not sorted by id, which GDAL's own index needs.
        pyogrio.set_gdal_config_options({"OSM_USE_CUSTOM_INDEXING": "NO" if path.suffix.lower() == ".osm" else None})
        polys, bad_polys = read_layer(path, "multipolygons")
        lines, bad_lines = read_layer(path, "lines")
        points, _ = read_layer(path, "points")
    except Exception as exc:  # GDAL raises several kinds for a damaged extract
        raise ImportFailed([Problem(path.name, f"无法读取OSM文件 / cannot read the OSM extract: {exc}")]) from exc
    ext = OsmExtract({}, read={"multipolygons": len(polys), "lines": len(lines), "points": len(points)})
    unreadable = _name_unreadable(path.name, polys, bad_polys, lines, bad_lines)
    ok_polys = polys.drop(index=list(bad_polys)) if bad_polys else polys
    ok_lines = lines.drop(index=list(bad_lines)) if bad_lines else lines
    buildings = _buildings(ok_polys, ok_polys)
    communities = _communities(ok_polys, subdistrict_code)
    if not len(communities) and len(buildings):
        communities = _fallback_community(buildings, subdistrict_code, path)
        ext.notes.append(f"提取文件中没有 admin_level=10 社区边界：整个范围作为一个社区 {communities['code'].iloc[0]} / "
                         "the extract holds no admin_level=10 ward boundaries: its buildings' extent is one community "
                         "(replace it with the office's community boundaries: wangge import communities FILE --replace)")
    ext.frames = {
        "communities": communities,
        "buildings": buildings,
        "roads": _roads(ok_lines),
        "facilities": _facilities(points, ok_polys),
        "cameras": _cameras(points, camera_centre_code),
    }
    ext.unreadable = unreadable
    land = ok_polys[(ok_polys["landuse"] == "residential") & ok_polys.geometry.notna()] if "landuse" in ok_polys else ok_polys.iloc[:0]
    if len(land):
        from gis.crs import metric_epsg

        c = land.geometry.representative_point().union_all().centroid
        ext.residential_land_ha = float(shapely.union_all(shapely.make_valid(land.to_crs(metric_epsg(c.x, c.y)).geometry.values)).area / 10000)
    return ext


def _name_unreadable(file: str, polys: gpd.GeoDataFrame, bad_polys: dict[int, str], lines: gpd.GeoDataFrame,
                     bad_lines: dict[int, str]) -> dict[str, list[Problem]]:
    """Each unreadable feature, under the Wangge layer it would have gone to (the rest, e.g. a
    broken landuse relation, are named under ``other``: nothing Wangge imports is lost)."""
    out: dict[str, list[Problem]] = {}
    for frame, bad, osm_layer in ((polys, bad_polys, "multipolygons"), (lines, bad_lines, "lines")):
        if not bad:
            continue
        rows = frame.loc[list(bad)]
        ids = _source_ids(rows) if osm_layer == "multipolygons" else "w" + rows["osm_id"].astype("string")
        for i, sid in zip(rows.index, ids):
            target = "other"
            if osm_layer == "multipolygons":
                if pd.notna(rows.at[i, "building"]):
                    target = "buildings"
                elif str(rows.at[i, "admin_level"]) == "10":
                    target = "communities"
                elif rows.at[i, "amenity"] in AMENITY_CATEGORY:
                    target = "facilities"
            elif pd.notna(rows.at[i, "highway"]) and rows.at[i, "highway"] not in NOT_STREETS:
                target = "roads"
            reason = bad[i]
            out.setdefault(target, []).append(Problem(
                f"{file} [{osm_layer}]", f"几何无法读取 / unreadable geometry: {reason}; {remedy(reason)}",
                row=int(i) + 1, source_id=str(sid)))
    return out


def _fallback_community(buildings: gpd.GeoDataFrame, subdistrict_code: str, path: Path) -> gpd.GeoDataFrame:
    """One community around all the buildings (an extract without ward boundaries)."""
    from gis.crs import metric_epsg
    from gis.settings import get_settings

    pts = buildings.geometry.representative_point()
    c = pts.union_all().centroid
    metric = metric_epsg(c.x, c.y)
    # the hull of the vertices: robust where a footprint is invalid (a union is not)
    hull = gpd.GeoSeries([shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(buildings.geometry.to_crs(metric).values)))], crs=metric)
    area = hull.buffer(get_settings().osm_fallback_community_buffer_m).to_crs(buildings.crs)
    return gpd.GeoDataFrame({"code": [f"{subdistrict_code}001"], "name": [path.name.split(".")[0]], "source_id": [None]},
                            geometry=area.values, crs=buildings.crs)


def _communities(polys: gpd.GeoDataFrame, subdistrict_code: str) -> gpd.GeoDataFrame:
    wards = polys[polys["admin_level"].astype("string") == "10"].reset_index(drop=True)
    order = _west_east_north_south(wards.geometry) if len(wards) else np.array([], dtype=int)
    wards = wards.iloc[order].reset_index(drop=True)
    return gpd.GeoDataFrame({
        "code": [f"{subdistrict_code}{i + 1:03d}" for i in range(len(wards))],
        "name": wards["name"].fillna("").to_numpy(),
        "source_id": _source_ids(wards).to_numpy(),
    }, geometry=wards.geometry.values, crs=polys.crs)


BUILDING_USE = {
    "residential": "residential", "apartments": "residential", "house": "residential", "detached": "residential",
    "semidetached_house": "residential", "terrace": "residential", "bungalow": "residential", "dormitory": "residential",
    "farm": "residential", "cabin": "residential",
    "commercial": "commercial", "retail": "commercial", "office": "office", "school": "school", "kindergarten": "school",
    "university": "school", "hospital": "hospital", "public": "public", "civic": "public", "government": "public",
    "industrial": "industrial", "warehouse": "industrial", "church": "public",
}
UNSPECIFIED_USE = {"yes"}  # building=yes: a building, use not said


def _buildings(polys: gpd.GeoDataFrame, land: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    b = polys[polys["building"].notna() & polys.geometry.notna()].reset_index(drop=True)
    levels = pd.to_numeric(_tag_column(b, "building:levels"), errors="coerce")
    height = pd.to_numeric(_tag_column(b, "height").str.replace("m", "", regex=False), errors="coerce")
    street, number = _tag_column(b, "addr:street"), _tag_column(b, "addr:housenumber")
    use = b["building"].map(BUILDING_USE).fillna("other")
    if land is not None and len(b):
        from gis.settings import get_settings

        unspecified = b["building"].isin(UNSPECIFIED_USE).to_numpy()
        residential_land = land[(land["landuse"] == "residential") & land.geometry.notna()] if "landuse" in land else land.iloc[:0]
        if get_settings().unspecified_use_residential_on_landuse and unspecified.any() and len(residential_land):
            pts = shapely.point_on_surface(b.geometry.values[unspecified])
            tree = shapely.STRtree(residential_land.geometry.values)
            hit = np.zeros(len(pts), dtype=bool)
            hit[np.unique(tree.query(pts, predicate="within")[0])] = True
            idx = np.flatnonzero(unspecified)[hit]
            use.iloc[idx] = "residential"
    return gpd.GeoDataFrame({
        "source_id": _source_ids(b).to_numpy(),
        "name": b["name"].to_numpy(),
        "address": (number.fillna("") + " " + street.fillna("")).str.strip().replace("", None).to_numpy(),
        "use": use.to_numpy(),
        "floors": levels.where((levels >= 1) & (levels <= 200) & (levels % 1 == 0)).astype("Int64").to_numpy(),
        "height_m": height.where((height >= 0.5) & (height <= 700)).to_numpy(),
        "building_type": b["building"].to_numpy(),
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
