"""Standards compliance per community: community service floor area and the rooms every
community must have (standards §4), pass or fail per rule, each rule named with its
setting's value and its reference.

What counts (settings, defaults from standards §4 and the demo's definition):

- service space (社区综合服务设施): the floor area of the community's *open* facilities of
  ``service_space_categories`` — community service station, elderly day care, culture
  station. Health stations, kindergartens and schools have their own standards and are
  not community service rooms. Per 100 households of the community's buildings.
- office and service rooms (社区办公和服务用房): floor area of the open
  ``community_office_categories`` (the community service station, which houses the
  residents' committee), summed.
- one-stop service centre (一站式综合服务站): it sits in the service station; the largest
  single open facility of ``one_stop_centre_categories``.
- health station and culture room: at least one open facility of
  ``health_station_categories`` (a health centre also serves as its community's station)
  and ``culture_room_categories`` in the community.

A facility belongs to the community its point lies in (``facilities.community_code``).
A facility without a floor area counts 0 m² and is named in the detail.
"""
from __future__ import annotations

import time
from collections.abc import Iterable

import geopandas as gpd
import pandas as pd
from sqlalchemy import Connection, text

from analysis.runs import fingerprint, finish_run, lock, start_run
from gis.copy import copy_into
from gis.messages import msg
from gis.settings import get_settings

INPUTS_FP = """md5(concat_ws('#', (SELECT coalesce(sum(households), 0) FROM buildings WHERE community_code = c.code),
  (SELECT string_agg(f.id || ':' || md5(concat_ws('|', f.category, f.status, f.floor_area, f.geom::text)), ',' ORDER BY f.id)
   FROM facilities f WHERE f.community_code = c.code)))"""


def rules() -> pd.DataFrame:
    """Every rule: code, bilingual name with its value, setting, threshold, reference."""
    s = get_settings()
    rows = [
        ("service_space_complete", msg("compliance.service_space_complete", v=s.service_space_m2_per_100_households),
         "service_space_m2_per_100_households",
         s.service_space_m2_per_100_households, "完整社区建设指南 2022 (standards §4)"),
        ("service_space_new", msg("compliance.service_space_new", v=s.service_space_new_m2_per_100_households),
         "service_space_new_m2_per_100_households",
         s.service_space_new_m2_per_100_households, "seed plan, Chifeng (standards §4)"),
        ("community_office", msg("compliance.community_office", v=s.community_office_min_m2),
         "community_office_min_m2", s.community_office_min_m2, "seed plans (standards §4)"),
        ("one_stop_centre", msg("compliance.one_stop_centre", v=s.one_stop_centre_min_m2),
         "one_stop_centre_min_m2", s.one_stop_centre_min_m2, "standards §4"),
        ("health_station", msg("compliance.health_station"), "health_station_categories", 1, "seed plan (standards §4)"),
        ("culture_room", msg("compliance.culture_room"), "culture_room_categories", 1, "seed plan (standards §4)"),
    ]
    return pd.DataFrame(rows, columns=["rule", "rule_name", "setting", "threshold", "reference"])


def compute(conn: Connection, community: str | None = None, communities: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per community (all, ``community``, or the list ``communities``): the figures, a
    ``pass_<rule>`` column per rule, the rules failed. Sortable and exportable as it is
    (``frame.attrs['rules']`` names the rules)."""
    s = get_settings()
    codes = None if communities is None else sorted({str(c).strip() for c in communities})
    if community is not None:
        codes = [community] if codes is None else sorted(set(codes) & {community})
    fac = pd.read_sql(text("""
        SELECT f.id, f.name, f.category, f.status, f.floor_area, f.community_code FROM facilities f
        WHERE f.status = 'open' AND f.community_code IS NOT NULL
          AND (CAST(:cs AS text[]) IS NULL OR f.community_code = ANY(CAST(:cs AS text[])))"""), conn, params={"cs": codes})
    com = pd.read_sql(text(f"""
        SELECT c.code AS community_code, c.name AS community_name, c.subdistrict_code,
               (SELECT coalesce(sum(households), 0) FROM buildings WHERE community_code = c.code)::int AS households,
               {INPUTS_FP} AS inputs_fp
        FROM communities c WHERE CAST(:cs AS text[]) IS NULL OR c.code = ANY(CAST(:cs AS text[])) ORDER BY c.code"""),
        conn, params={"cs": codes})
    fac["community_code"] = fac["community_code"].str.strip()
    com["community_code"] = com["community_code"].str.strip()
    area = fac["floor_area"].fillna(0.0)

    def total(cats: list[str]) -> pd.Series:
        mask = fac["category"].isin(cats)
        return area[mask].groupby(fac.loc[mask, "community_code"]).sum()

    def largest(cats: list[str]) -> pd.Series:
        mask = fac["category"].isin(cats)
        return area[mask].groupby(fac.loc[mask, "community_code"]).max()

    def count(cats: list[str]) -> pd.Series:
        mask = fac["category"].isin(cats)
        return fac[mask].groupby("community_code").size()

    def unknown(cats: list[str]) -> pd.Series:
        mask = fac["category"].isin(cats) & fac["floor_area"].isna()
        return fac[mask].groupby("community_code")["name"].agg(lambda x: "、".join(map(str, x)))

    key = com["community_code"]
    out = com.drop(columns="inputs_fp").copy()
    out["service_m2"] = key.map(total(s.service_space_categories)).fillna(0.0).to_numpy()
    out["service_m2_per_100_households"] = (out["service_m2"] / out["households"].where(out["households"] > 0) * 100).round(1)
    out["office_m2"] = key.map(total(s.community_office_categories)).fillna(0.0).to_numpy()
    out["one_stop_m2"] = key.map(largest(s.one_stop_centre_categories)).fillna(0.0).to_numpy()
    out["health_stations"] = key.map(count(s.health_station_categories)).fillna(0).astype(int).to_numpy()
    out["culture_rooms"] = key.map(count(s.culture_room_categories)).fillna(0).astype(int).to_numpy()
    per100 = out["service_m2_per_100_households"]
    # A community without households has no per-household figure: the rule does not apply (None).
    out["pass_service_space_complete"] = per100.ge(s.service_space_m2_per_100_households - 1e-9).where(per100.notna())
    out["pass_service_space_new"] = per100.ge(s.service_space_new_m2_per_100_households - 1e-9).where(per100.notna())
    out["pass_community_office"] = out["office_m2"] >= s.community_office_min_m2
    out["pass_one_stop_centre"] = out["one_stop_m2"] >= s.one_stop_centre_min_m2
    out["pass_health_station"] = out["health_stations"] >= 1
    out["pass_culture_room"] = out["culture_rooms"] >= 1
    all_cats = sorted(set(s.service_space_categories) | set(s.community_office_categories) | set(s.one_stop_centre_categories))
    out["floor_area_unknown"] = key.map(unknown(all_cats)).astype(object).fillna("").to_numpy()
    pass_cols = [c for c in out.columns if c.startswith("pass_")]
    out["rules_failed"] = [[c[5:] for c in pass_cols if r[c] is False or r[c] == False] for _, r in out[pass_cols].astype(object).iterrows()]  # noqa: E712
    out["rules_passed"] = out[pass_cols].apply(lambda r: int(sum(v is True or v == True for v in r)), axis=1)  # noqa: E712
    out.attrs["rules"] = rules().to_dict("records")
    out.attrs["inputs_fp"] = dict(zip(com["community_code"], com["inputs_fp"]))
    return out


def refresh(conn: Connection, communities: Iterable[str] | None = None) -> pd.DataFrame:
    """Compute every community (or only ``communities``: the fast path after an edit, for the
    communities whose facilities or households it changed) and store the results
    (``compliance_results``) with the time and a fingerprint of the facilities and households
    used. Returns ``compute()`` of the communities computed."""
    t0 = time.perf_counter()
    lock(conn, "compliance")
    s = get_settings()
    cfg = {k: getattr(s, k) for k in ("service_space_m2_per_100_households", "service_space_new_m2_per_100_households",
                                      "community_office_min_m2", "one_stop_centre_min_m2", "service_space_categories",
                                      "community_office_categories", "one_stop_centre_categories", "health_station_categories",
                                      "culture_room_categories")}
    codes = None if communities is None else sorted({str(c).strip() for c in communities if c is not None})
    frame = compute(conn, communities=codes)
    run_id, at = start_run(conn, "compliance", "full" if codes is None else "incremental", cfg)
    if codes is None:
        conn.execute(text("DELETE FROM compliance_results"))
    else:
        conn.execute(text("DELETE FROM compliance_results WHERE community_code = ANY(CAST(:cs AS text[]))"), {"cs": codes})
    value_of = {"service_space_complete": "service_m2_per_100_households", "service_space_new": "service_m2_per_100_households",
                "community_office": "office_m2", "one_stop_centre": "one_stop_m2", "health_station": "health_stations",
                "culture_room": "culture_rooms"}
    rule_rows = rules().set_index("rule")
    rows = []
    for r in frame.itertuples(index=False):
        for rule, col in value_of.items():
            passed = getattr(r, f"pass_{rule}")
            if passed is None or pd.isna(passed):
                continue
            value = getattr(r, col)
            rows.append((r.community_code, rule, rule_rows.loc[rule, "rule_name"], rule_rows.loc[rule, "setting"],
                         float(rule_rows.loc[rule, "threshold"]), None if pd.isna(value) else float(value), bool(passed),
                         r.floor_area_unknown or None, run_id, at, frame.attrs["inputs_fp"][r.community_code]))
    copy_into(conn, "compliance_results", ["community_code", "rule", "rule_name", "setting", "threshold", "value", "passed", "detail",
                                           "run_id", "computed_at", "inputs_fp"], rows)
    finish_run(conn, run_id, time.perf_counter() - t0, {"communities": len(frame)}, {"settings_fp": fingerprint(cfg)})
    frame["computed_at"] = at
    return frame


def stored(conn: Connection) -> pd.DataFrame:
    """The stored results, long form, with ``stale`` (the community's facilities or
    households changed since)."""
    return pd.read_sql(text(f"""
        SELECT r.*, r.inputs_fp <> {INPUTS_FP} AS stale FROM compliance_results r JOIN communities c ON c.code = r.community_code
        ORDER BY r.community_code, r.rule"""), conn)


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per rule: communities passing and failing (named), for the sub-district."""
    out = []
    for r in frame.attrs.get("rules", rules().to_dict("records")):
        col = frame[f"pass_{r['rule']}"]
        failing = frame.loc[col.eq(False), "community_name"].astype(str).tolist()
        out.append({**r, "communities": int(col.notna().sum()), "passing": int(col.eq(True).sum()), "failing": len(failing),
                    "failing_communities": "、".join(failing)})
    return pd.DataFrame(out)


def stored_table(conn: Connection) -> pd.DataFrame:
    """The stored results one row per community (what a leader sorts and exports): the
    value and pass/fail of each rule, the rules failed, when computed and whether stale.
    Built from ``stored`` so the table says what was computed, not what is true now."""
    long = stored(conn)
    names = pd.read_sql(text("SELECT code AS community_code, name AS community_name FROM communities ORDER BY code"), conn)
    names["community_code"] = names["community_code"].str.strip()
    cols = ["community_code", "community_name", "computed_at", "stale", "rules_passed", "rules_failed", "detail"]
    if long.empty:
        return pd.DataFrame(columns=cols)
    long["community_code"] = long["community_code"].str.strip()
    order = [r for r in rules()["rule"] if r in set(long["rule"])]
    value = long.pivot(index="community_code", columns="rule", values="value").reindex(columns=order)
    passed = long.pivot(index="community_code", columns="rule", values="passed").reindex(columns=order)
    head = long.groupby("community_code").agg(computed_at=("computed_at", "min"), stale=("stale", "any"),
                                              detail=("detail", lambda d: "、".join(sorted({x for x in d if x}))))
    head["rules_passed"] = passed.eq(True).sum(axis=1)
    head["rules_failed"] = passed.eq(False).apply(lambda row: ",".join(row.index[row.to_numpy(dtype=bool)]), axis=1)
    out = head.join(value.add_prefix("value_")).join(passed.add_prefix("pass_")).reset_index()
    out = names.merge(out, on="community_code", how="right")
    return out[cols + [c for c in out.columns if c.startswith(("value_", "pass_"))]]


def community_layer(conn: Connection) -> gpd.GeoDataFrame:
    """Community outlines with how many stored rules each fails (map fill colour), EPSG:4326."""
    return gpd.read_postgis(text(f"""
        SELECT c.code AS id, c.name, count(r.rule) AS rules, count(r.rule) FILTER (WHERE NOT r.passed) AS failed,
               bool_or(r.inputs_fp <> {INPUTS_FP}) AS stale, c.geom
        FROM communities c JOIN compliance_results r ON r.community_code = c.code
        GROUP BY c.code, c.name, c.geom ORDER BY c.code"""), conn, geom_col="geom")
