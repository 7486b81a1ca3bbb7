"""A register of generated, clearly fictitious persons for the demo (and the tests).

Names are "<surname>某<number>" (the way Chinese documents anonymise a person), ID numbers
carry the demo district's region code, a birth date and a valid GB 11643 check digit with a
serial in the 900s; phones are in the 170-0000 block. The register reproduces, building by
building, the group counts the demo already holds for one community, so that the counts
derived from it (layers/people.derive_building_groups) are the same numbers the screens showed
before; a few people have moved away or died, and past visits make some visits overdue.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from gis.inert import inert_frame
from layers.people import BEIJING, check_digit

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"


def fake_id(rng: random.Random, district: str, born: date, male: bool) -> str:
    serial = 900 + rng.randrange(50) * 2 + (1 if male else 0)  # odd: male
    first17 = f"{district}{born:%Y%m%d}{serial:03d}"
    return first17 + check_digit(first17)


def register_frame(conn: Connection, community: str | None = None, seed: int = 17,
                   today: date | None = None) -> pd.DataFrame:
    """Register rows (Chinese headers, as an office's Excel would have them) for the buildings of
    ``community`` (default: the first community), reproducing its per-building group counts."""
    rng = random.Random(seed)
    today = today or datetime.now(BEIJING).date()
    if community is None:
        community = conn.execute(text("SELECT code FROM communities ORDER BY code LIMIT 1")).scalar_one()
    rows = conn.execute(text("""
        SELECT b.source_id, b.district_code, b.households, coalesce(g.elderly_65, 0) e65, coalesce(g.elderly_alone, 0) alone,
               coalesce(g.disabled, 0) dis, coalesce(g.dibao, 0) dibao, coalesce(g.floating, 0) fl, coalesce(g.released, 0) rel,
               coalesce(g.corrections, 0) cor, coalesce(g.at_risk_youth, 0) youth, coalesce(g.party_members, 0) party,
               coalesce(g.volunteers, 0) vol
          FROM buildings b LEFT JOIN building_groups g ON g.building_id = b.id AND g.district_code = b.district_code
         WHERE b.community_code = :c ORDER BY b.id"""), {"c": community}).all()
    out: list[dict] = []
    n = 0
    used: set[str] = set()

    def person(b, age_lo: int, age_hi: int, groups: list[str], **extra) -> dict:
        nonlocal n
        n += 1
        male = rng.random() < 0.5
        while True:
            born = today - timedelta(days=rng.randint(age_lo * 366 + 30, age_hi * 365))
            idn = fake_id(rng, b.district_code, born, male)
            if idn not in used:
                used.add(idn)
                break
        row = {"姓名": f"{rng.choice(SURNAMES)}某{n:04d}", "身份证号": idn,
               "性别": "男" if male else "女", "联系电话": f"1700000{rng.randrange(10000):04d}", "楼栋编号": b.source_id,
               "房号": f"{rng.randint(1, 6)}-{rng.randint(1, 20):02d}0{rng.randint(1, 4)}", "户籍地址": "",
               "人户分离": "否", "流动人口": "否", "来本地日期": "", "人员状态": "在住", "状态日期": "",
               "人员类别": "、".join(groups), "纳入日期": (today - timedelta(days=rng.randint(200, 2000))).isoformat(),
               "风险等级": "", "监护人": "", "释放日期": "", "帮教情况": "", "管理等级": "", "矫正类别": "", "原罪名": ""}
        row.update(extra)
        return row

    for b in rows:
        for k in range(max(b.e65, b.alone)):
            out.append(person(b, 66, 92, ["独居老人"] if k < b.alone else []))
        out += [person(b, 20, 60, ["残疾人"]) for _ in range(b.dis)]
        out += [person(b, 25, 64, ["低保户"]) for _ in range(b.dibao)]
        out += [person(b, 18, 50, [], **{"流动人口": "是", "人户分离": "是", "户籍地址": "湖北省孝感市（虚构）",
                                         "来本地日期": (today - timedelta(days=rng.randint(30, 900))).isoformat()})
                for _ in range(b.fl)]
        out += [person(b, 25, 60, ["刑满释放人员"], **{"释放日期": (today - timedelta(days=rng.randint(60, 1500))).isoformat(),
                                                    "帮教情况": rng.choice(["已落实帮教", "帮教中"]), "原罪名": "盗窃（虚构）"})
                for _ in range(b.rel)]
        out += [person(b, 20, 55, ["社区矫正对象"], **{"管理等级": rng.choice(["严管", "普管", "宽管"]), "矫正类别": "缓刑"})
                for _ in range(b.cor)]
        out += [person(b, 14, 17, ["重点青少年"]) for _ in range(b.youth)]
        out += [person(b, 22, 64, ["党员"]) for _ in range(b.party)]
        out += [person(b, 18, 64, ["志愿者"]) for _ in range(b.vol)]
        if b.households >= 30 and rng.random() < 0.35:  # severe mental disorders: about one in 80 households
            out.append(person(b, 25, 60, ["严重精神障碍患者"], **{"风险等级": str(rng.choice([0, 0, 1, 1, 2, 3])),
                                                           "监护人": f"{rng.choice(SURNAMES)}某（监护人）"}))
    # some have moved away or died long ago: what the retention rule anonymises
    for row in rng.sample(out, k=min(6, len(out))):
        row["人员状态"] = rng.choice(["迁出", "死亡"])
        row["状态日期"] = (today - timedelta(days=rng.randint(400, 900))).isoformat()
    return pd.DataFrame(out)


def load(conn: Connection, directory: Path, community: str | None = None, today: date | None = None) -> int:
    """Generate, write and import the demo register (through the ordinary importer), then past
    visits: most people visited within their interval, some overdue. Returns persons imported."""
    from layers.people import import_register

    frame = register_frame(conn, community, today=today)
    if frame.empty:
        return 0
    path = directory / "演示人员登记表.csv"
    inert_frame(frame).to_csv(path, index=False, encoding="utf-8-sig")
    report = import_register(path, conn=conn)
    rng = random.Random(71)
    # past visits: within the interval for ~85%, overdue for the rest (system scope: the loader)
    people = conn.execute(text("""SELECT p.id, s.interval_days, b.geom FROM persons p JOIN person_schedule s ON s.person_id = p.id
                                    LEFT JOIN buildings b ON b.id = p.building_id
                                   WHERE s.interval_days IS NOT NULL ORDER BY p.id""")).all()
    now = datetime.now(BEIJING)
    for pid, days, _ in people:
        back = rng.uniform(0.1, 0.95) * days if rng.random() < 0.85 else rng.uniform(1.05, 2.0) * days
        at = now - timedelta(days=back)
        conn.execute(text("""INSERT INTO visits (person_id, visited_at, visitor, outcome, note, geom, distance_m, far)
                             SELECT :p, :at, 'demo', 'met', '上门走访，情况稳定（演示）',
                                    ST_PointOnSurface(b.geom), 0, false FROM persons x JOIN buildings b ON b.id = x.building_id
                              WHERE x.id = :p"""), {"p": pid, "at": at})
        conn.execute(text("UPDATE persons SET last_visit_at = :at, registered_at = least(registered_at, :at) WHERE id = :p"),
                     {"p": pid, "at": at})
    return report.persons
