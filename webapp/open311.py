"""Open311 GeoReport v2 intake, served by the dashboard's own process (app.py mounts ``routes()``).

Why inside the app: a hotline system (12345) or a city app posts reports over HTTP; serving
them from the same process and port as the dashboard means nothing else to run or proxy.

Endpoints (JSON only; ``.xml`` answers 404 with a GeoReport error):
- ``GET  /open311/v2/services.json``: one service per 小类 (service_code = class code)
- ``GET  /open311/v2/services/{code}.json``: its definition (no extra attributes)
- ``POST /open311/v2/requests.json``: a report; needs ``api_key`` (``wangge apikey add``);
  ``lat``/``long`` are WGS-84, or GCJ-02 when ``coord_system=gcj02`` is sent (AMap, Tencent),
  converted before storing; ``description`` at most 4,000 characters; ``first_name``,
  ``last_name``, ``phone``, ``email`` are sealed (event_reporters) and never served back
- ``GET  /open311/v2/requests.json``: public fields of public cases, filters
  ``service_request_id``, ``service_code``, ``status``, ``start_date``, ``end_date``
  (default the last 90 days, at most 1,000 results, as the specification says)
- ``GET  /open311/v2/requests/{id}.json``

A request becomes a case ``reported`` by ``open311:<client>`` with role ``hotline`` (row-level
security then lets it report anywhere in the sub-district), source ``hotline`` and public.
Errors are GeoReport errors: ``[{"code": 400, "description": "..."}]``.
"""
from __future__ import annotations

from datetime import datetime

from gis.settings import get_settings

PREFIX = "/open311/v2"
MAX_DESCRIPTION = 4000


def _json(data, status: int = 200):
    from starlette.responses import JSONResponse

    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _error(status: int, description: str):
    return _json([{"code": status, "description": description}], status)


def _lang(request) -> str:
    return "en" if request.query_params.get("lang", "").lower().startswith("en") else "zh"


def _service(cls, rules, lang: str) -> dict:
    major = rules.majors.get((cls.kind, cls.major), ("", ""))
    return {"service_code": cls.code, "service_name": cls.zh if lang == "zh" else cls.en,
            "description": f"{major[0] if lang == 'zh' else major[1]} · {cls.zh if lang == 'zh' else cls.en}",
            "metadata": False, "type": "realtime", "keywords": ("部件" if cls.kind == "component" else "事件") if lang == "zh"
            else cls.kind, "group": major[0] if lang == "zh" else major[1]}


def services(request):
    from layers.event_rules import get_rules

    if request.path_params.get("fmt", "json") != "json":
        return _error(404, "format not supported: use .json")
    rules, lang = get_rules(), _lang(request)
    return _json([_service(c, rules, lang) for c in rules.classes.values()])


def service_definition(request):
    from layers.event_rules import get_rules

    code = request.path_params["code"]
    if request.path_params.get("fmt", "json") != "json":
        return _error(404, "format not supported: use .json")
    rules = get_rules()
    if code not in rules.classes:
        return _error(404, f"unknown service_code {code}")
    return _json({"service_code": code, "attributes": []})


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _public(row, lang: str) -> dict:
    from layers.event_rules import get_rules
    from layers.events import unit_label

    rules = get_rules()
    return {"service_request_id": str(row.id), "status": row.status, "status_notes": None,
            "service_name": rules.name(row.class_code, lang), "service_code": row.class_code,
            "description": row.description, "agency_responsible": unit_label(row.unit_code, lang) if row.unit_code else None,
            "service_notice": None, "requested_datetime": _iso(row.reported_at), "updated_datetime": _iso(row.updated_at),
            "expected_datetime": _iso(row.handle_due_at), "address": row.address, "address_id": None, "zipcode": None,
            "lat": row.lat, "long": row.lon, "media_url": None}


def _query(ids=None, codes=None, status=None, start=None, end=None):
    from sqlalchemy import text

    from gis.db import transaction
    from gis.scope import use_scope

    with use_scope(None), transaction() as conn:  # no scope: open311_requests serves public fields of public cases only
        return conn.execute(text("SELECT * FROM open311_requests(CAST(:i AS bigint[]), CAST(:c AS text[]), :s, :a, :b, :n)"),
                            {"i": ids, "c": codes, "s": status, "a": start, "b": end,
                             "n": get_settings().open311_page_max}).all()


def _date(v: str | None) -> datetime | None:
    if not v:
        return None
    d = datetime.fromisoformat(v.replace("Z", "+00:00"))
    if d.tzinfo is None:
        from gis.workclock import BEIJING

        d = d.replace(tzinfo=BEIJING)
    return d


def requests_get(request):
    q = request.query_params
    try:
        ids = [int(x) for x in q["service_request_id"].split(",") if x.strip()] if q.get("service_request_id") else None
        codes = [x.strip() for x in q["service_code"].split(",") if x.strip()] if q.get("service_code") else None
        status = q.get("status") or None
        if status not in (None, "open", "closed"):
            return _error(400, "status must be open or closed")
        start, end = _date(q.get("start_date")), _date(q.get("end_date"))
    except ValueError as exc:
        return _error(400, f"bad parameter: {exc}")
    return _json([_public(r, _lang(request)) for r in _query(ids, codes, status, start, end)])


def request_one(request):
    try:
        i = int(request.path_params["id"])
    except ValueError:
        return _error(404, "unknown service_request_id")
    rows = _query([i], None, None, datetime(1970, 1, 1).astimezone(), None)
    if not rows:
        return _error(404, f"unknown service_request_id {i}")
    return _json([_public(rows[0], _lang(request))])


def _client(key: str | None) -> str | None:
    from sqlalchemy import text

    from gis.db import transaction
    from gis.scope import use_scope

    if not key or len(key) > 200:
        return None
    with use_scope(None), transaction() as conn:
        return conn.execute(text("SELECT apikey_check(:k)"), {"k": key}).scalar()


async def requests_post(request):
    from starlette.concurrency import run_in_threadpool

    try:
        form = await request.form()
    except Exception:  # not a form body
        return _error(400, "send application/x-www-form-urlencoded or multipart/form-data")
    return await run_in_threadpool(_post, dict(form), request.headers.get("x-api-key"))


def _post(form: dict, header_key: str | None):
    import prcoords

    from gis.db import transaction
    from gis.scope import Scope, use_scope
    from layers import events as ev
    from layers.event_rules import get_rules

    client = _client(str(form.get("api_key") or header_key or ""))
    if client is None:
        return _error(403, "api_key missing, unknown or revoked")
    code = str(form.get("service_code") or "")
    if code not in get_rules().classes:
        return _error(400, f"unknown service_code {code!r}" if code else "service_code is required")
    try:
        lat, lon = float(form.get("lat", "")), float(form.get("long", ""))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError
    except ValueError:
        return _error(400, "lat and long (WGS-84 degrees) are required")
    system = str(form.get("coord_system") or "wgs84").lower().replace("-", "")
    if system == "gcj02":
        lat, lon = prcoords.gcj_wgs_bored((lat, lon))
    elif system not in ("wgs84", "epsg4326"):
        return _error(400, "coord_system must be wgs84 or gcj02")
    description = str(form.get("description") or "")
    if len(description) > MAX_DESCRIPTION:
        return _error(400, f"description is longer than {MAX_DESCRIPTION} characters")
    name = " ".join(str(form.get(k) or "").strip() for k in ("last_name", "first_name")).strip() or None
    reporter = {"name": name, "phone": (str(form.get("phone") or "").strip() or None),
                "email": (str(form.get("email") or "").strip() or None)}
    scope = Scope(user=f"open311:{client}", role="hotline")
    try:
        with use_scope(scope), transaction() as conn:
            i = ev.report_event(conn, code, lon=lon, lat=lat, description=description or None, source="hotline",
                                address=(str(form.get("address_string") or "").strip()[:500] or None), reporter=reporter)
    except ev.EventInvalid as exc:
        return _error(400, str(exc))
    return _json([{"service_request_id": str(i), "service_notice": None, "account_id": None}], 201)


def routes() -> list:
    """The Starlette routes ``app.py`` hands to ``st.App``."""
    from starlette.routing import Route

    return [
        Route(PREFIX + "/services.{fmt}", services, methods=["GET"]),
        Route(PREFIX + "/services/{code}.{fmt}", service_definition, methods=["GET"]),
        Route(PREFIX + "/requests.json", requests_post, methods=["POST"]),
        Route(PREFIX + "/requests.json", requests_get, methods=["GET"]),
        Route(PREFIX + "/requests/{id}.json", request_one, methods=["GET"]),
    ]
