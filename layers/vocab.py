"""Controlled vocabularies: the codes stored in the database and the names users know.

Codes are short English slugs so that SQL, URLs and files stay stable; every code has
its Chinese name from the standards (shown by default) and an English one. Importers
accept any of the three spellings, so a GBK shapefile saying ``社区服务站`` and a CSV
saying ``community_service_station`` load the same.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    code: str
    zh: str
    en: str


@dataclass(frozen=True)
class FacilityCategory(Term):
    radius_m: float | None  # default service radius, standards §4; None: no GB 50180 radius
    life_circle: str | None  # "5min" | "10min" | "15min"


# GB 50180-2018 categories of standards §4, then the public-safety and health services
# that OSM extracts carry and a grid worker needs on the map (no radius rule).
FACILITY_CATEGORIES: tuple[FacilityCategory, ...] = (
    FacilityCategory("community_service_station", "社区服务站", "Community service station", 300, "5min"),
    FacilityCategory("health_station", "社区卫生服务站", "Community health station", 300, "5min"),
    FacilityCategory("elderly_day_care", "老年人日间照料中心", "Elderly day-care centre", 300, "5min"),
    FacilityCategory("kindergarten", "幼儿园", "Kindergarten / nursery", 300, "5min"),
    FacilityCategory("culture_station", "文化活动站", "Culture station", 500, "10min"),
    FacilityCategory("primary_school", "小学", "Primary school", 500, "10min"),
    FacilityCategory("middle_school", "初中", "Middle school", 1000, "15min"),
    FacilityCategory("health_centre", "社区卫生服务中心", "Community health centre", 1000, "15min"),
    FacilityCategory("subdistrict_service_centre", "街道级社区服务中心", "Sub-district service centre", 1000, "15min"),
    FacilityCategory("school", "学校", "School (level unknown)", None, None),
    FacilityCategory("hospital", "医院", "Hospital", None, None),
    FacilityCategory("clinic", "诊所", "Clinic", None, None),
    FacilityCategory("police", "派出所/警务室", "Police", None, None),
    FacilityCategory("pharmacy", "药店", "Pharmacy", None, None),
    FacilityCategory("fire_station", "消防站", "Fire station", None, None),
)

CADRE_ROLES: tuple[Term, ...] = (
    Term("community_secretary", "社区书记", "Community secretary"),
    Term("community_director", "社区主任", "Community director"),
    Term("grid_chief", "网格长", "Grid chief"),
    Term("full_time_worker", "专职网格员", "Full-time grid worker"),
    Term("part_time_worker", "兼职网格员", "Part-time grid worker"),
    Term("building_head", "楼栋长", "Building head"),
    Term("police_officer", "社区民警", "Community police officer"),
    Term("volunteer", "志愿者", "Volunteer"),
    Term("party_member", "党员", "Party member"),
)

BUILDING_USES: tuple[Term, ...] = (
    Term("residential", "住宅", "Residential"),
    Term("mixed", "商住混合", "Mixed use"),
    Term("commercial", "商业", "Commercial"),
    Term("office", "办公", "Office"),
    Term("school", "学校", "School"),
    Term("hospital", "医疗", "Hospital"),
    Term("public", "公共建筑", "Public"),
    Term("industrial", "工业", "Industrial"),
    Term("other", "其他", "Other"),
)

GRID_TYPES: tuple[Term, ...] = (
    Term("comprehensive", "综合网格", "Comprehensive grid"),
    Term("dedicated", "专属网格", "Dedicated grid"),
)

FACILITY_STATUSES: tuple[Term, ...] = (
    Term("open", "运营", "Open"),
    Term("planned", "规划", "Planned"),
    Term("closed", "停用", "Closed"),
)

CAMERA_STATUSES: tuple[Term, ...] = (
    Term("online", "在线", "Online"),
    Term("offline", "离线", "Offline"),
    Term("unknown", "未知", "Unknown"),
)

# Groups a grid keeps counts of (standards §3): column, Chinese, English. Counts only.
GROUPS: tuple[Term, ...] = (
    Term("elderly_65", "65岁以上老人", "Elderly 65+"),
    Term("elderly_alone", "独居老人", "Elderly living alone"),
    Term("disabled", "残疾人", "Disabled"),
    Term("dibao", "低保户", "Minimum-income (低保) households"),
    Term("floating", "流动人口", "Floating population"),
    Term("rental", "出租屋", "Rental dwellings"),
    Term("released", "刑满释放人员", "Released prisoners"),
    Term("corrections", "社区矫正对象", "Community-corrections cases"),
    Term("at_risk_youth", "重点青少年", "At-risk youth"),
    Term("party_members", "党员", "Party members"),
    Term("volunteers", "志愿者", "Volunteers"),
)

# GB/T 28181-2022 catalogue enumerations (standards §5).
DIRECTION_TYPES: dict[int, tuple[str, float]] = {  # code -> (name, azimuth in degrees)
    1: ("东", 90.0), 2: ("西", 270.0), 3: ("南", 180.0), 4: ("北", 0.0),
    5: ("东南", 135.0), 6: ("东北", 45.0), 7: ("西南", 225.0), 8: ("西北", 315.0),
}
PTZ_TYPES: dict[int, str] = {
    1: "球机", 2: "半球", 3: "固定枪机", 4: "遥控枪机", 5: "遥控半球", 6: "多目设备的全景/拼接通道", 7: "多目设备的细节通道",
}
ROOM_TYPES: dict[int, str] = {1: "室外", 2: "室内"}
POINT_TYPES: dict[int, str] = {1: "一类视频监控点", 2: "二类视频监控点", 3: "三类视频监控点"}


def codes(terms: tuple[Term, ...]) -> list[str]:
    return [t.code for t in terms]


def normalise(terms: tuple[Term, ...], value: object) -> str | None:
    """Map a code, Chinese or English name (any case, stray spaces) to the code; None if unknown."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    folded = text.casefold()
    for t in terms:
        if folded in (t.code, t.zh.casefold(), t.en.casefold()):
            return t.code
    # Accept the bare Chinese name without its suffix, e.g. 综合 for 综合网格.
    for t in terms:
        if t.zh.startswith(text) and len(text) >= 2:
            return t.code
    return None


def label(terms: tuple[Term, ...], code: str, lang: str = "zh") -> str:
    for t in terms:
        if t.code == code:
            return t.zh if lang == "zh" else t.en
    return code
