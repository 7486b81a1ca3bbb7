"""Grid codes, device IDs, vocabularies and the metric CRS choice: the small rules every
layer leans on."""
from __future__ import annotations

import pytest

from gis.crs import metric_epsg
from layers import codes
from layers.cameras import azimuth_of, device_id_problem, direction_of
from layers.vocab import BUILDING_USES, FACILITY_CATEGORIES, GRID_TYPES, normalise


@pytest.mark.parametrize("code,community,layout,ok", [
    ("420106010001001", "420106010001", "15", True),
    ("42010601000101", "420106010001", "14", True),
    ("42010601000101", "420106010001", "15", False),  # 14 digits where the deployment uses 15
    ("420106010002001", "420106010001", None, False),  # another community's prefix
    ("420106010001000", None, None, False),  # serial zero
    ("42010601000A001", None, None, False),
    ("4201060100010011", None, None, False),  # 16 digits
])
def test_grid_code_validation(code, community, layout, ok):
    assert (codes.problem(code, community, layout) is None) is ok


def test_grid_code_make_pads_and_refuses_overflow():
    assert codes.make("420106010001", 7, "15") == "420106010001007"
    assert codes.make("420106010001", 7, "14") == "42010601000107"
    with pytest.raises(ValueError):
        codes.make("420106010001", 100, "14")


@pytest.mark.parametrize("device_id,ok", [
    ("42010601001310000001", True),
    ("42010601001320000001", True),
    ("4201060100131000001", False),  # 19 digits
    ("99010601001310000001", False),  # no province 99
    ("42010601001180000001", False),  # 118 is an NVR, not a camera
])
def test_device_id(device_id, ok):
    assert (device_id_problem(device_id) is None) is ok


def test_direction_type_and_azimuth_agree():
    assert azimuth_of(1) == 90.0 and azimuth_of(8) == 315.0
    assert direction_of(100.0) == 1 and direction_of(350.0) == 4 and direction_of(200.0) == 3 and direction_of(215.0) == 7


def test_vocab_accepts_code_chinese_english():
    assert normalise(FACILITY_CATEGORIES, "社区服务站") == "community_service_station"
    assert normalise(FACILITY_CATEGORIES, " Kindergarten / nursery ") == "kindergarten"
    assert normalise(GRID_TYPES, "专属") == "dedicated"
    assert normalise(BUILDING_USES, "住宅") == "residential"
    assert normalise(BUILDING_USES, "castle") is None


def test_metric_crs_for_wuhan_and_monaco():
    assert metric_epsg(114.32, 30.54) == 4547  # CGCS2000 / 3-degree GK CM 114E
    assert metric_epsg(7.42, 43.73) == 32632  # UTM 32N
    assert metric_epsg(-70.6, -33.4) == 32719
