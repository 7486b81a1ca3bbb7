"""Language at the edge: analyses say *what* (a key and numbers), the edge says it in words.

Why: messages built as "中文 / English" f-strings deep in an analysis reach every user in
both languages and ignore the dashboard's language choice. Below the edge a message is a
``Message(key, params)``; the command line (``render(msg, "zh")``, both languages where
it always printed both) and the dashboard (``ui.i18n.t`` reads this table too) choose the
words from this one table of ``key: (Chinese, English)`` templates.

The dashboard's own labels stay in ``ui/i18n.py``; this table holds what the floors below
the screens say (errors, analysis notes and reasons), so that every floor may import it.
"""
from __future__ import annotations

from typing import Any

LANGS = ("zh", "en")

# key: (Chinese, English). Templates use str.format names; numbers are formatted here.
TEXTS: dict[str, tuple[str, str]] = {
    # --- the error family (gis/errors.py) -------------------------------------------------
    "error.generic": ("操作未完成。", "The operation could not be completed."),
    "error.bad_input": ("输入有误，未写入任何数据。", "The input was rejected; nothing was written."),
    "error.conflict": ("数据已被他人修改，请刷新后重试。", "Someone else changed this; reload and try again."),
    "error.not_allowed": ("没有权限执行此操作。", "You may not do this."),
    "error.not_found": ("找不到所指的对象。", "Nothing by that name was found."),
    "error.solver": ("模型无法求解。", "The model could not be solved."),
    "error.unavailable": ("服务暂不可用，请稍后再试。", "A service is unavailable or busy; try again later."),
    # --- grid/assign.py --------------------------------------------------------------------
    "assign.no_target_grid": ("没有当前网格 {name}", "no current grid {name}"),
    "assign.no_target_building": ("没有当前楼栋 {name}", "no current building {name}"),
    "assign.no_cadre": ("干部编号不存在：{cadre}", "no cadre {cadre}"),
    "assign.unknown_role": ("未知角色", "unknown role"),
    "assign.already_assigned": ("{cadre} 已在 {target}", "{cadre} is already assigned to {target}"),
    "assign.not_assigned": ("{cadre} 不在 {target}", "{cadre} is not assigned to {target}"),
    # --- grid/drafts.py ---------------------------------------------------------------------
    "draft.unknown": ("草案 {draft} 不存在", "no draft {draft}"),
    "draft.not_open": ("草案 {draft} 已{status}", "draft {draft} is already {status}"),
    "draft.not_adjacent": ("草案网格 {keep} 与 {absorb} 不相邻", "draft grids {keep} and {absorb} do not share a border"),
    "draft.bad_topology": ("草案拓扑有误：{faults}", "the draft does not tile its community: {faults}"),
    # --- grid/rebalance.py ------------------------------------------------------------------
    "rebalance.split": ("拆分为{parts}个网格", "split into {parts} grids along streets and building gaps"),
    "rebalance.split_small_part": ("拆分为{parts}个网格；有部分低于 {lo} 户，可改为与相邻网格调整边界",
                                   "split into {parts} grids along streets and building gaps; a part falls under {lo}: "
                                   "shifting a border with a neighbour may be better"),
    "rebalance.cannot_split": ("无法拆分：单栋楼{households}户", "cannot split: one building holds the {households} households"),
    "rebalance.merge": ("与 {grid}（{households}户）合并为 {total} 户", "merge with {grid} ({households} households) → {total}"),
    "rebalance.no_merge": ("相邻网格合并后均超过 {hi} 户", "every neighbour would exceed {hi} after a merge"),
    # --- grid/staffing_plan.py --------------------------------------------------------------
    "solver.no_solution": ("求解器未找到可行解（{status}）", "the solver found no solution ({status})"),
    "plan.fix_first_worker": ("one_grid_one_worker: 该网格原无专职网格员", "the grid had no full-time worker"),
    "plan.fix_takes_over": ("worker_load: 接替负担过重或过远的网格员", "takes over from an overloaded or distant worker"),
    "plan.fix_distance": ("worker_distance: {name} 距网格 {distance:.0f} 米", "{name} lives {distance:.0f} m away"),
    "plan.fix_load": ("worker_load: {name} 负担 {before:.0f} → {after:.0f} 户", "{name}: load {before:.0f} → {after:.0f} households"),
    "plan.more_workers": ("{community}（{code}）需增加{missing}名专职网格员", "{missing} more full-time workers needed in {community} ({code})"),
    "plan.more_workers_grids": ("{community}（{code}）需增加{missing}名专职网格员；无人可派的网格：{grids}",
                                "{missing} more full-time workers needed in {community} ({code}); grids nobody can take: {grids}"),
    "plan.ratio_short": ("按每{per}户1人，{community}（{households}户，现有{workers}名）需增加{missing}名专职网格员",
                         "{missing} more full-time workers needed in {community} ({households} households, {workers} workers, one per {per})"),
    "plan.still_over": ("{name}({cadre}) 仍负责 {load:.0f} 户，超过 {cap}", "{name}({cadre}) still carries {load:.0f} households, over {cap}"),
    # --- analysis/staffing.py (rules and gaps) ---------------------------------------------
    "staffing.rule.one_grid_one_worker": ("一格一员：每个综合网格至少1名专职网格员", "every grid has a full-time worker (standards §2)"),
    "staffing.rule.worker_load": ("每名网格员不超过{max}户", "at most {max} households per worker (standards §2 band)"),
    "staffing.rule.staffing_ratio": ("每{per}户配1名专职网格员", "one full-time worker per {per} households (standards §2)"),
    "staffing.rule.max_grids_per_worker": ("每名网格员不超过{max}个网格", "at most {max} grids per worker"),
    "staffing.rule.worker_distance": ("住址或办公点距网格不超过{distance:.0f}米", "home or office within {distance:.0f} m of the grid"),
    "staffing.rule.assigned_nowhere": ("专职网格员未分配网格", "full-time worker assigned to no grid"),
    "staffing.detail.no_worker": ("{grid}：{households}户无专职网格员", "{grid}: {households} households without a full-time worker"),
    "staffing.detail.worker_load": ("{name} 负责 {households} 户", "{name} carries {households} households"),
    "staffing.detail.max_grids_per_worker": ("{name} 负责 {grids} 个网格", "{name} holds {grids} grids"),
    "staffing.detail.worker_distance": ("{name} 距网格 {distance:.0f} 米", "{name} lives {distance:.0f} m from the grid"),
    "staffing.detail.assigned_nowhere": ("{name} 未分配网格", "{name} is assigned to no grid"),
    "staffing.detail.staffing_ratio": ("{community}需增加{missing}名专职网格员（{households}户，现有{workers}名）",
                                       "{missing} more full-time workers needed in {community} ({households} households, {workers} workers)"),
    # --- analysis/camera_views.py (camera assumptions: "code: words") ------------------------------
    "camera.dome_circle": ("dome_circle: 球机按360°整圆计", "dome (PTZType 1): full circle assumed"),
    "camera.no_direction_circle": ("no_direction_circle: 无朝向，按360°整圆计", "no direction: full circle assumed"),
    "camera.wide_circle": ("wide_circle: 水平视场角≥360°，按整圆计", "HFOV ≥ 360°: full circle"),
    "camera.hfov_default": ("hfov_default: 无水平视场角，按默认{hfov:g}°计", "no HorizontalFieldAngle: {hfov:g}° assumed (4 mm lens)"),
    "camera.no_max_distance": ("no_max_distance: 无最大可视距离，按DORI距离计", "no MaxViewDistance: DORI distance only"),
    "camera.indoor": ("indoor: 室内摄像机，只计所在建筑", "indoor (RoomType 2): sees the building it stands in only"),
    "camera.indoor_outside": ("indoor_outside: 室内摄像机不在任何建筑内，按室外计", "indoor camera in no footprint: treated as outdoor"),
    "camera.moved_out": ("moved_out: 点位在建筑{bid}内，移至墙外{m:g}米", "stands inside building {bid}: moved {m:g} m out of its wall"),
    "camera.offline": ("offline: 离线，不计入覆盖", "offline: not counted"),
    "camera.unknown": ("unknown: 状态未知，不计入覆盖", "status unknown: not counted"),
    # --- analysis/cameras.py (雪亮工程) ------------------------------------------------------
    "xueliang.covered": ("雪亮工程：重点公共区域视频监控覆盖率≥{v:.0%}（key_places_covered_min={v:g}）",
                         "key public areas ≥{v:.0%} covered (key_places_covered_min={v:g}; 发改高技〔2015〕996号, standards §5)"),
    "xueliang.serviceable": ("雪亮工程：重点公共区域摄像机完好率≥{v:.0%}（camera_serviceability_min={v:g}）",
                             "cameras at key areas ≥{v:.0%} online (camera_serviceability_min={v:g}; standards §5)"),
    # --- analysis/compliance.py -------------------------------------------------------------
    "compliance.service_space_complete": ("社区综合服务设施每百户≥{v:g}m²", "community service space ≥{v:g} m² per 100 households"),
    "compliance.service_space_new": ("新建小区社区服务用房每百户≥{v:g}m²", "service space ≥{v:g} m² per 100 households (new compounds)"),
    "compliance.community_office": ("社区办公和服务用房≥{v:g}m²", "office and service rooms ≥{v:g} m²"),
    "compliance.one_stop_centre": ("一站式综合服务站≥{v:g}m²", "one-stop service centre ≥{v:g} m²"),
    "compliance.health_station": ("设有社区卫生服务站", "has a health station"),
    "compliance.culture_room": ("设有文体活动室", "has a culture/sports room"),
    # --- analysis/siting --------------------------------------------------------------------
    "solver.time_limit": ("时间用尽，未证明最优（差距 {gap:.2%}）", "stopped at the time limit, not proven optimal (gap {gap:.2%})"),
    "solver.not_optimal": ("未证明最优（{status}）", "not proven optimal ({status})"),
    "siting.unreachable": ("{points} 个需求点（{weight:.0f}）在 {cutoff:.0f} 米内没有任何站点：列为不可达",
                           "{points} demand points ({weight:.0f}) have no site within {cutoff:.0f} m: reported as unreachable"),
    "siting.before_ignores_capacity": ("现状覆盖未计容量（仅现有站点，半径内）",
                                       "covered_before ignores capacities (existing sites only, within the radius)"),
    "siting.cutoff_capped": ("步行距离只算到 {cutoff:.0f} 米，更远的不可达",
                             "distances were computed only to {cutoff:.0f} m; pairs beyond are out of reach"),
    "siting.p_capped": ("p={p} 多于 {candidates} 个候选点：全部启用", "p={p} is more than the {candidates} candidates: all are opened"),
    "siting.p_ignored": ("集合覆盖不使用 p（它求最少的站点）", "p is ignored by set covering (it finds the fewest sites)"),
    "siting.no_households": ("没有户数：每栋住宅按 1 计", "no household counts: each residential building weighs 1"),
    "siting.unsnapped": ("{buildings} 栋楼无法接入道路网", "{buildings} buildings could not be placed on the road network"),
    "siting.step.reading": ("读取数据与步行距离", "reading data and walking distances"),
    "siting.step.solving": ("求解（{pairs:,} 对距离，时限 {time_limit:g} 秒）", "solving ({pairs:,} pairs, time limit {time_limit:g} s)"),
    "siting.step.saving": ("保存方案", "saving the scenario"),
    "siting.step.done": ("完成", "done"),
    # --- layers/codes.py (grid codes) -------------------------------------------------------
    "code.digits": ("网格编码须为14位或15位数字，实为 {code}", "grid code must be 14 or 15 digits, got {code}"),
    "code.layout": ("网格编码应为{length}位（{layout}位编码），实为{got}位", "this deployment uses the {layout}-character layout ({length} digits), got {got}"),
    "code.community": ("网格编码 {code} 前12位须为社区编码 {community}", "code {code} does not start with its community code {community}"),
    "code.zero_serial": ("网格序号不能为0：{code}", "grid serial must not be zero: {code}"),
}


class Message(str):
    """A message without its words: a key of ``TEXTS`` and the numbers or names it needs.

    It is also a ``str`` holding both languages ("中文 / English"), which is what every
    caller (the command line, logs, JSON, tables) has always received; the dashboard calls
    ``text(lang)`` (or ``render(msg, lang)``) for one language only.
    """

    key: str
    params: dict[str, Any]

    def __new__(cls, key: str, params: dict[str, Any] | None = None) -> "Message":
        params = dict(params or {})
        found = render_key(key, params, "both")
        obj = super().__new__(cls, key if found is None else found)
        obj.key, obj.params = key, params
        return obj

    def __getnewargs__(self) -> tuple:  # pickling (Streamlit's cache) rebuilds it from key and params
        return (self.key, self.params)

    def text(self, lang: str = "zh") -> str:
        return render(self, lang)

    def to_dict(self) -> dict:
        return {"key": self.key, "params": dict(self.params), "text": str(self)}


def msg(key: str, **params: Any) -> Message:
    """``Message(key, params)``, shorter at the call site."""
    return Message(key, params)


def render_key(key: str, params: dict, lang: str = "zh") -> str | None:
    """The text of ``key`` in ``lang`` ("zh", "en" or "both"), or None if the table lacks it."""
    pair = TEXTS.get(key)
    if pair is None:
        return None
    if lang == "both":
        zh, en = (p.format(**params) for p in pair)
        return zh if zh == en else f"{zh} / {en}"
    return pair[0 if lang == "zh" else 1].format(**params)


def render(message: Message | str, lang: str = "zh") -> str:
    """Words for a message in ``lang`` ("zh", "en", "both"); plain strings pass through."""
    if not isinstance(message, Message):
        return message
    found = render_key(message.key, message.params, lang)
    return found if found is not None else str.__str__(message)
