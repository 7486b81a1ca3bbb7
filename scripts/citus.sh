#!/usr/bin/env bash
# A local Citus cluster for Wangge: one coordinator and two workers, three PostgreSQL clusters on
# their own ports beside (never instead of) the main cluster on 5432.
#
#   scripts/citus.sh [all]        build + install Citus if missing, start the clusters, database, migrations, distribute
#   scripts/citus.sh install [TARBALL]   only build and install Citus from a source tarball
#   scripts/citus.sh build [TARBALL]     the same build, installed into a scratch DESTDIR only
#                                        (WANGGE_CITUS_DESTDIR, default $BUILD_DIR/dest): nothing installed
#   scripts/citus.sh start        only create/start the three clusters and join the workers
#   scripts/citus.sh db           roles, database, extensions, migrations, `wangge db distribute`
#   scripts/citus.sh url          print the app's URL for the Citus database (WANGGE_CITUS_URL for the tests)
#   scripts/citus.sh stop         stop the three Citus clusters (the main cluster is left alone)
#
# Like scripts/bootstrap.sh, every step checks before it acts and can be run again at any time.
# Settings (environment): WANGGE_CITUS_TARBALL (default ../shared/vendor/citus-*.tar.gz),
# WANGGE_CITUS_PORTS ("5441 5442 5443": coordinator first), WANGGE_CITUS_DB (wangge_citus),
# WANGGE_CITUS_DISTRIBUTE (1; 0 leaves the tables on the coordinator, to load a large data set first).
#
# Why the pinned -dev packages: Debian's postgresql-server-dev-15 at its candidate version pulls the
# PostgreSQL server packages up with it (15.18 -> 15.20), and a cluster left running across that
# upgrade fails to load plpgsql.so on new connections. The headers are installed at exactly the
# running server's version instead, and the script refuses if apt would upgrade anything else.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
say() { printf '\033[1;35m[citus]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[citus] %s\033[0m\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

PG_MAJOR=${WANGGE_PG_MAJOR:-15}
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
read -r -a PORTS <<< "${WANGGE_CITUS_PORTS:-5441 5442 5443}"
NAMES=(citus_coord citus_w1 citus_w2)
CDB=${WANGGE_CITUS_DB:-wangge_citus}
BUILD_DIR=${WANGGE_CITUS_BUILD_DIR:-/tmp/wangge-citus-build}
SOCKET_DIR=${WANGGE_CITUS_SOCKET_DIR:-/var/run/postgresql}

citus_installed() { [ -f "/usr/lib/postgresql/$PG_MAJOR/lib/citus.so" ] && [ -f "/usr/share/postgresql/$PG_MAJOR/extension/citus.control" ]; }

# --- build dependencies, pinned to what is installed -------------------------------------------------
install_build_deps() {
  local server dev_pkgs=() plan
  server=$(dpkg-query -W -f='${Version}' "postgresql-$PG_MAJOR" 2>/dev/null) || die "postgresql-$PG_MAJOR is not installed (run scripts/bootstrap.sh system first)"
  dpkg-query -W -f='${Status} ${Version}' "postgresql-server-dev-$PG_MAJOR" 2>/dev/null | grep -q "install ok installed $server" \
    || dev_pkgs+=("postgresql-server-dev-$PG_MAJOR=$server")
  # the server was built with zstd, so the headers want zstd.h: the -dev at the installed library's version
  local zstd; zstd=$(dpkg-query -W -f='${Version}' libzstd1 2>/dev/null || true)
  if [ -n "$zstd" ] && ! dpkg-query -W -f='${Status}' libzstd-dev 2>/dev/null | grep -q 'install ok installed'; then dev_pkgs+=("libzstd-dev=$zstd"); fi
  for p in flex bison make gcc; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || dev_pkgs+=("$p"); done
  # The server's headers include gssapi.h and openssl/ssl.h. Their -dev packages exist here only at
  # a newer patch level than the installed libraries, and installing them would upgrade libkrb5/libssl
  # under the running clusters: their headers (same ABI) are unpacked into the build directory instead.
  HDR_CPPFLAGS=""
  if [ ! -f /usr/include/gssapi/gssapi.h ] || [ ! -f /usr/include/openssl/ssl.h ]; then
    local hdr=$BUILD_DIR/headers
    mkdir -p "$hdr/debs"
    say "unpacking krb5 and openssl headers into $hdr (no packages installed or upgraded)"
    (cd "$hdr/debs" && apt-get download krb5-multidev libkrb5-dev libssl-dev >/dev/null 2>&1) || die "apt-get download of krb5/openssl headers failed"
    for f in "$hdr"/debs/*.deb; do dpkg -x "$f" "$hdr/root"; done
    HDR_CPPFLAGS="-I$hdr/root/usr/include -I$hdr/root/usr/include/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
  fi
  [ ${#dev_pkgs[@]} -eq 0 ] && { say "build dependencies present"; return 0; }
  plan=$(as_root apt-get -s install -y "${dev_pkgs[@]}" 2>&1) || die "apt cannot install ${dev_pkgs[*]}: $plan"
  # 'Inst pkg [old]' = an upgrade of something installed: refuse rather than break running clusters
  if grep -E '^Inst [^ ]+ \[' <<< "$plan" | grep -q .; then
    die "installing ${dev_pkgs[*]} would upgrade installed packages:
$(grep -E '^Inst [^ ]+ \[' <<< "$plan")
refusing (it would break running PostgreSQL clusters); install matching headers by hand"
  fi
  say "installing build dependencies: ${dev_pkgs[*]}"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${dev_pkgs[@]}" >/dev/null
}

# Citus 13.2.2 declares a static have_createdb_privilege() that PostgreSQL 15.20's
# commands/dbcommands.h now exports: drop the static copy only when the server headers have it.
patch_if_needed() {
  local hdr; hdr="$("$PG_BIN/pg_config" --includedir-server)/commands/dbcommands.h"
  local compat=src/include/pg_version_compat.h
  grep -q 'have_createdb_privilege' "$hdr" 2>/dev/null || return 0
  grep -q '^have_createdb_privilege(void)' "$compat" || return 0
  say "server headers export have_createdb_privilege(): removing Citus's static copy ($compat)"
  python3 - "$compat" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r"\nstatic inline bool\nhave_createdb_privilege\(void\)\n\{.*?\n\}\n", "\n", s, count=1, flags=re.S)
s = s.replace('#define have_createdb_privilege() have_createdb_privilege()', '#include "commands/dbcommands.h"')
open(p, "w").write(s)
PY
}

# Build Citus from a source tarball into $BUILD_DIR (and, with a DESTDIR, install it there only).
build_citus() {
  local tarball=$1
  [ -n "$tarball" ] && [ -f "$tarball" ] || die "no Citus source tarball (give one: scripts/citus.sh install citus-vX.tar.gz)"
  rm -rf "$BUILD_DIR" && mkdir -p "$BUILD_DIR"
  install_build_deps
  say "building Citus from $tarball in $BUILD_DIR (nice 19; a few minutes on 2 cores)"
  mkdir -p "$BUILD_DIR/src"
  tar -xzf "$tarball" -C "$BUILD_DIR/src"
  SRC=$BUILD_DIR/src; [ -f "$SRC/configure" ] || SRC=$(dirname "$(ls "$BUILD_DIR"/src/*/configure | head -1)")
  (cd "$SRC" && patch_if_needed \
     && PG_CONFIG="$PG_BIN/pg_config" nice -n 19 ./configure --without-libcurl --without-lz4 >"$BUILD_DIR/configure.log" 2>&1 \
     && nice -n 19 make -j2 CPPFLAGS="$HDR_CPPFLAGS" >"$BUILD_DIR/make.log" 2>&1) || die "build failed: see $BUILD_DIR/configure.log and make.log"
}

default_tarball() {
  local tarball=${1:-${WANGGE_CITUS_TARBALL:-}}
  if [ -z "$tarball" ]; then tarball=$(ls "$ROOT"/../shared/vendor/citus-*.tar.gz /work/shared/vendor/citus-*.tar.gz 2>/dev/null | tail -1 || true); fi
  echo "$tarball"
}

step_install() {
  if citus_installed; then say "Citus installed ($(grep default_version /usr/share/postgresql/$PG_MAJOR/extension/citus.control | cut -d"'" -f2))"; return 0; fi
  build_citus "$(default_tarball "${1:-}")"
  (cd "$SRC" && as_root make install >"$BUILD_DIR/install.log" 2>&1) || die "make install failed: $BUILD_DIR/install.log"
  citus_installed || die "installed, but citus.so is not where PostgreSQL $PG_MAJOR looks"
  say "Citus installed"
}

# The same build, installed into a scratch directory only (what step_install would put in place):
# proves a tarball builds here without touching the running clusters' files.
step_build() {
  local dest=${WANGGE_CITUS_DESTDIR:-$BUILD_DIR/dest}
  build_citus "$(default_tarball "${1:-}")"
  (cd "$SRC" && make install DESTDIR="$dest" >"$BUILD_DIR/install.log" 2>&1) || die "make install DESTDIR=$dest failed: $BUILD_DIR/install.log"
  [ -f "$dest/usr/lib/postgresql/$PG_MAJOR/lib/citus.so" ] && [ -f "$dest/usr/share/postgresql/$PG_MAJOR/extension/citus.control" ] \
    || die "built, but citus.so / citus.control are not under $dest"
  say "built into $dest: $(grep default_version "$dest/usr/share/postgresql/$PG_MAJOR/extension/citus.control" | cut -d"'" -f2), nothing installed"
}

# --- three clusters -----------------------------------------------------------------------------------
step_start() {
  citus_installed || die "Citus is not installed: scripts/citus.sh install"
  local i
  for i in 0 1 2; do
    local name=${NAMES[$i]} port=${PORTS[$i]}
    if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$PG_MAJOR/$name"; then
      say "creating cluster $PG_MAJOR/$name on port $port"
      as_root pg_createcluster "$PG_MAJOR" "$name" -p "$port" >/dev/null
    fi
    local conf=/etc/postgresql/$PG_MAJOR/$name/conf.d/wangge-citus.conf
    if [ ! -f "$conf" ]; then
      # small: three clusters share this machine with the main one
      as_root tee "$conf" >/dev/null <<EOF
# written by wangge scripts/citus.sh
shared_preload_libraries = 'citus'
listen_addresses = 'localhost'
max_connections = 100
shared_buffers = 256MB
max_prepared_transactions = 100
# the signed scope (SET LOCAL wangge.scope) follows each transaction to the workers
citus.propagate_set_commands = 'local'
# the trigger that keeps a building's copies in its grid (migration 0021) runs on the shards
citus.enable_unsafe_triggers = on
EOF
      as_root chown postgres:postgres "$conf"
      pg_lsclusters -h | awk -v n="$name" '$2==n {print $4}' | grep -q online && as_root pg_ctlcluster "$PG_MAJOR" "$name" restart
    fi
    # The nodes reach each other over the Unix socket (they are named by its directory, SOCKET_DIR):
    # the superuser by peer authentication (no password of its set or kept anywhere), the owner and
    # app roles by password (pg_dist_authinfo). One line before Debian's "local all all peer".
    local hba=/etc/postgresql/$PG_MAJOR/$name/pg_hba.conf
    if ! grep -q 'wangge scripts/citus.sh' "$hba"; then
      load_env
      say "pg_hba of $name: $OWNER and $APP by password over the socket"
      as_root python3 - "$hba" "$OWNER,$APP" <<'PY'
import re, sys
path, roles = sys.argv[1], sys.argv[2]
s = open(path).read()
line = (f"# wangge scripts/citus.sh: nodes reach each other over the socket; the app's roles by password\n"
        f"local   all             {roles:<40}scram-sha-256\n")
m = re.search(r"^local\s+all\s+all\s+", s, flags=re.M)
s = s[:m.start()] + line + s[m.start():] if m else s + line
open(path, "w").write(s)
PY
      pg_lsclusters -h | awk -v n="$name" '$2==n {print $4}' | grep -q online && as_root pg_ctlcluster "$PG_MAJOR" "$name" reload
    fi
    if ! pg_lsclusters -h | awk -v n="$name" '$2==n {print $4}' | grep -q online; then
      say "starting $PG_MAJOR/$name"
      as_root pg_ctlcluster "$PG_MAJOR" "$name" start
    fi
    for _ in $(seq 1 30); do pg_isready -q -h localhost -p "$port" && break; sleep 1; done
    pg_isready -q -h localhost -p "$port" || die "$name did not come up on port $port"
  done
}

load_env() {
  [ -f .env ] || die "no .env: run scripts/bootstrap.sh db first (it generates the passwords)"
  set -a; . ./.env; set +a
  OWNER=${WANGGE_DB_OWNER:-wangge_owner}
  APP=${WANGGE_DB_APP_USER:-wangge_app}
}

psql_on() { local port=$1 db=$2; shift 2; as_postgres psql -q -X -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$port" -d "$db" "$@"; }

step_db() {
  load_env
  local i port
  # the same roles, database and extensions on every node (Citus needs them to exist on the workers)
  for i in 0 1 2; do
    port=${PORTS[$i]}
    psql_on "$port" postgres -v owner="$OWNER" -v app="$APP" -v opw="$WANGGE_DB_OWNER_PASSWORD" -v apw="$WANGGE_DB_APP_PASSWORD" \
      -v db="$CDB" <<'SQL'
SET citus.enable_create_role_propagation = off;
SELECT format('CREATE ROLE %I LOGIN', :'owner') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
ALTER ROLE :"owner" LOGIN PASSWORD :'opw' NOSUPERUSER NOCREATEROLE;
ALTER ROLE :"app" LOGIN PASSWORD :'apw' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8'' TEMPLATE template0', :'db', :'owner')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
    psql_on "$port" "$CDB" -v app="$APP" -v owner="$OWNER" <<'SQL'
CREATE EXTENSION IF NOT EXISTS citus;
-- (a worker that has joined refuses even CREATE EXTENSION IF NOT EXISTS: only when it is missing)
SELECT 'CREATE EXTENSION postgis' WHERE NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis') \gexec
-- a worker that has joined takes schema grants from the coordinator only (Citus propagates them)
SELECT s FROM (VALUES ('REVOKE CREATE ON SCHEMA public FROM PUBLIC'), (format('GRANT USAGE, CREATE ON SCHEMA public TO %I', :'owner')),
                      (format('GRANT USAGE ON SCHEMA public TO %I', :'app'))) v(s)
 WHERE (SELECT groupid FROM pg_dist_local_group) = 0 \gexec
SQL
  done
  # how the nodes reach each other: over the socket, the superuser by peer authentication (its
  # password, if it has one, is left alone), the owner and app roles by password
  for i in 0 1 2; do
    psql_on "${PORTS[$i]}" "$CDB" -v owner="$OWNER" -v app="$APP" -v opw="$WANGGE_DB_OWNER_PASSWORD" \
      -v apw="$WANGGE_DB_APP_PASSWORD" <<'SQL'
DELETE FROM pg_dist_authinfo WHERE nodeid = 0 AND rolename IN (:'owner', :'app', 'postgres');
INSERT INTO pg_dist_authinfo (nodeid, rolename, authinfo) VALUES
  (0, :'owner', 'password=' || :'opw'), (0, :'app', 'password=' || :'apw');
SQL
  done
  psql_on "${PORTS[0]}" "$CDB" -v s="$SOCKET_DIR" -v c="${PORTS[0]}" -v w1="${PORTS[1]}" -v w2="${PORTS[2]}" <<'SQL'
-- nodes named 'localhost' by an earlier version of this script (TCP, the superuser by password): to the socket
SELECT citus_update_node(nodeid, :'s', nodeport) FROM pg_dist_node WHERE nodename <> :'s' AND nodeport IN (:c, :w1, :w2);
SELECT citus_set_coordinator_host(:'s', :c) WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE groupid = 0);
SELECT citus_add_node(:'s', :w1) WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodeport = :w1);
SELECT citus_add_node(:'s', :w2) WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodeport = :w2);
SQL
  say "nodes: $(psql_on "${PORTS[0]}" "$CDB" -Atc "SELECT string_agg(nodename || ':' || nodeport || CASE WHEN groupid = 0 THEN ' (coordinator)' ELSE '' END, ', ' ORDER BY nodeport) FROM pg_dist_node")"
  say "migrating $CDB on the coordinator"
  WANGGE_DB_PORT=${PORTS[0]} WANGGE_DB_NAME=$CDB .venv/bin/wangge db up
  if [ "${WANGGE_CITUS_DISTRIBUTE:-1}" = 1 ]; then
    say "distributing the large tables"
    WANGGE_DB_PORT=${PORTS[0]} WANGGE_DB_NAME=$CDB .venv/bin/wangge db distribute
  else
    say "WANGGE_CITUS_DISTRIBUTE=0: tables left on the coordinator (load, then: wangge db distribute)"
  fi
}

step_url() {
  load_env >/dev/null
  echo "postgresql://${APP}:${WANGGE_DB_APP_PASSWORD}@localhost:${PORTS[0]}/${CDB}"
}

step_stop() {
  local name
  for name in "${NAMES[@]}"; do
    pg_lsclusters -h | awk -v n="$name" '$2==n {print $4}' | grep -q online && as_root pg_ctlcluster "$PG_MAJOR" "$name" stop
  done
  return 0
}

case "${1:-all}" in
  install) step_install "${2:-}" ;;
  build) step_build "${2:-}" ;;
  start) step_start ;;
  db) step_db ;;
  url) step_url ;;
  stop) step_stop ;;
  all) step_install "${2:-}"; step_start; step_db; say "ready (the app URL, with its password: scripts/citus.sh url)" ;;
  *) die "unknown step: $1 (install|build|start|db|url|stop|all)" ;;
esac
