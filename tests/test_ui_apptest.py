"""Dashboard logic without a browser: Streamlit's AppTest drives the page script
(it cannot click inside the map; the browser tests do that), plus the pure helpers."""
from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from sqlalchemy import text

from gis.db import app_engine
from gis.settings import ROOT

def _app(account=None, **query: str):
    from tests.accounts import apptest

    return apptest(account, **query)


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_signed_out_sees_only_the_way_to_sign_in(demo: dict) -> None:
    at = _app()
    assert not at.exception
    assert not at.metric and not at.dataframe  # no figure, no table without a user
    assert any("/signin" in md.value for md in at.markdown)


def test_leader_figures_match_the_analysis(accounts: dict) -> None:
    from analysis.overview import figures

    at = _app(accounts["leader"])
    assert not at.exception
    with app_engine().connect() as c:
        expected = figures(c, "420106010")
    shown = _metrics(at)
    assert shown["网格"] == f"{expected['grids']:,}"
    assert shown["户数"] == f"{expected['households']:,}"
    assert shown["无专职网格员的网格"] == str(expected["grids_without_full_time"])
    assert shown["每名专职网格员服务户数"] == f"{expected['households_per_full_time']:,.0f}"
    captions = " ".join(c.value for c in at.caption)
    assert "户数标准：每格 300–500" in captions and "一格一员" in captions and "每 400 户 1 名" in captions
    assert "standards" not in captions and "§" not in captions  # the reference is on hover only
    # Only the leader's screen is in the navigation.
    assert any("街道总览" in t.value for t in at.title)


def test_english_from_the_language_switch(accounts: dict) -> None:
    at = _app(accounts["leader"])
    at.radio(key="lang").set_value("en").run()
    assert not at.exception
    assert any("Sub-district overview" in t.value for t in at.title)
    assert "Households" in _metrics(at)


def test_secretary_sees_only_their_community(accounts: dict) -> None:
    account = accounts["secretary"]
    at = _app(account)
    assert not at.exception
    box = at.selectbox(key="secretary_community")
    assert len(box.options) == 1 and box.value == account.communities[0]  # no other community offered
    assert any("社区概况" in t.value and account.communities[0] not in t.value for t in at.title)


def test_worker_sees_grid_buildings_and_duties(accounts: dict) -> None:
    at = _app(accounts["worker"])
    assert not at.exception
    assert any("我的网格" in t.value for t in at.title)
    md = " ".join(m.value for m in at.markdown)
    assert "采集人口、房屋、单位组织等基础信息" in md and "及时报告突发事件" in md
    assert len(at.dataframe) >= 4  # buildings, staff, neighbours, cameras, facilities


def test_admin_shows_layer_status(accounts: dict) -> None:
    at = _app(accounts["admin"])
    assert not at.exception
    assert any("数据导入" in t.value for t in at.title)
    assert at.selectbox(key="admin_layer").value == "subdistricts"


# --- pure helpers ----------------------------------------------------------------------

def test_safe_name() -> None:
    from ui.screens.admin import safe_name

    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("..\\..\\windows\\evil.shp") == "evil.shp"
    assert safe_name("坏 文件;rm -rf (2).geojson") == "坏_文件_rm_-rf_2.geojson"
    assert safe_name(".hidden.csv") == "hidden.csv"
    assert safe_name("...", 3) == "upload3"
    assert safe_name("x" * 300 + ".gpkg") == "x" * 100 + ".gpkg"
    assert safe_name("data.GeoJSON") == "data.geojson"
    # A Shapefile's parts keep one stem, so GDAL finds them together.
    assert {Path(safe_name(n)).stem for n in ("楼栋 数据.shp", "楼栋 数据.dbf", "楼栋 数据.shx")} == {"楼栋_数据"}


def test_main_file_prefers_data_files() -> None:
    from ui.screens.admin import main_file

    paths = [Path("a.dbf"), Path("a.shx"), Path("a.shp"), Path("a.prj")]
    assert main_file(paths) == Path("a.shp")
    assert main_file([Path("notes.txt")]) is None


def test_every_label_exists_in_both_languages() -> None:
    from ui.i18n import DUTIES, T
    from ui.screens import ROLE_SCREENS, ROLES

    for key, (zh, en) in T.items():
        assert zh.strip() and en.strip(), key
        fields = lambda s: sorted(f for _, f, _, _ in string.Formatter().parse(s) if f is not None)  # noqa: E731
        assert fields(zh) == fields(en), f"{key}: placeholders differ"
    used = set()
    for path in (ROOT / "ui").rglob("*.py"):
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""", path.read_text(encoding="utf-8")))
    dynamic = {f"role.{r}" for r in ROLES} | set(DUTIES)
    dynamic |= {title for screens in ROLE_SCREENS.values() for _, title, _ in screens}
    dynamic |= {f"status.{s}" for s in ("no_worker", "over", "under", "ok", "unknown")}
    dynamic |= {f"search.kind.{k}" for k in ("grid", "community", "building", "cadre")}
    dynamic |= {f"site.model_short.{m}" for m in ("lscp", "mclp", "pmedian")}
    dynamic |= {f"ruleshort.{r}" for r in ("one_grid_one_worker", "worker_load", "staffing_ratio", "max_grids_per_worker",
                                          "worker_distance", "assigned_nowhere")}
    dynamic |= {f"layer.{n}" for n in ("communities", "grids", "roads", "buildings", "grid", "neighbours", "cameras", "facilities")}
    dynamic |= {f"rule.{r}" for r in ("households_band", "residents_max", "one_grid_one_worker", "households_per_worker")}
    missing = sorted((used | dynamic) - set(T))
    assert not missing, f"labels used but not translated: {missing}"


def test_offline_map_html_has_no_outside_url(demo: dict) -> None:
    """The folium map the dashboard renders names no host: Leaflet and plugins come from /app/static."""
    from ui import map as wmap

    m = wmap.build(wmap.MapView(bounds=(114.30, 30.53, 114.33, 30.56)), "zh", basemap="none")
    html = m.get_root().render()
    assert not re.findall(r"https?://", html.replace("http://www.w3.org", "")), re.findall(r"https?://[^\s\"']+", html)[:5]
    assert "/app/static/vendor/leaflet/leaflet.js" in html
    assert "/app/static/vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js" in html
    assert "/tiles/buildings/{z}/{x}/{y}.pbf" in html


def test_gcj02_basemap_shifts_overlays(demo: dict) -> None:
    import geopandas as gpd
    from shapely.geometry import Point

    from ui import map as wmap

    pts = gpd.GeoDataFrame({"id": [1], "st": ["online"]}, geometry=[Point(114.31, 30.54)], crs=4326)
    view = wmap.MapView(bounds=(114.30, 30.53, 114.33, 30.56), small=[wmap.GeoLayer("cameras", pts)])
    plain = wmap.build(view, "zh", basemap="none").get_root().render()
    amap = wmap.build(view, "zh", basemap="amap").get_root().render()
    assert "114.31, 30.54" in plain.replace("114.31,30.54", "114.31, 30.54")
    assert "114.31, 30.54" not in amap.replace("114.31,30.54", "114.31, 30.54")
    assert "shift=gcj02" in amap and "shift=gcj02" not in plain
    assert float(pts.geometry.x.iloc[0]) == 114.31  # the data itself untouched


def test_handouts(demo: dict, tmp_path: Path) -> None:
    from analysis import overview
    from layers import buildings, cadres, cameras, facilities, grids
    from ui import handout

    with app_engine().connect() as c:
        gid = int(c.execute(text("SELECT id FROM grids WHERE valid_to IS NULL ORDER BY code LIMIT 1")).scalar_one())
        pack = handout.GridPack(grids.grid_detail(c, gid), overview.grid_figures(c, gid), grids.grid_shape(c, gid),
                                buildings.grid_buildings(c, gid, True), cameras.cameras_in(c, grid_id=gid),
                                facilities.facilities_in(c, grid_id=gid), grids.neighbours(c, gid), cadres.grid_staff(c, gid))
    png = handout.grid_png(pack, "zh", dpi=60)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert handout.grid_pdf(pack, "en")[:5] == b"%PDF-"
    pdf = handout.grid_pdf(pack, "zh")
    assert b"NotoSansCJKsc" in pdf and b"NotoSansCJKjp" not in pdf  # the simplified-Chinese face, embedded
    mapped = _pdf_unicode(pdf)  # the text layer: characters a reader can select and search
    address = str(pack.buildings["address"].dropna().iloc[0])
    assert set(address) - {" "} <= mapped, f"not selectable: {set(address) - mapped}"
    assert pack.detail["code"][:6] and set("网格编码") <= mapped  # the footer names the grid code
    import json

    gj = json.loads(handout.grid_geojson(pack, "zh"))
    assert len(gj["features"]) == 1 + len(pack.buildings) + len(pack.cameras) + len(pack.facilities)
    assert b"<kml" in handout.grid_kml(pack, "zh")
    listing = handout.building_list(pack, "zh")
    assert list(listing.index[:2]) == [1, 2] and "65岁以上老人" in listing.columns


def _pdf_unicode(pdf: bytes) -> set[str]:
    """Characters the PDF's ToUnicode maps name (what text selection and search can find)."""
    import zlib

    out: set[str] = set()
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            body = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        if b"beginbfchar" not in body and b"beginbfrange" not in body:
            continue
        targets = [t for group in re.findall(rb"\[([^\]]*)\]", body) for t in re.findall(rb"<([0-9A-Fa-f]{4,})>", group)]
        targets += re.findall(rb"<[0-9A-Fa-f]+>\s+<([0-9A-Fa-f]{4,})>\s*\n", body.split(b"beginbfchar", 1)[-1]) if b"beginbfchar" in body else []
        for hexes in targets:  # destinations only (UTF-16BE), not the glyph codes they map from
            for i in range(0, len(hexes) - 3, 4):
                out.add(chr(int(hexes[i:i + 4], 16)))
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_detail_rows_translate_codes(lang: str) -> None:
    from ui.common import detail_rows

    rows = detail_rows("buildings", {"id": 1, "use": "residential", "households": 12, "elderly_65": 3, "address": "x"}, lang)
    values = dict(zip(rows.iloc[:, 0], rows.iloc[:, 1]))
    assert values[("用途" if lang == "zh" else "Use")] == ("住宅" if lang == "zh" else "Residential")
