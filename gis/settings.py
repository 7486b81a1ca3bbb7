"""One settings object for the whole platform.

Every rule the code applies is a named setting here, with the default from
``shared/standards.md`` (the mark after each value says how sure that default is), so a
sub-district whose local rules differ changes an environment variable, not code.
Environment variables win over ``.env``, which wins over the defaults below.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WANGGE_", env_file=ROOT / ".env", extra="ignore", populate_by_name=True
    )

    # --- database -------------------------------------------------------------------
    db_host: str = "localhost"
    db_port: int = 5432
    db_name: str = "wangge"
    db_owner: str = "wangge_owner"
    db_owner_password: str = ""
    db_app_user: str = "wangge_app"
    db_app_password: str = ""
    # A full URL overrides the parts above. DATABASE_URL is the app's (unprivileged)
    # connection; OWNER_DATABASE_URL the schema owner's, used only for migrations/imports.
    # Behind a pooler in transaction mode (PgBouncer, deploy/serve-multi.sh): server-side prepared
    # statements are off (a pooled server connection is shared between clients' transactions, so a
    # statement one client prepared is missing, or already taken, for the next; PgBouncer < 1.21
    # does not track them). The scope is transaction-local already (gis/scope.py).
    db_pooled: bool = False
    database_url_override: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "WANGGE_DATABASE_URL")
    )
    owner_database_url_override: str | None = Field(
        default=None, validation_alias=AliasChoices("OWNER_DATABASE_URL", "WANGGE_OWNER_DATABASE_URL")
    )

    # --- coordinates (standards §7) -----------------------------------------------------
    storage_srid: int = 4326  # WGS-84 stored; CGCS2000 (4490) input is accepted and reprojected
    # Metric CRS for lengths and areas; 0 = chosen from the data's location
    # (CGCS2000 3-degree Gauss-Krüger zone inside China, UTM elsewhere).
    metric_srid: int = 0

    # --- bulk imports (layers.base.copy_rows) ---------------------------------------------
    # Memory for one large load, local to its transaction: the sorts of the index builds and
    # of the statement triggers' transition tables stay in memory instead of spilling to disk
    # (the server defaults, 64 MB and 4 MB, spill at 1,000,000 buildings).
    import_work_mem: str = "256MB"
    import_maintenance_work_mem: str = "512MB"

    # --- administrative defaults for imports that carry no codes (OSM extracts) ---------
    default_district_code: str = "420106"
    default_subdistrict_code: str = "420106010"
    camera_centre_code: str = "42010601"  # GB/T 28181 8-digit centre code for generated device IDs

    # --- grids (standards §2) -----------------------------------------------------------
    grid_households_min: int = 300  # [practice]
    grid_households_max: int = 500  # [practice]
    grid_residents_max: int = 2500  # [practice]
    grid_code_layout: str = "15"  # "14" national (6+3+3+2) [verify] or "15" DB11/T 2157-2023 (6+3+3+3) [std]
    grid_sliver_m2: float = 50.0
    grid_numbering_band_m: float = 300.0  # rows of grids read west→east within bands this tall, north→south

    # --- households where a source has none (standards §2; issue 13) ----------------------
    # households = gross floor area ÷ floor area per dwelling; residents = households × persons
    # per household. Gross floor area = footprint (metric CRS) × storeys; storeys from
    # building:levels / 层数, else height ÷ storey height, else the default for the type.
    persons_per_household: float = 2.62  # [std] 7th national census, 2020
    floor_area_per_dwelling_m2: float = 100.0  # [verify] gross floor area per urban dwelling
    storey_height_m: float = 3.0  # [practice] where only a building height is known
    # [verify] storeys assumed when a residential building says neither levels nor height,
    # by OSM building type; "" is every other residential type.
    default_storeys: dict[str, int] = {"house": 2, "detached": 2, "semidetached_house": 2, "terrace": 2,
                                       "bungalow": 1, "apartments": 5, "residential": 3, "": 3}
    # [practice] types that hold one dwelling whatever their floor area (a family house)
    single_dwelling_types: list[str] = ["house", "detached", "bungalow", "farm", "cabin", "hut"]
    dwelling_min_footprint_m2: float = 25.0  # [verify] smaller residential footprints (sheds, garages) hold no dwelling
    # OSM building=yes says nothing of use: residential where it stands on landuse=residential
    # (an estimate, marked as such), else not residential.
    unspecified_use_residential_on_landuse: bool = True
    # When an extract holds no admin_level=10 wards: the extract becomes one community (its
    # buildings' hull, buffered by this many metres), to be replaced by the office's boundaries.
    osm_fallback_community_buffer_m: float = 30.0

    # --- staffing (standards §2) --------------------------------------------------------
    households_per_worker: int = 400  # [std] seed plan, Chifeng: community workers per households (staffing ratio)
    worker_households_max: int = 500  # one worker's load: the grid band's top, since 一格一员 staffs grids of up to 500
    max_grids_per_worker: int = 2
    worker_max_distance_m: float = 2000.0

    # --- life circles and facilities (standards §4) -------------------------------------
    walking_speed_m_per_min: float = 70.0
    life_circle_5_m: float = 300.0
    life_circle_10_m: float = 500.0
    life_circle_15_m: float = 1000.0
    service_space_m2_per_100_households: float = 30.0  # [std] 完整社区 2022
    service_space_new_m2_per_100_households: float = 20.0  # [std] seed plan
    community_office_min_m2: float = 200.0  # [std]
    one_stop_centre_min_m2: float = 50.0  # [std]

    # Services coverage (analysis/services.py). Radii default to layers/vocab.py; a JSON
    # object here overrides them per category, e.g. WANGGE_SERVICE_RADIUS_M='{"kindergarten": 500}'.
    service_radius_m: dict[str, float] = {}
    # What each life circle must contain within its walking distance (GB 50180-2018, standards §4).
    life_circle_5_categories: list[str] = ["community_service_station", "health_station", "elderly_day_care", "kindergarten"]
    life_circle_10_categories: list[str] = ["community_service_station", "health_station", "elderly_day_care", "kindergarten",
                                            "culture_station", "primary_school"]
    life_circle_15_categories: list[str] = ["community_service_station", "health_station", "elderly_day_care", "kindergarten",
                                            "culture_station", "primary_school", "middle_school", "health_centre",
                                            "subdistrict_service_centre"]
    service_search_max_m: float = 1500.0  # walks are followed this far; farther is reported as "beyond"
    # Which open facilities make up each floor-area rule (analysis/compliance.py).
    service_space_categories: list[str] = ["community_service_station", "elderly_day_care", "culture_station"]
    community_office_categories: list[str] = ["community_service_station"]  # 社区办公和服务用房
    one_stop_centre_categories: list[str] = ["community_service_station"]  # 一站式服务站 sits in the station
    health_station_categories: list[str] = ["health_station", "health_centre"]
    culture_room_categories: list[str] = ["culture_station"]

    # --- cameras (standards §5) ---------------------------------------------------------
    camera_detail_level: str = "observation"  # DORI level used for the view range
    camera_sensor_width_px: int = 1920
    camera_default_hfov: float = 79.0  # when HorizontalFieldAngle is missing: a 4 mm lens [practice]
    camera_sample_m: float = 1.0  # spacing of the points that measure road and façade coverage
    camera_facade_max_m: float = 30.0  # a building edge facing a road centre line this close is street-facing
    camera_inner_road_m: float = 25.0  # roads farther than this inside the community boundary are its inner streets
    camera_key_place_buffer_m: float = 5.0  # a key place is seen when a view comes this close to its building
    key_place_categories: list[str] = []  # facility categories that are key public places; empty = all
    key_places_covered_min: float = 1.0  # 雪亮工程: key public areas 100% covered [std]
    camera_serviceability_min: float = 0.98  # 雪亮工程: serviceability in key public areas ≥98% [std]

    # --- sign-in and row-level access (issue 8; gis/scope.py, layers/users.py) ---------------
    # Secret that signs the per-transaction scope the policies trust; generated into .env by
    # scripts/bootstrap.sh. Empty: derived from the app role's password (same value for the
    # app and for `wangge db up`, which stores it in the owner-only table wangge_secrets).
    scope_secret: str = ""
    scope_ttl_s: int = 120  # a scope token is made per transaction; this is how long it stays valid
    auth_slowdown_after: int = 3  # failed sign-ins before each further attempt must wait
    auth_slowdown_base_s: float = 2.0  # first wait; doubles with every further failure
    auth_lock_after: int = 5  # failed sign-ins that lock the account
    auth_lock_minutes: int = 15
    auth_session_minutes: int = 60  # a signed-in session expires after this long without use
    auth_password_min_length: int = 10

    # --- events (issue 16; gis/workclock.py, layers/event_rules.py, layers/events.py) -----
    event_work_hours: str = "08:30-12:00,14:00-17:30"  # working periods of a working day [practice]
    event_calendar_dir: str = ""  # holiday files cn-YYYY.json; empty: data/calendar in the repository
    event_rules: str = ""  # classes, units and stage limits (JSON); empty: data/events/rules.json
    event_duplicate_m: float = 50.0  # open cases of the same class this close are suggested as duplicates
    event_rank_min_cases: int = 5  # rankings only for units with at least this many due cases
    event_photo_max_mb: int = 10  # each photo attached to a case
    open311_page_max: int = 1000  # most requests one GeoReport query returns (the specification's limit)

    # --- people, visits, patrols (issue 17; layers/people.py, analysis/visits.py, analysis/patrols.py) ---
    # Key for ID numbers and phones (AES-256-GCM, plus a keyed hash for look-up), kept here and in
    # .env only, never in the database: a dump alone reveals neither. scripts/bootstrap.sh generates it.
    people_key: str = ""
    people_retention_days: int = 365  # moved-away / dead persons are anonymised this long after the status date
    people_export_roles: list[str] = ["secretary"]  # who may export person data (the database also refuses others)
    visit_far_m: float = 200.0  # a visit recorded farther than this from the person's building is flagged
    patrol_distance_m: float = 30.0  # households in buildings this close to a track count as patrolled
    patrol_gap_s: float = 300.0  # fixes further apart than this are a break, not patrol time
    patrol_min_hours: float = 2.0  # patrol at least 2 hours a day [practice, one city's rules] (standards §2)
    patrol_bands: list[float] = [0.95, 0.90, 0.85]  # patrol coverage bands [practice] (standards §2)
    patrol_fix_accuracy_m: float = 50.0  # a phone's fix less precise than this (cell-tower fixes) is left out of a recorded track
    visit_overdue_bands: list[float] = [0.10, 0.25]  # overdue-rate map bands: up to 10 % light, to 25 % middling, above heavy

    # --- dashboard ----------------------------------------------------------------------
    language: str = "zh"
    timezone: str = "Asia/Shanghai"  # times are shown in the deployment's zone (stored in UTC)
    basemap: str = "none"  # none | tianditu | osm | amap
    tianditu_key: str = ""
    # One line per page run on stderr ("wangge-run {json}": the run's time, each named read's,
    # the map's build) for bench/bench_map.py's breakdown; off in production.
    profile_runs: bool = False

    # --- dashboard sessions (webapp/sessions.py) -------------------------------------------
    session_idle_minutes: int = 30  # signed out after this long without a request
    session_max_hours: int = 12  # and after this long in any case (one working day)
    session_cookie: str = "wangge_session"
    session_cookie_secure: bool = False  # True behind HTTPS: the cookie is then never sent in clear
    max_upload_mb: int = 200  # every file a user uploads (imports, candidate sites); larger is refused
    demo_password: str = ""  # the demo accounts' password (`wangge demo accounts`); bootstrap writes one into .env

    @property
    def database_url(self) -> str:
        """The application's connection: a role that owns nothing (row-level security holds)."""
        if self.database_url_override:
            return _with_driver(self.database_url_override)
        return _url(self.db_app_user, self.db_app_password, self.db_host, self.db_port, self.db_name)

    @property
    def owner_database_url(self) -> str:
        """The schema owner's connection, for migrations and bulk imports."""
        if self.owner_database_url_override:
            return _with_driver(self.owner_database_url_override)
        if self.database_url_override:  # a single URL given: use it for everything
            return _with_driver(self.database_url_override)
        return _url(self.db_owner, self.db_owner_password, self.db_host, self.db_port, self.db_name)


def _with_driver(url: str) -> str:
    """Accept plain ``postgresql://`` URLs (what users paste) and use psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _url(user: str, password: str, host: str, port: int, name: str) -> str:
    from sqlalchemy.engine import URL

    return URL.create(
        "postgresql+psycopg", username=user, password=password or None, host=host, port=port, database=name
    ).render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
