#!/usr/bin/env bash
# Builds and installs the pgvector extension for the local PostgreSQL (Debian 12 ships PostgreSQL 15
# but no pgvector package): the source package of Debian 13 (trixie), fetched through a private apt
# configuration under var/ so /etc/apt stays untouched, compiled against postgresql-server-dev.
# Idempotent; needs root. Used by `make system-deps`.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PGVECTOR_VERSION="${PGVECTOR_VERSION:-0.8.0}"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${ROOT}/var/pgvector-build"

if [ ! -x "$PG_CONFIG" ]; then
    echo "install-pgvector: PostgreSQL ${PG_MAJOR} is not installed (no ${PG_CONFIG}); pgvector tests are skipped." >&2
    exit 0
fi
if [ -f "$("$PG_CONFIG" --sharedir)/extension/vector--${PGVECTOR_VERSION}.sql" ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "install-pgvector: run as root to build pgvector (its tests are skipped meanwhile)." >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
missing=""
for pkg in "postgresql-server-dev-${PG_MAJOR}" dpkg-dev gcc make; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
fi

mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/src"
cat >"$WORK/apt/sources.list" <<SOURCES
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
SOURCES
APT_OPTS=(
    -o "Dir::Etc::SourceList=$WORK/apt/sources.list"
    -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$WORK/apt/lists"
    -o "Dir::Cache=$WORK/apt/cache"
    -o "APT::Sandbox::User=root"
)
apt-get "${APT_OPTS[@]}" update -qq
cd "$WORK/src"
rm -rf "pgvector-${PGVECTOR_VERSION}"
apt-get "${APT_OPTS[@]}" source -qq "pgvector=${PGVECTOR_VERSION}-1" >/dev/null \
    || apt-get "${APT_OPTS[@]}" source -qq pgvector >/dev/null
cd "pgvector-${PGVECTOR_VERSION}"
# OPTFLAGS: portable code (no -march=native), so the build runs on any x86-64 machine.
make -s PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "install-pgvector: pgvector ${PGVECTOR_VERSION} installed for PostgreSQL ${PG_MAJOR}."
