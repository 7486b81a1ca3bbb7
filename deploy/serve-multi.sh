#!/usr/bin/env bash
# Several dashboard processes behind a reverse proxy, for more users than one Streamlit process holds.
#
#   deploy/serve-multi.sh start     PgBouncer (transaction mode) → N × `streamlit run app.py` → HAProxy (sticky)
#   deploy/serve-multi.sh stop      stops what `start` started (by the pid files in the run folder)
#   deploy/serve-multi.sh status    which parts are running
#   deploy/serve-multi.sh pgbouncer PgBouncer alone (what the apps would connect to)
#
#   browser ──► HAProxy :WANGGE_MULTI_PORT (8501) ── cookie WANGGE_APP keeps a browser on one process
#                  ├─► app1: streamlit run app.py :8601 ─┐
#                  └─► app2: streamlit run app.py :8602 ─┴─► PgBouncer :6433 (pool_mode = transaction) ─► PostgreSQL
#
# Why sticky: a Streamlit session (its websocket, st.session_state, uploads, media) lives in one
# process; the session cookie and every figure it shows come from the database, so any process
# serves a signed-in user correctly, but one open page must keep talking to the process that holds it.
# Why transaction mode, and why the row-level scope still holds: the app sets the signed scope with
# SET LOCAL at the start of every transaction (gis/scope.py), and a transaction runs on one server
# connection from BEGIN to COMMIT, so the scope never outlives it; nothing on the app's path sets a
# session-level parameter; prepared statements are off (WANGGE_DB_POOLED=true, gis/db.py).
# tests/test_pgbouncer.py and tests/test_deploy_multi.py check this against the real programs.
#
# Settings (environment; the database ones from gis/settings.py, i.e. .env):
#   WANGGE_APPS (2)             app processes (one per core is a good start)
#   WANGGE_MULTI_PORT (8501)    where browsers connect; WANGGE_MULTI_ADDRESS (127.0.0.1; 0.0.0.0 to serve the network)
#   WANGGE_APP_PORTS            the apps' own ports (default 8601, 8602, …; loopback only)
#   WANGGE_PGBOUNCER_PORT (6433), WANGGE_PGBOUNCER_POOL (15 × apps + 5: server connections, see below)
#   WANGGE_MULTI_DIR (.run/multi)  configuration, logs and pid files
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
APPS=${WANGGE_APPS:-2}
PORT=${WANGGE_MULTI_PORT:-8501}
ADDRESS=${WANGGE_MULTI_ADDRESS:-127.0.0.1}
PGB_PORT=${WANGGE_PGBOUNCER_PORT:-6433}  # not 6432: Debian's own pgbouncer service may hold it
# Server connections: more than the app processes' transactions that can be waiting at once. A failed
# sign-in holds its transaction while it counts the failure in a second one (layers/users.py), so
# with every server connection held by such sign-ins none could finish: each app's engine opens at
# most 15 connections (SQLAlchemy's 5 + 10), hence 15 per app + 5 (tiles' own transactions never wait).
PGB_POOL=${WANGGE_PGBOUNCER_POOL:-$((15 * APPS + 5))}
RUN=${WANGGE_MULTI_DIR:-$ROOT/.run/multi}
if [ -n "${WANGGE_APP_PORTS:-}" ]; then read -r -a APP_PORTS <<< "$WANGGE_APP_PORTS"; else
  APP_PORTS=(); for i in $(seq 1 "$APPS"); do APP_PORTS+=($((8600 + i))); done; fi
PY=$ROOT/.venv/bin/python

say() { printf '\033[1;34m[serve-multi]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[serve-multi] %s\033[0m\n' "$*" >&2; exit 1; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

need() {
  local missing=()
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
  [ ${#missing[@]} -eq 0 ] || die "not installed: ${missing[*]} (MULTI=1 scripts/bootstrap.sh system installs them)"
}

# PgBouncer's folder: configuration, auth file, log, pid. Started by root it runs as postgres
# (it refuses root), which must reach the folder: a repository under a private home is not
# reachable, so then the folder is a private one under /tmp.
pgb_dir() {
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$RUN" 2>/dev/null; then
    echo "/tmp/wangge-pgbouncer-$PGB_PORT"
  else
    echo "$RUN/pgbouncer"
  fi
}

pgb_pid() { local d; d=$(cat "$RUN/pgbouncer.dir" 2>/dev/null || echo "$RUN/pgbouncer"); echo "$d/pgbouncer.pid"; }

start_pgbouncer() {
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || die "pgbouncer not installed (MULTI=1 scripts/bootstrap.sh system)"
  export PATH=$PATH:/usr/sbin
  mkdir -p "$RUN"
  chmod 755 "$RUN"
  # the database the settings name, the app role's password (for PgBouncer's auth file), and the
  # URLs the apps use: the app role through PgBouncer, the owner straight (the browser's imports and the
  # people registers' owner calls: its session-level SET jit = off must never reach a pooled connection)
  eval "$("$PY" - "$PGB_PORT" <<'EOF'
import shlex, sys
from gis.settings import get_settings
from sqlalchemy.engine import make_url
s = get_settings()
app, owner = make_url(s.database_url), make_url(s.owner_database_url)
pooled = app.set(host="127.0.0.1", port=int(sys.argv[1]))
for k, v in {"DB_NAME": app.database, "DB_HOST": app.host or "localhost", "DB_PORT": app.port or 5432,
             "APP_USER": app.username, "APP_PASSWORD": app.password or "",
             "POOLED_URL": pooled.render_as_string(hide_password=False),
             "OWNER_URL": owner.render_as_string(hide_password=False)}.items():
    print(f"{k}={shlex.quote(str(v))}")
EOF
)"
  [ -n "$APP_PASSWORD" ] || die "the app role has no password in the settings (.env): PgBouncer needs it"
  local pgb
  pgb=$(pgb_dir)
  mkdir -p "$pgb"
  echo "$pgb" > "$RUN/pgbouncer.dir"
  if alive "$pgb/pgbouncer.pid"; then say "PgBouncer already running"; else
    umask 077
    printf '"%s" "%s"\n' "$APP_USER" "${APP_PASSWORD//\"/\"\"}" > "$pgb/userlist.txt"
    cat > "$pgb/pgbouncer.ini" <<EOF
; generated by deploy/serve-multi.sh
[databases]
$DB_NAME = host=$DB_HOST port=$DB_PORT dbname=$DB_NAME

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $pgb/userlist.txt
; transaction mode: a server connection serves one client's transaction, then the next client's.
; The app's scope is SET LOCAL (gone at COMMIT/ROLLBACK); it uses no session state.
pool_mode = transaction
default_pool_size = $PGB_POOL
max_client_conn = 2000
; in transaction mode the reset query is not run between clients (server_reset_query_always = 0):
; nothing the app does needs it, and tests/test_pgbouncer.py checks that no session setting is left
server_reset_query = DISCARD ALL
server_reset_query_always = 0
ignore_startup_parameters = extra_float_digits
logfile = $pgb/pgbouncer.log
pidfile = $pgb/pgbouncer.pid
EOF
    umask 022
    if [ "$(id -u)" = 0 ]; then  # PgBouncer refuses to run as root
      chown -R postgres "$pgb"; chmod 700 "$pgb"
      runuser -u postgres -- pgbouncer -d "$pgb/pgbouncer.ini"
    else
      pgbouncer -d "$pgb/pgbouncer.ini"
    fi
    for _ in $(seq 50); do alive "$pgb/pgbouncer.pid" && break; sleep 0.1; done
    alive "$pgb/pgbouncer.pid" || die "PgBouncer did not start: see $pgb/pgbouncer.log"
    say "PgBouncer on 127.0.0.1:$PGB_PORT (transaction mode, $PGB_POOL server connections) → $DB_HOST:$DB_PORT/$DB_NAME"
  fi
}

start() {
  need
  start_pgbouncer

  local servers="" i=0
  for p in "${APP_PORTS[@]}"; do
    i=$((i + 1))
    servers+="  server app$i 127.0.0.1:$p cookie app$i check inter 5s"$'\n'
    if alive "$RUN/app$i.pid"; then say "app$i already running"; continue; fi
    DATABASE_URL=$POOLED_URL OWNER_DATABASE_URL=$OWNER_URL WANGGE_DB_POOLED=true \
      nohup "$ROOT/.venv/bin/streamlit" run app.py --server.port "$p" --server.address 127.0.0.1 \
      --server.headless true --browser.gatherUsageStats false --server.fileWatcherType none \
      > "$RUN/app$i.log" 2>&1 &
    echo $! > "$RUN/app$i.pid"
  done

  cat > "$RUN/haproxy.cfg" <<EOF
# generated by deploy/serve-multi.sh
global
  daemon
  pidfile $RUN/haproxy.pid
  maxconn 4000

defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 300s
  # an open page's websocket lives as long as the page
  timeout tunnel 12h
  timeout http-request 30s

frontend wangge
  bind $ADDRESS:$PORT
  default_backend apps

backend apps
  # a new browser goes to the process with the fewest connections; the cookie keeps it there
  # (its websocket, uploads and downloads go to the process that holds its Streamlit session)
  balance leastconn
  cookie WANGGE_APP insert indirect nocache httponly
  option httpchk GET /_stcore/health
  http-response set-header X-Wangge-App %s
$servers
EOF
  for i in $(seq 1 ${#APP_PORTS[@]}); do
    local p=${APP_PORTS[$((i - 1))]} ok=0
    for _ in $(seq 240); do
      if "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', $p), 1)" 2>/dev/null; then ok=1; break; fi
      alive "$RUN/app$i.pid" || break
      sleep 0.5
    done
    [ $ok = 1 ] || die "app$i did not start: see $RUN/app$i.log"
  done
  say "${#APP_PORTS[@]} app processes on ports ${APP_PORTS[*]} (DATABASE_URL through PgBouncer, WANGGE_DB_POOLED=true)"
  if alive "$RUN/haproxy.pid"; then
    haproxy -f "$RUN/haproxy.cfg" -c -q && kill -USR2 "$(cat "$RUN/haproxy.pid")" 2>/dev/null || true
  else
    haproxy -f "$RUN/haproxy.cfg" -c -q || die "haproxy configuration refused: $RUN/haproxy.cfg"
    haproxy -f "$RUN/haproxy.cfg"
  fi
  say "HAProxy on http://$ADDRESS:$PORT (sticky cookie WANGGE_APP) → sign in at http://$ADDRESS:$PORT/signin"
}

stop() {
  local f
  for f in "$RUN/haproxy.pid" "$RUN"/app*.pid "$(pgb_pid)"; do
    [ -f "$f" ] || continue
    if alive "$f"; then
      kill "$(cat "$f")" 2>/dev/null || true
      for _ in $(seq 50); do alive "$f" || break; sleep 0.2; done
      alive "$f" && kill -9 "$(cat "$f")" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  say "stopped"
}

status() {
  local f rc=0
  for f in "$RUN/haproxy.pid" "$RUN"/app*.pid "$(pgb_pid)"; do
    [ -f "$f" ] || continue
    if alive "$f"; then say "$(basename "$f" .pid): running (pid $(cat "$f"))"; else say "$(basename "$f" .pid): not running"; rc=1; fi
  done
  return $rc
}

case "${1:-start}" in
  start) start ;;
  pgbouncer) start_pgbouncer ;;  # PgBouncer alone (tests/test_pgbouncer.py)
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 start|stop|status" ;;
esac
