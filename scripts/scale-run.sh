#!/bin/sh
# The scale run of docs/benchmarks.md ("Scale run"): N synthetic people generated, imported into
# their own SQLite store, then the service started on that store (cold start timed) and the load
# driver's workload run against it.
#
#   scripts/scale-run.sh PEOPLE DIR
#
# DIR/p<PEOPLE>   the synthetic population (tsunagu synth; kept, reused when present)
# DIR/db<PEOPLE>  the store (tsunagu import; reused when present: delete it to import again)
# DIR/load<PEOPLE> the server's data files, logs and the load driver's results:
#   import.log       the import's summary and /usr/bin/time figures
#   cold-start.txt   three starts with the page cache dropped (root only), to the first /readyz 200
#   closed.*         closed loop, 32 connections, default mix
#   open200.*        open loop, 200 operations/s, default mix
#   reads200.*       open loop, 200 operations/s, 60 s, no submissions and more lab searches and
#                    emergency summaries: their latency without the submissions' write stalls
#
# 100,000 people need ~6 GB for the population and ~21 GB for the store, and ~20 minutes to import
# on 2 cores.
set -eu
people=${1:?usage: scripts/scale-run.sh PEOPLE DIR}
dir=${2:?usage: scripts/scale-run.sh PEOPLE DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --manifest-path "$root/Cargo.toml" -p tsunagu -p loadgen
tsunagu=${CARGO_TARGET_DIR:-$root/target}/release/tsunagu
loadgen=${CARGO_TARGET_DIR:-$root/target}/release/loadgen
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
population=$dir/p$people
store=$dir/db$people
load=$dir/load$people
database=sqlite://$store/tsunagu.db
mkdir -p "$load"

if [ ! -d "$population" ]; then
  "$tsunagu" synth --patients "$people" --seed 7 --out "$population"
fi
if [ ! -f "$store/tsunagu.db" ]; then
  mkdir -p "$store"
  /usr/bin/time -v "$tsunagu" --database "$database" import "$population/bundles" \
    > "$load/import.log" 2>&1
  du -sh "$store" >> "$load/import.log"
fi
grep -E "imported|Maximum resident|Elapsed" "$load/import.log" || true

data_flags="--registry $load/registry.json --patients $load/patients.json \
  --service-key $load/service-key.pem --audit-log $load/audit.sqlite \
  --audit-key $load/audit-key.pem --alerts $load/alerts.jsonl"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Cold start: from exec to the first /readyz 200, with the page cache dropped when we may; after a
# first start (not timed) that creates the service's keys and audit log, as a deployment does once.
: > "$load/cold-start.txt"
for attempt in 0 1 2 3; do
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
  started=$(date +%s%N)
  # shellcheck disable=SC2086
  "$tsunagu" serve --listen "127.0.0.1:$port" --database "$database" $data_flags \
    2> "$load/cold-serve.log" &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/readyz"; do sleep 0.005; done
  ready=$(date +%s%N)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  if [ "$attempt" != 0 ]; then
    echo "cold start $attempt: $(( (ready - started) / 1000000 )) ms, RSS $rss kB" >> "$load/cold-start.txt"
  fi
  kill -TERM "$pid"
  wait "$pid" || true
done
if [ ! -w /proc/sys/vm/drop_caches ]; then
  echo "(page cache not dropped: not root)" >> "$load/cold-start.txt"
fi
cat "$load/cold-start.txt"

# The store into the page cache, as it is on a server that has been up for a while.
cat "$store/tsunagu.db" > /dev/null

limits="--rate-limit 100000 --rate-burst 100000"
run() {
  name=$1
  shift
  # shellcheck disable=SC2086
  "$loadgen" --data "$load" --spawn "$tsunagu" --database "$database" \
    --json "$load/$name.json" --svg "$load/$name.svg" "$@" -- $limits > "$load/$name.txt" 2>&1
  grep -E "^(class|clinician_labs|emergency_summary|overall|server:)" "$load/$name.txt"
}
run closed
run open200 --rate 200
run reads200 --rate 200 --duration 60s \
  --mix submit_new=0,resubmit=0,emergency=20,clinician_labs=30
