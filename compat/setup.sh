#!/usr/bin/env bash
# Installs what the compat suites need on a fresh machine, once; later runs
# find it in place and return at once.
#   - PostgreSQL 15 server binaries (the oracle every suite also runs against)
#   - pgjdbc (Debian's libpostgresql-jdbc-java) and a JDK to compile the Java suite
#   - a Python venv with psycopg 3, psycopg2, asyncpg and pytest
#   - node-pg through npm
# The venv lives outside the work tree ($TARN_COMPAT_CACHE, default
# ~/.cache/tarn-compat) so it survives between runs on the same machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${TARN_COMPAT_CACHE:-$HOME/.cache/tarn-compat}
mkdir -p "$cache"

need_apt=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15 postgresql-client-15)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
command -v javac >/dev/null || need_apt+=(default-jdk-headless)
command -v npm >/dev/null || need_apt+=(nodejs npm)
python3 -m venv --help >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "== compat setup: apt-get install ${need_apt[*]}"
    if [ "$(id -u)" != 0 ]; then echo "need root to install ${need_apt[*]}" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

venv=$cache/venv
stamp=$venv/.requirements
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" "$here/python/requirements.txt"; then
    echo "== compat setup: python venv $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/python/requirements.txt"
    cp "$here/python/requirements.txt" "$stamp"
fi

if [ ! -f "$here/node/node_modules/.package-lock.json" ] || [ "$here/node/package-lock.json" -nt "$here/node/node_modules/.package-lock.json" ]; then
    echo "== compat setup: npm ci (node-pg)"
    (cd "$here/node" && npm ci --silent --no-audit --no-fund)
fi
