"""Surveillance cameras with the GB/T 28181-2022 catalogue fields the coverage model needs.

Device ID (20 digits): 8 centre code (2 province, 2 city, 2 district, 2 grass-roots unit)
+ 2 industry + 3 type + 1 network + 6 serial (standards §5).
"""
from __future__ import annotations

import pandas as pd

from gis.problems import Problem
from layers.base import Field, ImportContext, LayerSpec
from layers.facilities import _where
from layers.vocab import CAMERA_STATUSES, DIRECTION_TYPES

# GB/T 2260 province prefixes (11 Beijing … 82 Macao).
PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
             50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82}
CAMERA_TYPES = {"131", "132"}  # 131 camera, 132 network camera (IPC)


def device_id_problem(device_id: str) -> str | None:
    """Why a GB/T 28181 device ID is not a camera's, or None."""
    if not (len(device_id) == 20 and device_id.isdigit()):
        return f"设备编码须为20位数字 / device ID must be 20 digits, got {device_id!r} ({len(device_id)})"
    if int(device_id[:2]) not in PROVINCES:
        return f"设备编码省级代码无效 / province code {device_id[:2]} in device ID is not a GB/T 2260 province"
    if device_id[10:13] not in CAMERA_TYPES:
        return f"设备类型码应为131或132 / type code {device_id[10:13]} is not a camera (131/132)"
    return None


def azimuth_of(direction_type: float) -> float | None:
    # Codes outside 1-8 are reported by the field check; they give no azimuth.
    return DIRECTION_TYPES[int(direction_type)][1] if pd.notna(direction_type) and int(direction_type) in DIRECTION_TYPES else None


def direction_of(azimuth: float) -> int | None:
    """The nearest GB/T 28181 DirectionType for an azimuth in degrees."""
    if pd.isna(azimuth):
        return None
    return min(DIRECTION_TYPES, key=lambda k: abs(((DIRECTION_TYPES[k][1] - azimuth + 180) % 360) - 180))


def _prepare(frame: pd.DataFrame, ctx: ImportContext, problems: list[Problem]) -> pd.DataFrame:
    for i, dev in enumerate(frame["device_id"]):
        if dev is not None:
            why = device_id_problem(dev)
            if why:
                problems.append(Problem(ctx.file, why, row=i + 1, source_id=dev, column="device_id"))
    az = frame["azimuth"].astype("Float64")
    frame["azimuth"] = az.where(az.notna(), frame["direction_type"].map(azimuth_of)).astype("Float64") % 360
    dt = frame["direction_type"]
    frame["direction_type"] = dt.where(dt.notna(), frame["azimuth"].map(direction_of)).astype("Int64")
    return frame


CAMERAS = LayerSpec(
    name="cameras", table="cameras", geom="Point", id_field="device_id", zh="摄像头",
    fields=(
        Field("device_id", required=True, aliases=("DeviceID", "设备编码", "设备编号", "国标编码")),
        Field("source_id", aliases=("osm_id", "源ID")),
        Field("name", aliases=("Name", "名称", "点位名称")),
        Field("civil_code", pattern=r"[0-9]{2,12}", aliases=("CivilCode", "行政区划")),
        Field("direction_type", kind="int", min=1, max=8, aliases=("DirectionType", "方向", "朝向")),
        Field("azimuth", kind="float", min=0, max=360, aliases=("方位角", "camera:direction", "direction")),
        Field("hfov", kind="float", min=1, max=360, aliases=("HorizontalFieldAngle", "水平视场角")),
        Field("vfov", kind="float", min=1, max=180, aliases=("VerticalFieldAngle", "垂直视场角")),
        Field("max_view_distance", kind="float", min=1, max=5000, aliases=("MaxViewDistance", "可视距离", "最大可视距离")),
        Field("ptz_type", kind="int", min=1, max=7, aliases=("PTZType", "摄像机类型")),
        Field("room_type", kind="int", min=1, max=2, aliases=("RoomType", "室内外")),
        Field("point_type", kind="int", min=1, max=3, aliases=("PointType", "点位类型")),
        Field("status", kind="vocab", vocab=CAMERA_STATUSES, default="online", aliases=("Status", "状态")),
    ),
    prepare=_prepare,
)


# --- queries for the dashboard (read-only; the app role) ---------------------------------

def cameras_in(conn, bounds: tuple[float, float, float, float] | None = None, grid_id: int | None = None,
               limit: int | None = None):
    """Cameras in a box (west, south, east, north) or in a grid: id, name, st (status), geometry
    (the first ``limit`` only, when given: a map draws a city's cameras as tiles instead)."""
    import geopandas as gpd
    from sqlalchemy import text

    where, params = _where(bounds, grid_id, alias="k")
    return gpd.read_postgis(text(f"""
        SELECT k.id, k.device_id, k.name, k.status AS st, k.ptz_type, k.geom FROM cameras k
        WHERE {where} ORDER BY k.device_id{" LIMIT :limit" if limit is not None else ""}"""), conn, geom_col="geom",
        params={**params, "limit": limit}).rename_geometry("geometry")


def camera_detail(conn, camera_id: int) -> dict | None:
    from sqlalchemy import text

    row = conn.execute(text("""
        SELECT id, device_id, name, status, ptz_type, direction_type, azimuth, hfov, max_view_distance, room_type, point_type
        FROM cameras WHERE id = :id"""), {"id": camera_id}).mappings().one_or_none()
    return dict(row) if row else None
