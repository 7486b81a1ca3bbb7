"""One module per screen; each role sees only its own (``ROLE_SCREENS``)."""
from __future__ import annotations

from collections.abc import Callable

from ui.screens import (
    accounts,
    admin,
    audit,
    coverage,
    events,
    grids,
    leader,
    people,
    planner,
    secretary,
    staffing,
    worker,
)
from ui.state import ROLE_KEYS

ROLES = ROLE_KEYS
# role -> [(url path, title key, render function)]; the first is the role's landing screen.
ROLE_SCREENS: dict[str, list[tuple[str, str, Callable[[], None]]]] = {
    "leader": [("overview", "page.overview", leader.render), ("coverage", "page.coverage", coverage.render),
               ("staffing", "page.staffing", staffing.render), ("event-kpi", "page.events_kpi", events.kpi_render),
               ("people", "page.people_overview", people.render_leader)],
    "secretary": [("community", "page.community", secretary.render), ("event-kpi", "page.events_kpi", events.kpi_render),
                  ("people", "page.people_community", people.render_secretary)],
    "worker": [("my-grid", "page.my_grid", worker.render), ("events", "page.events_worker", events.worker_render),
               ("visits", "page.people_worker", people.render_worker)],
    "planner": [("planning", "page.planning", planner.render)],
    "admin": [("import", "page.import", admin.render_import), ("layers", "page.status", admin.render_status),
              ("grids", "page.grids", grids.render), ("users", "page.users", accounts.render),
              ("audit", "page.audit", audit.render), ("access-log", "page.people_access", people.render_access_log)],
    "dispatcher": [("dispatch", "page.events_dispatch", events.dispatcher_render), ("event-kpi", "page.events_kpi", events.kpi_render)],
    "unit": [("unit-cases", "page.events_unit", events.unit_render)],
    "hotline": [("hotline", "page.events_hotline", events.hotline_render)],
}
