"""Person registers and their protections (issue 17): ID validation, storage a dump cannot read,
all-or-nothing import, row-level security forced on every way in, the access log complete and
append-only, reveal with a reason, watermarked exports, anonymisation."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pandas as pd
import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from gis import scope as scope_mod
from gis.db import app_engine, owner_engine
from gis.problems import ImportFailed
from gis.scope import SYSTEM, Scope, use_scope
from layers import people

ID_OK = "11010519491231002X"  # the textbook GB 11643 example


# --- validation and masking ----------------------------------------------------------------------

def test_gb11643_check_digit_accepts_valid_and_names_what_is_wrong():
    assert people.validate_id(" 11010519491231002x ") == ID_OK
    with pytest.raises(ValueError, match="校验位"):
        people.validate_id("110105194912310021")
    with pytest.raises(ValueError, match="18"):
        people.validate_id("1101051949123100")
    with pytest.raises(ValueError, match="出生日期"):
        people.validate_id("110105194913310020")
    assert people.mask_id(ID_OK) == "110105********002X"
    assert people.mask_phone("13912345678") == "139****5678"
    assert people.id_birth_sex(ID_OK) == (pd.Timestamp("1949-12-31").date(), "F")


def test_encryption_round_trip_and_keyed_hash_depend_on_the_key(monkeypatch):
    blob = people.encrypt(ID_OK)
    assert ID_OK.encode() not in blob and people.decrypt(blob) == ID_OK
    assert people.encrypt(ID_OK) != blob  # a fresh nonce each time: equal IDs do not look equal
    h = people.keyed_hash(ID_OK)
    assert re.fullmatch(r"[0-9a-f]{64}", h) and h != __import__("hashlib").sha256(ID_OK.encode()).hexdigest()
    from gis.settings import get_settings

    monkeypatch.setattr(get_settings(), "people_key", "another-key-" + "x" * 40)
    assert people.keyed_hash(ID_OK) != h
    with pytest.raises(Exception):
        people.decrypt(blob)


# --- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def area(demo) -> dict:
    """Grid A and grid A2 (register grids of the demo's first community) and grid B (another
    community's grid, given one person here), with a person in each."""
    with use_scope(SYSTEM), people.owner_transaction() as c:
        a, a2 = [r[0] for r in c.execute(text("""
            SELECT grid_id FROM persons WHERE grid_id IS NOT NULL GROUP BY grid_id ORDER BY grid_id LIMIT 2"""))]
        com_a = c.execute(text("SELECT community_code FROM grids WHERE id = :g"), {"g": a}).scalar_one().strip()
        b, com_b, bld_b = c.execute(text("""
            SELECT g.id, g.community_code, b.source_id FROM grids g JOIN buildings b ON b.grid_id = g.id
             WHERE g.valid_to IS NULL AND g.community_code <> :c ORDER BY g.code, b.id LIMIT 1"""), {"c": com_a}).one()
        c.execute(text("DELETE FROM persons WHERE grid_id = :b"), {"b": b})
    path = _register([{"姓名": "测试某B", "身份证号": people.validate_id("420106198001010011"[:17] + people.check_digit("42010619800101001")),
                       "楼栋编号": bld_b, "联系电话": "17000001234", "人员类别": "刑满释放人员", "释放日期": "2025-01-01"}])
    with use_scope(SYSTEM):
        people.import_register(path)
    with use_scope(SYSTEM), people.owner_transaction() as c:
        pa = c.execute(text("SELECT min(id) FROM persons WHERE grid_id = :g AND status = 'resident'"), {"g": a}).scalar_one()
        pb = c.execute(text("SELECT min(id) FROM persons WHERE grid_id = :g"), {"g": b}).scalar_one()
    return {"a": int(a), "a2": int(a2), "b": int(b), "com_a": com_a, "com_b": com_b.strip(), "pa": int(pa), "pb": int(pb)}


_N = [0]


def _register(rows: list[dict], suffix: str = ".csv"):
    import tempfile
    from pathlib import Path

    _N[0] += 1
    path = Path(tempfile.mkdtemp(prefix="wangge_people_test_")) / f"登记{_N[0]}{suffix}"
    frame = pd.DataFrame(rows)
    if suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def worker(area, grids=("a",)) -> Scope:
    return Scope(user="t_people_worker", role="worker", communities=(area["com_a"],), grids=tuple(area[g] for g in grids))


def secretary(area) -> Scope:
    return Scope(user="t_people_secretary", role="secretary", communities=(area["com_a"],))


@pytest.fixture
def sysconn() -> Iterator[Connection]:
    """An owner connection under the system scope, rolled back afterwards."""
    with owner_engine().connect() as c:
        tx = c.begin()
        scope_mod.apply(c.connection.dbapi_connection, SYSTEM)
        try:
            yield c
        finally:
            tx.rollback()


def log_count(**where) -> int:
    cond = " AND ".join(f"{k} = :{k}" for k in where) or "TRUE"
    with use_scope(SYSTEM), people.owner_transaction() as c:
        return int(c.execute(text(f"SELECT count(*) FROM person_access_log WHERE {cond}"), where).scalar_one())


def app(scope: Scope, sql: str, **params) -> list:
    with use_scope(scope), app_engine().begin() as c:
        return c.execute(text(sql), params).all()


# --- import ------------------------------------------------------------------------------------------

def test_import_is_all_or_nothing_and_names_every_problem(area, sysconn):
    bld = sysconn.execute(text("SELECT source_id FROM buildings WHERE grid_id = :g LIMIT 1"), {"g": area["a"]}).scalar_one()
    existing = people.reveal(sysconn, area["pa"], "测试：找已登记的身份证号", channel="test")["id_number"]
    good = "42010619900101" + "123"
    good += people.check_digit(good)
    rows = [
        {"姓名": "测试某甲", "身份证号": good, "楼栋编号": bld},
        {"姓名": "测试某乙", "身份证号": "110105194912310021", "楼栋编号": bld},  # wrong check digit
        {"姓名": "测试某丙", "身份证号": good, "楼栋编号": bld},  # duplicate of row 2
        {"姓名": "测试某丁", "身份证号": ID_OK, "楼栋编号": "NO-SUCH"},
        {"姓名": "测试某戊", "身份证号": existing, "楼栋编号": bld},  # already registered
        {"姓名": "测试某己", "身份证号": "110101199003074514", "楼栋编号": bld, "人员类别": "严重精神障碍患者"},  # no risk grade
    ]
    before = sysconn.execute(text("SELECT count(*) FROM persons")).scalar_one()
    with pytest.raises(ImportFailed) as err:
        people.import_register(_register(rows, ".xlsx"), conn=sysconn)
    problems = {(p.row, p.column or "") : p.problem for p in err.value.problems}
    text_all = str(err.value)
    assert (3, "身份证号") in problems and "校验位" in problems[(3, "身份证号")]
    assert "第2行" in problems[(4, "身份证号")]  # duplicate names the other row
    assert "找不到楼栋" in problems[(5, "楼栋编号")]
    assert "已登记" in problems[(6, "身份证号")]
    assert any(r == 7 and "风险等级" in msg for (r, _), msg in problems.items())
    assert existing not in text_all and people.mask_id(existing) in text_all  # problems name IDs masked only
    assert sysconn.execute(text("SELECT count(*) FROM persons")).scalar_one() == before


def test_import_stores_no_readable_id_and_derives_building_counts(area, sysconn):
    bid, bld = sysconn.execute(text("SELECT id, source_id FROM buildings WHERE grid_id = :g ORDER BY id LIMIT 1"),
                               {"g": area["a"]}).one()
    sysconn.execute(text("UPDATE building_groups SET disabled = 99 WHERE building_id = :b"), {"b": bid})
    idn = "42010619500303" + "555"
    idn += people.check_digit(idn)
    rep = people.import_register(_register([{"姓名": "测试某庚", "身份证号": idn, "楼栋编号": bld, "联系电话": "139 1234 5678",
                                             "人员类别": "残疾人、独居老人", "流动人口": "否"}]), conn=sysconn)
    assert rep.persons == 1 and rep.memberships == 2 and rep.buildings == 1
    n_dis = sysconn.execute(text("""SELECT count(*) FROM persons p JOIN person_groups g ON g.person_id = p.id
                                     WHERE p.building_id = :b AND g.group_code = 'disabled' AND p.status = 'resident'"""),
                            {"b": bid}).scalar_one()
    assert sysconn.execute(text("SELECT disabled FROM building_groups WHERE building_id = :b"), {"b": bid}).scalar_one() == n_dis
    # what a dump holds: no ID number or phone in clear anywhere in the row
    dump = " ".join(str(r[0]) for r in sysconn.execute(text("""
        SELECT row_to_json(p)::text FROM persons p""")))
    assert idn not in dump and "13912345678" not in dump and people.mask_id(idn) in dump
    assert not re.search(r"\b\d{17}[\dX]\b", dump)


# --- row-level security: a worker of grid A gets no person of grid B, by any query ----------------------

@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM persons", "SELECT count(*) FROM person_groups", "SELECT count(*) FROM visits",
    "SELECT count(*) FROM person_schedule", "SELECT count(*) FROM person_access_log",
    "UPDATE persons SET name = 'x'", "DELETE FROM person_access_log", "INSERT INTO person_access_log "
    "(username, role, person_id, action, channel) VALUES ('x', 'worker', 1, 'list', 'x')",
    "SELECT people_log(ARRAY[1::bigint], 'list', NULL, 'x')",
])
def test_the_app_role_has_no_direct_way_in(area, sql):
    with pytest.raises((ProgrammingError, DBAPIError), match="permission denied"):
        app(worker(area), sql)


def test_worker_of_grid_a_gets_no_person_of_grid_b_by_any_function(area):
    w = worker(area)
    rows = app(w, "SELECT id, grid_id FROM people_list()")
    assert rows and {r.grid_id for r in rows} == {area["a"]}
    assert area["pb"] not in {r.id for r in rows}
    assert app(w, "SELECT * FROM people_list(:g)", g=area["b"]) == []
    assert app(w, "SELECT * FROM people_list(NULL, :c)", c=area["com_b"]) == []
    assert app(w, "SELECT * FROM people_list(NULL, NULL, NULL, 'x', NULL, :p)", p=area["pb"]) == []
    assert app(w, "SELECT * FROM people_detail(:p)", p=area["pb"]) == []
    assert app(w, "SELECT * FROM people_reveal(:p, '核实身份')", p=area["pb"]) == []
    assert {r.code for r in app(w, "SELECT * FROM people_counts('grid')")} <= {
        r[0] for r in app(SYSTEM, "SELECT code FROM grids WHERE id = :g", g=area["a"])}
    with pytest.raises(DBAPIError, match="no such person"):
        app(w, "SELECT * FROM visit_record(:p, now(), 'met', NULL, NULL, NULL, 200)", p=area["pb"])
    with pytest.raises(DBAPIError, match="may not export"):
        app(w, "SELECT * FROM people_export(NULL, '导出核对')")
    # the aggregate switch set by the app itself widens nothing (only inside the count functions)
    with use_scope(w), app_engine().begin() as c:
        c.execute(text("SELECT set_config('wangge.people_aggregate', 'on', true)"))
        assert {r.grid_id for r in c.execute(text("SELECT grid_id FROM people_list()"))} == {area["a"]}
        assert c.execute(text("SELECT count(*) FROM people_list(:g)"), {"g": area["b"]}).scalar_one() == 0
    with use_scope(w), app_engine().begin() as c:
        c.execute(text("SET wangge.people_aggregate = 'on'"))
        assert c.execute(text("SELECT count(*) FROM people_detail(:p)"), {"p": area["pb"]}).scalar_one() == 0


def test_no_scope_gives_nothing_even_to_the_owner(area):
    with owner_engine().begin() as c:  # no scope set: the forced policies give no rows
        c.execute(text("SELECT set_config('wangge.scope', '', true)"))
        assert c.execute(text("SELECT count(*) FROM persons")).scalar_one() == 0
    assert app(None, "SELECT count(*) FROM people_list()")[0][0] == 0


def test_secretary_sees_their_community_leader_and_planner_counts_only(area):
    s = secretary(area)
    coms = {r.community_code.strip() for r in app(s, "SELECT community_code FROM people_list()")}
    assert coms == {area["com_a"]}
    for role in ("leader", "planner", "admin"):
        sc = Scope(user=f"t_people_{role}", role=role)
        assert app(sc, "SELECT count(*) FROM people_list()")[0][0] == 0
        assert app(sc, "SELECT count(*) FROM people_reveal(:p, '核实身份')", p=area["pa"])[0][0] == 0
        counts = app(sc, "SELECT code, persons, overdue FROM people_counts('community')")
        assert {r.code for r in counts} >= {area["com_a"], area["com_b"]} and sum(r.persons for r in counts) > 0


# --- the access log: complete, append-only, answers "who looked at this person" -------------------------

def test_every_read_is_logged_with_who_what_and_why(area):
    w, s = worker(area, ("a", "a2")), secretary(area)
    before = {a: log_count(username=w.user, action=a) for a in ("list", "view", "reveal", "visit")}
    with use_scope(w), app_engine().begin() as c:
        listed = people.list_people(c, channel="test")
        due = people.list_people(c, due_by=pd.Timestamp.today().date(), channel="test")
        one = people.person(c, area["pa"], channel="test", reason="上门前查看")
        shown = people.reveal(c, area["pa"], "核实身份证件", channel="test")
        c.execute(text("SELECT * FROM visit_record(:p, now(), 'met', '测试', NULL, NULL, 200, 'test')"), {"p": area["pa"]})
    assert len(listed) > 0 and one is not None
    assert log_count(username=w.user, action="list") - before["list"] == len(listed) + len(due)
    assert log_count(username=w.user, action="view") - before["view"] == 2  # the record and its detail
    assert log_count(username=w.user, action="reveal") - before["reveal"] == 1
    assert log_count(username=w.user, action="visit") - before["visit"] == 1
    assert people.validate_id(shown["id_number"]) and people.mask_id(shown["id_number"]) == one["id_masked"]
    # export: the secretary, with a reason; every person exported is logged, the file watermarked on every sheet
    n_exp = log_count(username=s.user, action="export")
    with use_scope(s), app_engine().begin() as c:
        data = people.export_people(c, user=s.user, role="secretary", reason="季度核对", community=area["com_a"])
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data))
    for ws in wb.worksheets:
        assert s.user in ws["A1"].value and "导出于" in ws["A1"].value and s.user in ws.oddHeader.center.text
        body = " ".join(str(c.value) for row in ws.iter_rows(min_row=3) for c in row)
        assert not re.search(r"\d{17}[\dX]", body)
    rows = wb.worksheets[0].max_row - 2
    assert log_count(username=s.user, action="export") - n_exp == rows > 0
    # who looked at this person: the administrator sees it; nobody else
    adm = Scope(user="t_people_admin", role="admin")
    with use_scope(adm), app_engine().begin() as c:
        log = people.access_log(c, area["pa"])
    mine = log[log["username"] == w.user]
    assert {"list", "view", "reveal", "visit"} <= set(mine["action"]) and "核实身份证件" in set(mine["reason"].dropna())
    assert app(w, "SELECT count(*) FROM people_access(:p)", p=area["pa"])[0][0] == 0


def test_reveal_needs_a_reason_and_export_a_role_that_may(area):
    with use_scope(worker(area)), app_engine().begin() as c:
        with pytest.raises(people.PeopleError):
            people.reveal(c, area["pa"], " ")
        with pytest.raises(people.PeopleError):
            people.export_people(c, user="w", role="worker", reason="想导出")
    with pytest.raises(DBAPIError, match="reason"):
        app(worker(area), "SELECT * FROM people_reveal(:p, '')", p=area["pa"])


def test_the_log_cannot_be_altered_even_by_the_owner(area):
    with use_scope(SYSTEM), people.owner_transaction() as c:
        c.execute(text("SELECT * FROM people_list(NULL, NULL, NULL, 'test', NULL, :p)"), {"p": area["pa"]})
    total = log_count()
    # no UPDATE or DELETE policy: under the forced policies those statements reach no row ...
    for sql in ("UPDATE person_access_log SET reason = 'x'", "DELETE FROM person_access_log"):
        with use_scope(SYSTEM), people.owner_transaction() as c:
            assert c.execute(text(sql)).rowcount == 0
    # ... and with the policies off (the owner could), the trigger still refuses; TRUNCATE too
    for sql in ("UPDATE person_access_log SET reason = 'x'", "DELETE FROM person_access_log", "TRUNCATE person_access_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            with owner_engine().begin() as c:
                c.execute(text("ALTER TABLE person_access_log NO FORCE ROW LEVEL SECURITY"))
                c.execute(text(sql))
    assert log_count() == total


# --- anonymisation -----------------------------------------------------------------------------------------

def test_anonymise_strips_moved_and_dead_after_the_retention_period(area, sysconn):
    gone = sysconn.execute(text("SELECT count(*) FROM persons WHERE status <> 'resident' AND anonymised_at IS NULL")).scalar_one()
    assert gone > 0
    assert people.anonymise(sysconn, retention_days=5000) == 0  # none that old
    n = people.anonymise(sysconn, retention_days=365)
    assert n == gone
    left = sysconn.execute(text("""SELECT count(*) FROM persons WHERE anonymised_at IS NOT NULL
                                     AND (name <> '（已匿名）' OR id_cipher IS NOT NULL OR id_hash IS NOT NULL
                                          OR phone_cipher IS NOT NULL OR extract(doy FROM birth_date) <> 1)""")).scalar_one()
    assert left == 0
    assert sysconn.execute(text("SELECT count(*) FROM people_list() WHERE name = '（已匿名）'")).scalar_one() == 0
