#!/usr/bin/env bash
# The test PostgreSQL: Debian's postgresql-15 (installed if missing) with a data directory
# ($OPENLEDGER_HOME/postgres) and a port ($OPENLEDGER_POSTGRES_PORT, default 55432) of its own.
#   scripts/postgres.sh start   starts it if it is not running; prints its admin URL
#   scripts/postgres.sh stop    stops it
# The server runs as the `postgres` user (it refuses root), trusts local connections and runs
# with fsync off: it holds test databases only.
source "$(dirname "$0")/lib.sh"
PGBIN=/usr/lib/postgresql/15/bin
DATA="$OPENLEDGER_HOME/postgres"
PORT="${OPENLEDGER_POSTGRES_PORT:-55432}"
as_postgres() { runuser -u postgres -- "$@"; }

case "${1:-}" in
  start)
    if [ ! -x "$PGBIN/initdb" ]; then
      log "apt-get install postgresql-15"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
    fi
    mkdir -p "$DATA"
    chown postgres:postgres "$DATA"
    chmod 700 "$DATA"
    # The server must reach its directory: let it traverse (not list) the folders above.
    dir="$(dirname "$DATA")"
    while [ "$dir" != / ]; do
      as_postgres test -x "$dir" || chmod o+x "$dir"
      dir="$(dirname "$dir")"
    done
    if [ ! -f "$DATA/PG_VERSION" ]; then
      as_postgres "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust >/dev/null
    fi
    if ! as_postgres "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
      as_postgres "$PGBIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
        -o "-p $PORT -k $DATA -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null
    fi
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    if [ -f "$DATA/PG_VERSION" ]; then
      as_postgres "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
