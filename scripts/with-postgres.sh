#!/usr/bin/env bash
# Runs COMMAND... with throwaway PostgreSQL 15 clusters and the URLs of their admin databases in
# the environment:
#
#   scripts/with-postgres.sh cargo test --workspace
#
#   TEST_POSTGRES_URL          one cluster (the single-node store; also the coordinator of the
#                              sharded tests)
#   TEST_POSTGRES_SHARD_URLS   three more clusters, separated by spaces: the shard servers
#   TEST_POSTGRES_PRIMARY_URL  a primary committing with synchronous_commit = remote_apply ...
#   TEST_POSTGRES_STANDBY_URL  ... and its hot standby (streaming replication, synchronous)
#
# Every cluster lives under one fresh temporary directory, listens on a free loopback port only,
# runs with fsync on, and is stopped and removed when the command ends, whatever its outcome.
# scripts/pg-cluster.sh does the work (and installs Debian's PostgreSQL 15 when it is missing).
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

CLUSTER="$(cd "$(dirname "$0")" && pwd)/pg-cluster.sh"
WORK_DIR=$(mktemp -d /tmp/tsunagu-pg.XXXXXX)
# The cluster user must reach the directories under it.
chmod 755 "$WORK_DIR"
CLUSTERS=()

cleanup() {
    local status=$?
    local index
    # Standbys were started last: stop in reverse order.
    for ((index = ${#CLUSTERS[@]} - 1; index >= 0; index--)); do
        "$CLUSTER" stop "${CLUSTERS[$index]}" immediate >/dev/null 2>&1 || true
    done
    rm -rf "$WORK_DIR"
    exit "$status"
}
trap cleanup EXIT INT TERM

url_of() {
    echo "postgres://tsunagu:tsunagu-test@127.0.0.1:$1/postgres"
}

# Starts cluster NAME and prints its port. Called inside `$(...)`, a subshell: the caller records
# the directory in CLUSTERS first (an assignment in here would not reach the cleanup).
start() {
    local name=$1
    shift
    "$CLUSTER" start "$WORK_DIR/$name" "$@"
}

CLUSTERS+=("$WORK_DIR/main")
MAIN_PORT=$(start main)
export TEST_POSTGRES_URL
TEST_POSTGRES_URL=$(url_of "$MAIN_PORT")

SHARD_URLS=()
for shard in 0 1 2; do
    CLUSTERS+=("$WORK_DIR/shard$shard")
    SHARD_URLS+=("$(url_of "$(start "shard$shard")")")
done
export TEST_POSTGRES_SHARD_URLS="${SHARD_URLS[*]}"

CLUSTERS+=("$WORK_DIR/primary")
PRIMARY_PORT=$(start primary "synchronous_standby_names=*" synchronous_commit=remote_apply)
CLUSTERS+=("$WORK_DIR/standby")
STANDBY_PORT=$("$CLUSTER" standby "$WORK_DIR/standby" "$WORK_DIR/primary" max_standby_streaming_delay=5s)
export TEST_POSTGRES_PRIMARY_URL TEST_POSTGRES_STANDBY_URL
TEST_POSTGRES_PRIMARY_URL=$(url_of "$PRIMARY_PORT")
TEST_POSTGRES_STANDBY_URL=$(url_of "$STANDBY_PORT")

# Until the standby is attached as synchronous, commits on the primary would not wait for it.
for _ in $(seq 60); do
    state=$(PGPASSWORD=tsunagu-test psql -X -tA -h 127.0.0.1 -p "$PRIMARY_PORT" -U tsunagu -d postgres \
        -c "SELECT sync_state FROM pg_stat_replication" 2>/dev/null || true)
    [ "$state" = sync ] && break
    sleep 0.5
done
if [ "${state:-}" != sync ]; then
    echo "with-postgres: the standby did not become synchronous" >&2
    exit 1
fi

echo "== with-postgres: PostgreSQL $(/usr/lib/postgresql/15/bin/postgres --version | awk '{print $3}'):" \
    "main on $MAIN_PORT, 3 shard servers, primary $PRIMARY_PORT with standby $STANDBY_PORT (in $WORK_DIR)" >&2

# Not `exec`: the trap must run after the command to stop the clusters.
set +e
"$@"
status=$?
set -e
exit "$status"
