#!/usr/bin/env bash
# Every SPEC §8 figure in one command, in the order docs/BENCHMARKS.md
# gives them: one full inventory against fusioninventory-agent, the running
# agent beside node_exporter, zabbix-agent and fusioninventory-agent,
# collector ingest at 1,000 and 10,000 simulated agents (and 100,000 where
# the machine allows that many connections), the store's size per host after
# a simulated day, and queries plus restart at 100,000 hosts. Each script's
# table goes to OUT/<name>.md and its progress to OUT/<name>.log.
#
#   bench/all.sh                       (about 2 h 15 min on 2 cores; needs root
#                                       for the peers' packages, ~20 GB of disk)
#   SKIP="idle query" bench/all.sh     (leave some out)
#   IDLE_PERIOD=600 INGEST_DURATION=20s QUERY_HOSTS=10000 bench/all.sh
#   OUT=/tmp/figures bench/all.sh
#
# Ingest at 10,000 agents sends 50-100 packages per host (1,000-3,000 would
# need ~13 GB of sled and ten minutes of inventories before the health phase);
# the query store has 20-40 packages per host (1,000-3,000 would need ~110
# GB; see docs/BENCHMARKS.md for why the query figures do not depend on it).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-target/bench-$(date -u +%Y%m%dT%H%M%SZ)}
skip=" ${SKIP:-} "
mkdir -p "$out"

run() { # name, then the command
  local name=$1; shift
  if [[ $skip == *" $name "* ]]; then echo "== $name: skipped (SKIP)" >&2; return; fi
  echo "== $name: $* ($(date -u +%H:%M:%S) UTC)" >&2
  "$@" > "$out/$name.md" 2> "$out/$name.log"
  cat "$out/$name.md"
}

run inventory bench/inventory.sh 10
run idle env PERIOD="${IDLE_PERIOD:-3600}" bench/idle.sh
run ingest-1000 env DURATION="${INGEST_DURATION:-60s}" bench/ingest.sh 1000
run ingest-10000 env DURATION="${INGEST_DURATION:-60s}" PACKAGES=50..100 bench/ingest.sh 10000
# One TLS connection per simulated agent on each side: 100,000 agents need
# that many descriptors per process.
if [ "$(ulimit -n)" -ge 100100 ] || ulimit -n 100100 2>/dev/null; then
  run ingest-100000 env DURATION="${INGEST_DURATION:-60s}" PACKAGES=20..40 bench/ingest.sh 100000
else
  echo "== ingest-100000: not run: ulimit -n is $(ulimit -n) and cannot be raised to 100,100 here" | tee "$out/ingest-100000.md" >&2
fi
run store-day env BACKFILL=24h DURATION=20s bench/ingest.sh 200
run query env HOSTS="${QUERY_HOSTS:-100000}" PACKAGES=20..40 RUNS="${QUERY_RUNS:-200}" bench/query.sh
echo "== done: $out" >&2
