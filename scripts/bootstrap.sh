#!/usr/bin/env bash
# Brings a fresh Debian machine (or a half-set-up one) to the state Wangge needs.
# Every step checks before it acts, so running it again changes nothing it need not.
#
#   scripts/bootstrap.sh system    apt packages (PostgreSQL 15, PostGIS, pgRouting, fonts; chromium with BROWSER=1;
#                                  haproxy and pgbouncer with BROWSER=1 or MULTI=1)
#   scripts/bootstrap.sh python    .venv + requirements.txt + the `wangge` command
#   scripts/bootstrap.sh web       Leaflet and plugins from the npm registry into static/vendor
#   scripts/bootstrap.sh db        local cluster running, roles, database, extensions, migrations
#   scripts/bootstrap.sh cluster-check   is the running server older than the installed binaries? (exit 10 if so)
#   scripts/bootstrap.sh all       all of the above
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAMPS="$ROOT/.stamps"
mkdir -p "$STAMPS"
say() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[bootstrap] %s\033[0m\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

PG_MAJOR=${WANGGE_PG_MAJOR:-15}
APT_PACKAGES=(postgresql-$PG_MAJOR postgresql-$PG_MAJOR-postgis-3 postgresql-$PG_MAJOR-pgrouting fonts-noto-cjk nodejs npm)
[ "${BROWSER:-0}" = 1 ] && APT_PACKAGES+=(chromium chromium-driver)
# the multi-process deployment (deploy/serve-multi.sh, `make serve-multi`) and its tests (make test sets BROWSER=1)
{ [ "${BROWSER:-0}" = 1 ] || [ "${MULTI:-0}" = 1 ]; } && APT_PACKAGES+=(haproxy pgbouncer)

step_system() {
  if ! command -v dpkg >/dev/null; then
    say "Not a Debian system. Install these yourself, then run again: PostgreSQL $PG_MAJOR with PostGIS 3 and pgRouting,"
    say "Node.js with npm, a CJK font (Noto Sans CJK), and Chromium for the browser tests."
    return 0
  fi
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  # Node and npm may come from elsewhere than Debian (e.g. nodesource): accept working binaries.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    local keep=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || keep+=("$p"); done; missing=("${keep[@]}")
  fi
  if [ ${#missing[@]} -eq 0 ]; then say "system packages present"; return 0; fi
  say "installing: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

PY=${PYTHON:-python3}
step_python() {
  [ -x .venv/bin/python ] || { say "creating .venv"; "$PY" -m venv .venv; }
  local want; want=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
  if [ "$(cat "$STAMPS/python" 2>/dev/null)" != "$want" ] || ! [ -x .venv/bin/wangge ]; then
    say "installing Python packages (requirements.txt)"
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -r requirements.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
    .venv/bin/pip install -q --no-deps -e . 2>&1 | { grep -vE "WARNING: Location|editable|!!|\*\*\*|Please be careful|name as your package|with strategy|^ *$" || true; }
    echo "$want" > "$STAMPS/python"
  else
    say "Python packages up to date"
  fi
}

step_web() {
  local want; want=$(cat web/package.json web/package-lock.json 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat "$STAMPS/web" 2>/dev/null)" != "$want" ] || ! [ -f static/vendor/leaflet/leaflet.js ]; then
    say "installing map libraries from the npm registry"
    if [ -f web/package-lock.json ]; then (cd web && npm ci --silent --no-audit --no-fund); else (cd web && npm install --silent --no-audit --no-fund); fi
    rm -rf static/vendor && mkdir -p static/vendor
    .venv/bin/python scripts/vendor_web.py web/node_modules static/vendor
    echo "$want" > "$STAMPS/web"
  else
    say "map libraries up to date"
  fi
}

# Settings come from the environment, else from .env (generated once with random passwords).
load_env() {
  if [ ! -f .env ]; then
    say "writing .env with generated database passwords (not committed)"
    umask 077
    {
      echo "WANGGE_DB_OWNER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
      echo "WANGGE_DB_APP_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
    } > .env
  fi
  # The secret that signs the row-level scope (gis/scope.py); appended once, other keys untouched.
  if ! grep -q '^WANGGE_SCOPE_SECRET=' .env; then
    say "adding WANGGE_SCOPE_SECRET to .env"
    echo "WANGGE_SCOPE_SECRET=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >> .env
  fi
  # The key that encrypts ID numbers and phones of the person registers (layers/people.py); appended
  # once. Keep a copy outside the server: without it the stored ID numbers cannot be read back.
  if ! grep -q '^WANGGE_PEOPLE_KEY=' .env; then
    say "adding WANGGE_PEOPLE_KEY to .env"
    echo "WANGGE_PEOPLE_KEY=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >> .env
  fi
  # The demo accounts' password (`wangge demo accounts`, run by `make demo`); appended once.
  if ! grep -q '^WANGGE_DEMO_PASSWORD=' .env; then
    echo "WANGGE_DEMO_PASSWORD=$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')" >> .env
  fi
  set -a; . ./.env; set +a
  DB_HOST=${WANGGE_DB_HOST:-localhost}
  DB_PORT=${WANGGE_DB_PORT:-5432}
  DB_NAME=${WANGGE_DB_NAME:-wangge}
  OWNER=${WANGGE_DB_OWNER:-wangge_owner}
  APP=${WANGGE_DB_APP_USER:-wangge_app}
}

# An apt upgrade of postgresql-NN under a running cluster (15.18 -> 15.20) replaces the binaries
# and libraries but not the running postmaster: every new connection then fails to load
# plpgsql.so. Compare the running server's version with the installed binary's.
installed_pg_version() {
  if [ -n "${WANGGE_PG_INSTALLED_VERSION:-}" ]; then echo "$WANGGE_PG_INSTALLED_VERSION"; return; fi
  local bin="/usr/lib/postgresql/$PG_MAJOR/bin/postgres"
  [ -x "$bin" ] && "$bin" --version | awk '{print $3}'
}
running_pg_version() {
  if [ -n "${WANGGE_PG_RUNNING_VERSION:-}" ]; then echo "$WANGGE_PG_RUNNING_VERSION"; return; fi
  as_postgres psql -X -At -p "$DB_PORT" -d postgres -c "SHOW server_version" 2>/dev/null | awk '{print $1}'
}
cluster_check() {  # 0: current (or nothing to compare), 10: running server older than the installed binaries
  local installed running
  installed=$(installed_pg_version || true); running=$(running_pg_version || true)
  if [ -z "$installed" ] || [ -z "$running" ]; then return 0; fi
  if [ "$installed" != "$running" ] && [ "$(printf '%s\n%s\n' "$installed" "$running" | sort -V | tail -1)" = "$installed" ]; then
    say "the running PostgreSQL ($running) is older than the installed server binaries ($installed):"
    say "new connections may fail to load plpgsql.so until the cluster is restarted"
    return 10
  fi
  return 0
}
restart_stale_cluster() {
  local rc=0; cluster_check || rc=$?
  [ "$rc" = 10 ] || return 0
  if [ "${WANGGE_RESTART_STALE_CLUSTER:-1}" = 1 ] && command -v pg_ctlcluster >/dev/null; then
    say "restarting PostgreSQL $PG_MAJOR/main on the installed binaries"
    as_root pg_ctlcluster "$PG_MAJOR" main restart
    for _ in $(seq 1 30); do pg_isready -q -h "$DB_HOST" -p "$DB_PORT" && break; sleep 1; done
  else
    say "restart it: pg_ctlcluster $PG_MAJOR main restart (WANGGE_RESTART_STALE_CLUSTER=0 left it running)"
  fi
}

step_db() {
  load_env
  if [ -n "${DATABASE_URL:-}" ] && [ "${WANGGE_MANAGE_DB:-0}" != 1 ]; then
    say "DATABASE_URL is set: using that server as it is, only running migrations"
    .venv/bin/wangge db up
    return 0
  fi
  if ! pg_isready -q -h "$DB_HOST" -p "$DB_PORT" 2>/dev/null; then
    command -v pg_ctlcluster >/dev/null || die "no PostgreSQL on $DB_HOST:$DB_PORT and no pg_ctlcluster to start one"
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$PG_MAJOR/main"; then
      say "creating PostgreSQL $PG_MAJOR cluster 'main'"
      as_root pg_createcluster "$PG_MAJOR" main -p "$DB_PORT" >/dev/null
    fi
    say "starting PostgreSQL $PG_MAJOR/main"
    as_root pg_ctlcluster "$PG_MAJOR" main start
    for _ in $(seq 1 30); do pg_isready -q -h "$DB_HOST" -p "$DB_PORT" && break; sleep 1; done
    pg_isready -q -h "$DB_HOST" -p "$DB_PORT" || die "PostgreSQL did not come up on $DB_HOST:$DB_PORT"
  else
    restart_stale_cluster
  fi
  say "roles $OWNER (owns the schema) and $APP (owns nothing), database $DB_NAME"
  as_postgres psql -q -v ON_ERROR_STOP=1 -p "$DB_PORT" -d postgres \
    -v owner="$OWNER" -v app="$APP" -v opw="$WANGGE_DB_OWNER_PASSWORD" -v apw="$WANGGE_DB_APP_PASSWORD" -v db="$DB_NAME" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'owner') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"owner" LOGIN PASSWORD :'opw' NOSUPERUSER NOCREATEROLE;
ALTER ROLE :"app" LOGIN PASSWORD :'apw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'db', :'owner')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  # Extensions need a superuser; everything after runs as the owner role.
  as_postgres psql -q -v ON_ERROR_STOP=1 -p "$DB_PORT" -d "$DB_NAME" -v app="$APP" -v owner="$OWNER" <<'SQL'
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS pgrouting;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"owner";
GRANT USAGE ON SCHEMA public TO :"app";
SQL
  say "migrating $DB_NAME"
  .venv/bin/wangge db up
}

case "${1:-all}" in
  system) step_system ;;
  python) step_python ;;
  web) step_web ;;
  db) step_db ;;
  cluster-check) load_env; cluster_check ;;
  all) step_system; step_python; step_web; step_db ;;
  *) die "unknown step: $1" ;;
esac
