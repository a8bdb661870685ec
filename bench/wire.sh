#!/usr/bin/env bash
# Steady-state bytes on the wire between one agent and the collector, at the
# default intervals (heartbeat 1 min, health every 15 s sent each minute,
# inventory deltas hourly). Measured from the kernel's TCP counters of the
# agent's connection (`ss -ti`: bytes_sent / bytes_received include TLS,
# HTTP/2 and gRPC framing), over WINDOW seconds after a warm-up that covers
# enrollment and the first full snapshot, then scaled to one hour.
#
#   bench/wire.sh [WINDOW_SECONDS] [AGENT_CONFIG_LINES]   (default 300)
#
# `bench/wire.sh 300 'health_batch_interval = "2h"'` keeps health samples
# in the agent during the window: what is left is the traffic beyond health.
set -euo pipefail
window=${1:-300}
cd "$(dirname "$0")/.."
cargo build -q --release -p census-agent -p census-collector
bin=target/release
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
admin=$((port + 1))
$bin/census-collector init --json --san 127.0.0.1 --data-dir "$work/c" > "$work/init.json"
secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["enrollment_secret"])' "$work/init.json")
printf 'data_dir = "%s"\n[agent_api]\nlisten = "127.0.0.1:%s"\n[admin_api]\nlisten = "127.0.0.1:%s"\n' "$work/c" "$port" "$admin" > "$work/c.toml"
$bin/census-collector serve --config "$work/c.toml" > "$work/c.log" 2>&1 &
for _ in $(seq 100); do grep -q ready "$work/c.log" && break; sleep 0.1; done
$bin/census-agent --state-dir "$work/a" enroll --server "https://127.0.0.1:$port" --ca "$work/c/pki/ca.pem" --secret "$secret" > /dev/null
printf '%s\n' "${2:-}" > "$work/a.toml"
$bin/census-agent --config "$work/a.toml" --state-dir "$work/a" run > "$work/a.log" 2>&1 &

counters() { # bytes_sent bytes_received of the agent's connection
  ss -tinH state established "( dport = :$port )" | tr ' ' '\n' |
    awk -F: '/^bytes_sent:/{s=$2} /^bytes_received:/{r=$2} END{print s+0, r+0}'
}
sleep 45   # enrollment, first full snapshot, first health batch
read -r s0 r0 < <(counters)
sleep "$window"
read -r s1 r1 < <(counters)
sent=$((s1 - s0)); received=$((r1 - r0))
echo "window ${window}s: agent sent ${sent} B, received ${received} B"
echo "per hour: sent $((sent * 3600 / window)) B, received $((received * 3600 / window)) B"
