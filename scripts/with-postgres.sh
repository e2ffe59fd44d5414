#!/usr/bin/env bash
# Runs COMMAND... with a throwaway PostgreSQL 15 cluster and TEST_POSTGRES_URL pointing at it.
#
#   scripts/with-postgres.sh cargo test --workspace
#
# The cluster lives in a fresh temporary directory, listens on a free loopback port only, runs with
# fsync and synchronous_commit on (the durability the backend relies on), and is stopped and removed
# when the command ends, whatever its outcome. There is no Docker on our machines: the server binaries
# come from Debian's PostgreSQL 15 (installed with apt-get only when missing). initdb refuses to run as
# root, so the cluster runs as the `postgres` system user when invoked as root.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    echo "== with-postgres: installing PostgreSQL 15 (binaries missing)" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "with-postgres: $PG_BIN is missing and we are not root; install Debian's postgresql-15" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql-15 >/dev/null || apt-get install -y -qq postgresql >/dev/null
fi

# Run cluster commands as `postgres` when we are root; as ourselves otherwise.
as_cluster_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

WORK_DIR=$(mktemp -d /tmp/tsunagu-pg.XXXXXX)
DATA_DIR="$WORK_DIR/data"
SOCKET_DIR="$WORK_DIR/socket"
mkdir -p "$SOCKET_DIR"
if [ "$(id -u)" -eq 0 ]; then
    chown -R postgres: "$WORK_DIR"
fi

cleanup() {
    local status=$?
    if [ -f "$DATA_DIR/postmaster.pid" ]; then
        as_cluster_user "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK_DIR"
    exit "$status"
}
trap cleanup EXIT INT TERM

# A free loopback port: bind port 0 and read back what the kernel chose.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || true)
if [ -z "$PORT" ]; then
    PORT=$(( 20000 + RANDOM % 20000 ))
fi

PASSWORD=tsunagu-test
echo "$PASSWORD" >"$WORK_DIR/pwfile"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$WORK_DIR/pwfile"
fi
as_cluster_user "$PG_BIN/initdb" -D "$DATA_DIR" -U tsunagu --pwfile="$WORK_DIR/pwfile" \
    --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$WORK_DIR/initdb.log" 2>&1 \
    || { cat "$WORK_DIR/initdb.log" >&2; exit 1; }
as_cluster_user "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$WORK_DIR/server.log" -w -t 60 start \
    -o "-k $SOCKET_DIR -p $PORT -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=200" \
    >/dev/null || { cat "$WORK_DIR/server.log" >&2; exit 1; }

export TEST_POSTGRES_URL="postgres://tsunagu:$PASSWORD@127.0.0.1:$PORT/postgres"
echo "== with-postgres: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (cluster in $WORK_DIR)" >&2

# Not `exec`: the trap must run after the command to stop the cluster.
set +e
"$@"
status=$?
set -e
exit "$status"
