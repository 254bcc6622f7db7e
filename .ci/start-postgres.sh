#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on loopback for the store tests and prints its SQLAlchemy URL.
# Installs Debian's postgresql when missing and possible; prints nothing (exit 1) when it cannot.
set -u
# A free loopback port unless one is given: a server left by an earlier run must not block this one.
PORT=${EMBSR_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$bin" ] || exit 1
dir=$(mktemp -d /tmp/embsr-pg.XXXXXX)
run_as() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$dir"
run_as "$bin/initdb -D $dir/data -A trust -U postgres" >/dev/null 2>&1 || exit 1
run_as "$bin/pg_ctl -D $dir/data -l $dir/log -w -o \"-p $PORT -k $dir -h 127.0.0.1\" start" >/dev/null 2>&1 || exit 1
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
