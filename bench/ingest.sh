#!/usr/bin/env bash
# Collector ingest (SPEC §8: >= 10,000 health reports/s, p99 ack < 100 ms on
# 2 cores). For each fleet size N: a fresh release collector in a temp dir
# (sled on the local disk), census-loadgen enrolls N simulated agents over
# real mutual TLS, sends each a full inventory, then health batches for
# DURATION at an interval chosen so the fleet offers RATE reports/s
# (interval = N / RATE). Then the collector is stopped and started again and
# the time to its `ready` line is measured, with the N hosts stored.
#
#   bench/ingest.sh [N...]            (default: 1000 10000)
#   DURATION=60s RATE=10000 PACKAGES=1000..3000 CONCURRENCY=256 bench/ingest.sh 1000
#   BIN_DIR=/tmp/before bench/ingest.sh 1000     (binaries built elsewhere: no build;
#                                                 for before/after runs of two commits)
#   LOADGEN_ARGS="--delta-chance 0" bench/ingest.sh 1000  (more census-loadgen flags)
#   BACKFILL=24h bench/ingest.sh 200  (each host first sends a day of back-dated
#                                      history at the agent's defaults; the
#                                      collector compacts every 5 s, and the
#                                      size per host is taken after a round
#                                      that started once the health phase
#                                      ended: "sled bytes per host after 24
#                                      simulated hours")
#   PERF_OUT=/tmp/ingest.perf bench/ingest.sh 1000 (perf record -g of the collector
#                                                 during the health phase)
#
# The full run, `bench/ingest.sh 100000`, enrolls 100,000 hosts (about
# 100k CSR signings) and stores 100,000 full inventories before the health
# phase: expect well over an hour on 2 cores at the measured rates (see
# docs/BENCHMARKS.md), and raise `ulimit -n` above 2 x N (one TLS
# connection per simulated host on each side).
set -euo pipefail
sizes=("$@"); [ ${#sizes[@]} -eq 0 ] && sizes=(1000 10000)
duration=${DURATION:-60s}
rate=${RATE:-10000}
packages=${PACKAGES:-1000..3000}
concurrency=${CONCURRENCY:-256}
backfill=${BACKFILL:-}
cd "$(dirname "$0")/.."
if [ -n "${BIN_DIR:-}" ]; then
  bin=$BIN_DIR
else
  cargo build -q --release -p census-collector -p census-loadgen
  bin=${CARGO_TARGET_DIR:-target}/release
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

wait_ready() { # log file; prints seconds until `ready`
  local log=$1 t0; t0=$(date +%s.%N)
  for _ in $(seq 6000); do grep -q '^ready' "$log" && break; sleep 0.01; done
  grep -q '^ready' "$log" || { echo "collector not ready:" >&2; cat "$log" >&2; exit 1; }
  echo "$(date +%s.%N) - $t0" | bc
}

rows=()
for n in "${sizes[@]}"; do
  dir=$work/c$n; port=$((20000 + RANDOM % 20000)); admin=$((port + 1))
  $bin/census-collector init --json --san localhost --san 127.0.0.1 --data-dir "$dir" > "$work/init$n.json"
  secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["enrollment_secret"])' "$work/init$n.json")
  # A simulated host here reports far above one agent's rate limit: off.
  printf 'data_dir = "%s"\n[agent_api]\nlisten = "127.0.0.1:%s"\n[admin_api]\nlisten = "127.0.0.1:%s"\n[limits]\nreports_per_agent_per_minute = 0\n' "$dir" "$port" "$admin" > "$work/c$n.toml"
  if [ -n "$backfill" ]; then
    # Rollups soon after the history arrives, so the size includes them.
    printf '[metrics]\ncompaction_interval = "5s"\n' >> "$work/c$n.toml"
  fi
  # With BACKFILL, compaction rounds are logged (debug) for the wait below.
  env ${backfill:+RUST_LOG=info,census_collector::server=debug} $bin/census-collector serve --config "$work/c$n.toml" > "$work/c$n.log" 2>&1 &
  pid=$!
  wait_ready "$work/c$n.log" > /dev/null
  interval=$(python3 -c "print(f'{$n / $rate * 1000:.0f}ms')")
  if [ -n "${PERF_OUT:-}" ]; then
    # Samples the whole run (enrollment and inventories included); the
    # health phase dominates at the default DURATION.
    perf record -F 499 -g -o "$PERF_OUT" -p "$pid" > "$work/perf$n.log" 2>&1 &
    perf_pid=$!
  fi
  echo "== N=$n: health every $interval per host, $duration, packages $packages" >&2
  $bin/census-loadgen --server "https://127.0.0.1:$port" --ca "$dir/pki/ca.pem" --domain localhost \
    --secret "$secret" --agents "$n" --duration "$duration" --health-interval "$interval" \
    --inventory-packages "$packages" --concurrency "$concurrency" --collector-pid "$pid" --json ${backfill:+--backfill "$backfill"} ${LOADGEN_ARGS:-} > "$work/lg$n.json"
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), indent=1))' "$work/lg$n.json" >&2
  if [ -n "${PERF_OUT:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  if [ -n "$backfill" ]; then
    # One more compaction round that had work (the last health batches'):
    # it started after every back-dated sample was stored.
    rounds=$(grep -c 'metrics compacted' "$work/c$n.log" || true)
    for _ in $(seq 300); do
      [ "$(grep -c 'metrics compacted' "$work/c$n.log" || true)" -gt "$rounds" ] && break; sleep 0.1
    done
  fi
  kill -TERM "$pid"; wait "$pid" || true
  db_bytes=$(du -sb "$dir" | cut -f1)
  $bin/census-collector serve --config "$work/c$n.toml" > "$work/c$n.restart.log" 2>&1 &
  pid=$!
  restart_s=$(wait_ready "$work/c$n.restart.log")
  kill -TERM "$pid"; wait "$pid" || true
  rows+=("$(python3 - "$work/lg$n.json" "$n" "$db_bytes" "$restart_s" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2]); db = int(sys.argv[3]); restart = float(sys.argv[4])
h, c = r["health"], r["collector"] or {}
errs = sum(r["errors"].values())
print(f"| {n:,} | {h['offered_reports_per_s']:,.0f} | {h['reports_per_s']:,.0f} | {h['ack_latency']['p99_ms']:.1f} | "
      f"{h['due_to_ack_latency']['p99_ms']:.1f} | {r['inventory']['per_s']:,.0f} | {c.get('rss_bytes', 0) / 2**20:,.0f} | "
      f"{c.get('cpu_s_health', 0):.1f} / {h['seconds']:.0f} s | {db / n / 1024:,.1f} | {restart:.2f} | {errs} | "
      f"{r['loadavg_1m']['before_health']:.1f}-{r['loadavg_1m']['after_health']:.1f} |")
PY
)")
done
echo
echo "| agents | offered health reports/s | acked reports/s | p99 ack ms | p99 due-to-ack ms | full inventories/s | collector RSS MiB | collector CPU s / health phase | sled KiB per host | restart to ready s | errors | load avg 1m |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
