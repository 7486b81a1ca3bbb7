"""Every label the dashboard shows, in Chinese (default) and English, in one table.

Why one table: the users are Chinese sub-district staff, so Chinese is the default and
must never fall behind; English is for visiting planners and the engineers. Names of
coded things (building uses, cadre roles, facility categories, groups) are not here:
they come from ``layers.vocab`` so a code has one name everywhere, imports included.
A test checks that every ``t("...")`` key used in ``ui/`` exists here in both
languages.
"""
from __future__ import annotations

LANGS = ("zh", "en")
LANG_NAMES = {"zh": "中文", "en": "English"}

T: dict[str, tuple[str, str]] = {
    # --- app shell -------------------------------------------------------------------
    "app.title": ("网格化管理平台", "Grid management platform"),
    "app.choose_role": ("请选择您的角色", "Choose your role"),
    "app.role_note": ("正式登录将在后续版本提供；现在请选择角色进入对应页面。",
                      "Proper sign-in comes later; for now, choose a role to open its screens."),
    "app.language": ("语言", "Language"),
    "app.switch_role": ("切换角色", "Switch role"),
    "app.current_role": ("当前角色", "Current role"),
    "app.subdistrict": ("街道", "Sub-district"),
    "app.no_data": ("数据库中还没有街道数据：请管理员导入数据，或运行 `wangge demo load` 载入演示街道。",
                    "The database holds no sub-district yet: an administrator imports data, or run `wangge demo load` for the demo."),
    "app.enter": ("进入", "Open"),
    # --- roles -----------------------------------------------------------------------
    "role.leader": ("街道领导", "Street leader"),
    "role.secretary": ("社区书记", "Community secretary"),
    "role.worker": ("网格员", "Grid worker"),
    "role.planner": ("规划人员", "Planner"),
    "role.admin": ("管理员", "Administrator"),
    "role.leader.desc": ("全街道总览：关键指标、各社区对比、地图", "The whole sub-district: key figures, communities side by side, the map"),
    "role.secretary.desc": ("本社区的网格、人员配备与地图", "Your community's grids, staffing and map"),
    "role.worker.desc": ("我的网格：楼栋、户数、重点人群、职责、可打印地图", "My grid: buildings, households, groups, duties, a printable map"),
    "role.planner.desc": ("配套设施与网格地图（选址、覆盖分析后续提供）", "Facilities and grids on the map (siting and coverage come later)"),
    "role.admin.desc": ("导入数据文件、查看图层状态", "Import data files, see the state of each layer"),
    # --- pages -----------------------------------------------------------------------
    "page.overview": ("街道总览", "Sub-district overview"),
    "page.community": ("社区概况", "Community"),
    "page.my_grid": ("我的网格", "My grid"),
    "page.planning": ("规划总览", "Planning"),
    "page.import": ("数据导入", "Import data"),
    "page.status": ("图层状态", "Layer status"),
    # --- figures ---------------------------------------------------------------------
    "fig.communities": ("社区", "Communities"),
    "fig.grids": ("网格", "Grids"),
    "fig.buildings": ("楼栋", "Buildings"),
    "fig.households": ("户数", "Households"),
    "fig.residents": ("实有人口", "Residents"),
    "fig.full_time_workers": ("专职网格员", "Full-time grid workers"),
    "fig.grids_without_full_time": ("无专职网格员的网格", "Grids without a full-time worker"),
    "fig.households_per_full_time": ("每名专职网格员服务户数", "Households per full-time worker"),
    "fig.grids_over_band": ("户数超标网格", "Grids over the household band"),
    "fig.grids_under_band": ("户数不足网格", "Grids under the household band"),
    "fig.grids_over_residents": ("人口超上限网格", "Grids over the resident ceiling"),
    "fig.coverage": ("覆盖率", "Coverage"),
    "fig.coverage_pending": ("覆盖率（视频、服务设施、巡查）：尚未分析，覆盖分析完成后在此显示。",
                             "Coverage (cameras, services, patrol): not analysed yet; shown here once the coverage analyses have run."),
    "fig.none": ("—", "—"),
    "cov.camera_roads": ("道路视频覆盖率", "Streets seen by cameras"),
    "cov.camera_key_places": ("重点场所视频覆盖率（雪亮工程 100%）", "Key places seen by cameras (雪亮工程: 100%)"),
    "cov.service_households": ("住户步行可达服务设施比例（生活圈半径，standards §4）", "Households within walking reach of services (life-circle radii, standards §4)"),
    "cov.compliance": ("社区达标项比例", "Community standards checks passed"),
    "fig.key_figures": ("关键指标", "Key figures"),
    "fig.rules": ("判定规则", "Rules applied"),
    # --- rules (each figure judged against a rule names it) ---------------------------
    "rule.households_band": ("户数标准 {0}–{1} 户/网格（standards §2，综合网格）",
                             "Households per grid {0}–{1} (standards §2, comprehensive grids)"),
    "rule.residents_max": ("人口上限 {0} 人/网格（standards §2）", "At most {0} residents per grid (standards §2)"),
    "rule.one_grid_one_worker": ("一格一员：每格至少 {0} 名专职网格员（standards §2）",
                                 "One grid, one worker: at least {0} full-time worker per grid (standards §2)"),
    "rule.households_per_worker": ("社区工作者配备 1 人/{0} 户（standards §2）", "One community worker per {0} households (standards §2)"),
    "rule.over": ("高于标准", "above the rule"),
    "rule.within": ("符合标准", "within the rule"),
    # --- grid verdicts ---------------------------------------------------------------
    "status.no_worker": ("无专职网格员", "No full-time worker"),
    "status.over": ("户数/人口超标", "Over the household band or resident ceiling"),
    "status.under": ("户数不足", "Under the household band"),
    "status.ok": ("符合标准", "Within the rules"),
    # --- table columns ---------------------------------------------------------------
    "col.code": ("编码", "Code"),
    "col.name": ("名称", "Name"),
    "col.grid_type": ("网格类型", "Grid type"),
    "col.status": ("状态", "Status"),
    "col.grids": ("网格", "Grids"),
    "col.buildings": ("楼栋", "Buildings"),
    "col.households": ("户数", "Households"),
    "col.residents": ("人口", "Residents"),
    "col.full_time": ("专职网格员", "Full-time workers"),
    "col.full_time_workers": ("专职网格员", "Full-time workers"),
    "col.grids_without_full_time": ("无专职网格员网格", "Grids without full-time worker"),
    "col.households_per_full_time": ("户/专职网格员", "Households per full-time worker"),
    "col.grids_over_band": ("超标网格", "Grids over band"),
    "col.grids_under_band": ("不足网格", "Grids under band"),
    "col.address": ("地址", "Address"),
    "col.use": ("用途", "Use"),
    "col.floors": ("层数", "Floors"),
    "col.role": ("岗位", "Role"),
    "col.phone": ("电话", "Phone"),
    "col.category": ("类别", "Category"),
    "col.count": ("数量", "Count"),
    "col.device_id": ("设备编码", "Device ID"),
    "col.file": ("文件", "File"),
    "col.row": ("行", "Row"),
    "col.id": ("ID", "ID"),
    "col.column": ("字段", "Field"),
    "col.problem": ("问题", "Problem"),
    "col.layer": ("图层", "Layer"),
    "col.rows": ("记录数", "Rows"),
    "col.last_import": ("最近导入", "Last import"),
    "col.community": ("社区", "Community"),
    "col.grid": ("网格", "Grid"),
    # --- map -------------------------------------------------------------------------
    "map.title": ("地图", "Map"),
    "map.basemap": ("底图", "Basemap"),
    "map.click_hint": ("点击地图上的网格、楼栋、摄像头或设施，在此查看详情。", "Click a grid, building, camera or facility on the map to see it here."),
    "map.selected": ("所选要素", "Selected feature"),
    "map.not_found": ("未找到该要素（可能已被更新）。", "That feature is no longer there (it may have been updated)."),
    "layer.communities": ("社区边界", "Community boundaries"),
    "layer.grids": ("网格", "Grids"),
    "layer.roads": ("道路", "Roads"),
    "layer.buildings": ("楼栋", "Buildings"),
    "layer.grid": ("本网格", "This grid"),
    "layer.neighbours": ("相邻网格", "Neighbouring grids"),
    "layer.cameras": ("摄像头", "Cameras"),
    "layer.facilities": ("配套设施", "Facilities"),
    "legend.grids": ("网格状态", "Grid status"),
    "legend.buildings": ("楼栋（有住户）", "Buildings (with households)"),
    "legend.buildings_empty": ("楼栋（无住户）", "Buildings (no households)"),
    "legend.buildings_zoom": ("楼栋自 {z} 级显示", "Buildings show from zoom {z}"),
    "legend.camera_online": ("摄像头（在线）", "Camera (online)"),
    "legend.camera_offline": ("摄像头（离线/未知）", "Camera (offline/unknown)"),
    # --- street leader ----------------------------------------------------------------
    "leader.communities": ("各社区情况", "Communities"),
    "leader.grids_attention": ("需要关注的网格", "Grids needing attention"),
    # --- community secretary ------------------------------------------------------------
    "secretary.community": ("选择社区", "Choose a community"),
    "secretary.grids": ("本社区网格", "Grids of this community"),
    "secretary.next": ("网格调整与人员分配页面将在后续版本提供。", "Grid adjustment and staffing screens come later."),
    # --- grid worker -----------------------------------------------------------------
    "worker.community": ("社区", "Community"),
    "worker.grid": ("选择网格", "Choose a grid"),
    "worker.signin_note": ("正式登录后将自动打开您负责的网格。", "Once sign-in exists, your own grid opens by itself."),
    "worker.buildings": ("楼栋清单", "Buildings"),
    "worker.groups": ("重点人群（人数）", "Groups (counts)"),
    "worker.duties": ("网格员职责清单（standards §2）", "Grid-worker duties (standards §2)"),
    "worker.duties_note": ("职责清单以外的任务不得派给网格员。", "Tasks not on this list may not be pushed onto grid workers."),
    "worker.staff": ("网格人员", "People of this grid"),
    "worker.no_staff": ("本网格暂无在岗人员。", "Nobody is assigned to this grid."),
    "worker.neighbours": ("相邻网格", "Neighbouring grids"),
    "worker.cameras": ("摄像头", "Cameras"),
    "worker.facilities": ("配套设施", "Facilities"),
    "worker.downloads": ("下载（打印 / 手机）", "Downloads (print / phone)"),
    "worker.png": ("地图与清单 PNG", "Map and list (PNG)"),
    "worker.pdf": ("地图与清单 PDF", "Map and list (PDF)"),
    "worker.geojson": ("GeoJSON（手机地图）", "GeoJSON (phone map)"),
    "worker.kml": ("KML（手机地图）", "KML (phone map)"),
    "worker.none": ("还没有网格。", "There are no grids yet."),
    "print.title": ("{name}（{code}）网格工作图", "Grid work map: {name} ({code})"),
    "print.generated": ("生成时间 {when}", "Generated {when}"),
    "print.list": ("楼栋清单", "Buildings"),
    "print.more": ("……另有 {n} 栋，见 PDF", "... {n} more, see the PDF"),
    # --- duties (standards §2) ----------------------------------------------------------
    "duty.collect": ("采集人口、房屋、单位组织等基础信息（一标三实）", "Collect population, housing and organisation base data (一标三实)"),
    "duty.screen": ("排查矛盾纠纷和安全隐患（消防、交通、环境卫生、食品安全）", "Screen disputes and safety hazards (fire, traffic, sanitation, food)"),
    "duty.patrol": ("日常巡查", "Patrol"),
    "duty.report": ("上报违法建设、乱倒垃圾、乱停车等问题", "Report violations (illegal building, dumping, parking)"),
    "duty.serve": ("服务低保、残疾、独居老人等困难群体", "Serve vulnerable residents (低保, disabled, elderly living alone)"),
    "duty.emergency": ("及时报告突发事件", "Report emergencies"),
    # --- planner ----------------------------------------------------------------------
    "planner.facilities": ("配套设施（按类别）", "Facilities by category"),
    "planner.next": ("设施选址、生活圈覆盖分析页面将在后续版本提供。", "Siting and life-circle coverage screens come later."),
    # --- administrator ----------------------------------------------------------------
    "admin.layer": ("目标图层", "Layer"),
    "admin.files": ("选择文件（GeoJSON、GeoPackage、Shapefile 全套、CSV、Excel）",
                    "Choose files (GeoJSON, GeoPackage, a complete Shapefile set, CSV, Excel)"),
    "admin.files_help": ("Shapefile 请同时选择 .shp、.shx、.dbf、.prj（以及 .cpg）。", "For a Shapefile choose .shp, .shx, .dbf, .prj (and .cpg) together."),
    "admin.crs": ("坐标系（文件未声明时填写，如 EPSG:4490、gcj02、bd09）", "CRS (when the file declares none: EPSG:4490, gcj02, bd09 …)"),
    "admin.source_layer": ("GeoPackage 内图层名（可选）", "Layer inside a GeoPackage (optional)"),
    "admin.skip_invalid": ("跳过无效行（只导入有效行，列出其余）", "Skip invalid rows (import the valid ones, list the rest)"),
    "admin.repair": ("修复自相交多边形", "Repair self-intersecting polygons"),
    "admin.replace": ("用此文件替换该图层", "This file replaces the layer"),
    "admin.import": ("导入", "Import"),
    "admin.no_file": ("请先选择文件。", "Choose a file first."),
    "admin.no_main": ("没有可识别的数据文件（.geojson、.gpkg、.shp、.csv、.xlsx、.zip）。", "No data file among those chosen (.geojson, .gpkg, .shp, .csv, .xlsx, .zip)."),
    "admin.ok": ("导入成功：{rows} 条记录写入「{layer}」图层。", "Imported: {rows} rows into layer {layer}."),
    "admin.failed": ("导入失败，未写入任何数据（{n} 个问题）：", "Import failed, nothing was written ({n} problems):"),
    "admin.error": ("无法导入：{err}", "Could not import: {err}"),
    "admin.notes": ("说明", "Notes"),
    "admin.skipped": ("已跳过的行", "Rows skipped"),
    "admin.repaired": ("已修复的要素", "Features repaired"),
    "admin.status": ("图层状态", "Layer status"),
    # --- feature details ------------------------------------------------------------------
    "detail.grid": ("网格", "Grid"),
    "detail.building": ("楼栋", "Building"),
    "detail.community": ("社区", "Community"),
    "detail.camera": ("摄像头", "Camera"),
    "detail.facility": ("配套设施", "Facility"),
    "detail.status": ("状态", "Status"),
    "detail.ptz": ("摄像机类型", "Camera type"),
    "detail.direction": ("朝向", "Direction"),
    "detail.floor_area": ("建筑面积（m²）", "Floor area (m²)"),
    "detail.capacity": ("容量", "Capacity"),
}


def t(key: str, lang: str = "zh", *args: object, **kwargs: object) -> str:
    """The label for ``key`` in ``lang`` (Chinese when the language is unknown), formatted."""
    pair = T.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(*args, **kwargs) if (args or kwargs) else text


DUTIES = ("duty.collect", "duty.screen", "duty.patrol", "duty.report", "duty.serve", "duty.emergency")
