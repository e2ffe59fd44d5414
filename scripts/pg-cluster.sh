#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL 15 cluster that lives in one directory.
#
#   scripts/pg-cluster.sh start DIR [NAME=VALUE...]   # prints the port on stdout
#   scripts/pg-cluster.sh standby DIR PRIMARY_DIR [NAME=VALUE...]
#   scripts/pg-cluster.sh stop DIR [MODE]      # MODE: fast (default), immediate or smart
#   scripts/pg-cluster.sh freeze DIR           # SIGSTOP the server's processes (a hung database)
#   scripts/pg-cluster.sh thaw DIR             # SIGCONT them
#
# `start` on a new or empty DIR creates the cluster (initdb: superuser `tsunagu`, password
# `tsunagu-test`, scram-sha-256, UTF8, C locale) on a free loopback port; `start` on a DIR whose
# cluster was stopped starts it again on the same port with the same data, so a test can take the
# database away and bring it back. The server listens on 127.0.0.1 only, with fsync and
# synchronous_commit on (the durability the backends rely on). Its URL is
# postgres://tsunagu:tsunagu-test@127.0.0.1:PORT/postgres; this script never prints it.
# NAME=VALUE settings are written to the new cluster's postgresql.conf (so they hold after a
# restart too); they are ignored when DIR already holds a cluster.
#
# `standby` creates DIR as a hot standby of the running cluster in PRIMARY_DIR (pg_basebackup with
# streaming replication, `-R`), starts it on a free port and prints the port. For synchronous
# replication start the primary with synchronous_standby_names='*' and a synchronous_commit level.
#
# DIR holds data/ (the cluster), socket/, server.log and port. Removing DIR is the caller's job,
# after `stop`. There is no Docker on our machines: the server binaries come from Debian's
# PostgreSQL 15 (installed with apt-get only when missing, and only as root). initdb refuses to run
# as root, so the cluster runs as the `postgres` system user when invoked as root; DIR's parents must
# then be searchable by that user (a directory under /tmp is).
set -euo pipefail

usage() {
    echo "usage: $0 start DIR [NAME=VALUE...] | standby DIR PRIMARY_DIR [NAME=VALUE...]" >&2
    echo "       $0 stop DIR [fast|immediate|smart] | freeze DIR | thaw DIR" >&2
    exit 2
}

[ "$#" -ge 2 ] || usage
ACTION=$1
DIR=$2
PG_BIN=/usr/lib/postgresql/15/bin
PASSWORD=tsunagu-test

# Run cluster commands as `postgres` when we are root; as ourselves otherwise.
as_cluster_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

install_if_missing() {
    if [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]; then
        return
    fi
    echo "== pg-cluster: installing PostgreSQL 15 (binaries missing)" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "pg-cluster: $PG_BIN is missing and we are not root; install Debian's postgresql-15" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql-15 >/dev/null || apt-get install -y -qq postgresql >/dev/null
}

# A free loopback port: bind port 0 and read back what the kernel chose.
free_port() {
    local port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || true)
    if [ -z "$port" ]; then
        port=$(( 20000 + RANDOM % 20000 ))
    fi
    echo "$port"
}

start() {
    install_if_missing
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    local data="$DIR/data" socket="$DIR/socket"
    if [ ! -f "$data/PG_VERSION" ]; then
        mkdir -p "$socket"
        echo "$PASSWORD" >"$DIR/pwfile"
        free_port >"$DIR/port"
        if [ "$(id -u)" -eq 0 ]; then
            chown -R postgres: "$DIR"
        fi
        as_cluster_user "$PG_BIN/initdb" -D "$data" -U tsunagu --pwfile="$DIR/pwfile" \
            --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
        # Defaults first: the caller's settings come later in the file, and win.
        write_settings "$data" fsync=on synchronous_commit=on max_connections=200 "$@"
    fi
    run_server
}

# Appends NAME=VALUE settings to the postgresql.conf in DATA.
write_settings() {
    local data=$1 setting
    shift
    for setting in "$@"; do
        case "$setting" in
            *=*) ;;
            *) echo "pg-cluster: a setting must be NAME=VALUE" >&2; exit 2 ;;
        esac
        printf "%s = '%s'\n" "${setting%%=*}" "${setting#*=}" | as_cluster_user tee -a "$data/postgresql.conf" >/dev/null
    done
}

# Starts the server of the cluster in DIR on its port and prints the port.
run_server() {
    local data="$DIR/data" socket="$DIR/socket" port
    port=$(cat "$DIR/port")
    as_cluster_user "$PG_BIN/pg_ctl" -D "$data" -l "$DIR/server.log" -w -t 60 start \
        -o "-k $socket -p $port -c listen_addresses=127.0.0.1" \
        >/dev/null || { tail -n 50 "$DIR/server.log" >&2; exit 1; }
    echo "$port"
}

standby() {
    local primary
    primary=$(cd "$1" && pwd)
    shift
    install_if_missing
    [ -f "$primary/port" ] || { echo "pg-cluster: no cluster in PRIMARY_DIR" >&2; exit 1; }
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    mkdir -p "$DIR/socket"
    free_port >"$DIR/port"
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$DIR"
    fi
    as_cluster_user env PGPASSWORD="$PASSWORD" "$PG_BIN/pg_basebackup" -h 127.0.0.1 \
        -p "$(cat "$primary/port")" -U tsunagu -D "$DIR/data" -R -X stream >"$DIR/basebackup.log" 2>&1 \
        || { cat "$DIR/basebackup.log" >&2; exit 1; }
    # A standby takes the primary's settings with its copy; its own go last and win.
    write_settings "$DIR/data" hot_standby=on hot_standby_feedback=on "$@"
    run_server
}

stop() {
    local mode=${1:-fast}
    case "$mode" in
        fast | immediate | smart) ;;
        *) usage ;;
    esac
    if [ -f "$DIR/data/postmaster.pid" ]; then
        # A frozen server could not stop, and pg_ctl would wait for it.
        signal_server CONT 2>/dev/null || true
        as_cluster_user "$PG_BIN/pg_ctl" -D "$DIR/data" -m "$mode" -w -t 60 stop >/dev/null
    fi
}

# Sends SIGNAL to the postmaster and its children (the backends and auxiliary processes). The
# postmaster goes first when stopping, so that it cannot start a new child meanwhile; last when
# continuing.
signal_server() {
    local signal=$1 postmaster children
    [ -f "$DIR/data/postmaster.pid" ] || { echo "pg-cluster: the cluster in DIR is not running" >&2; exit 1; }
    postmaster=$(head -n 1 "$DIR/data/postmaster.pid")
    if [ "$signal" = STOP ]; then
        kill -STOP "$postmaster"
        children=$(pgrep -P "$postmaster" || true)
        # shellcheck disable=SC2086 # one pid per word
        [ -z "$children" ] || kill -STOP $children
    else
        children=$(pgrep -P "$postmaster" || true)
        # shellcheck disable=SC2086
        [ -z "$children" ] || kill -CONT $children
        kill -CONT "$postmaster"
    fi
}

case "$ACTION" in
    start) shift 2; start "$@" ;;
    standby) [ "$#" -ge 3 ] || usage; shift 2; standby "$@" ;;
    stop) [ "$#" -le 3 ] || usage; stop "${3:-fast}" ;;
    freeze) [ "$#" -eq 2 ] || usage; signal_server STOP ;;
    thaw) [ "$#" -eq 2 ] || usage; signal_server CONT ;;
    *) usage ;;
esac
