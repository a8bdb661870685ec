#!/usr/bin/env bash
# Benchmark: CPU time and peak memory of ONE full inventory collection,
# census-agent against fusioninventory-agent's local inventory, measured in
# the same run with the same method (bench/footprint.py: wait4 rusage).
#
# usage: bench/inventory.sh [RUNS]      (default 10; needs root for apt)
# Prints a markdown table for docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}

if ! command -v fusioninventory-inventory >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fusioninventory-agent >/dev/null
fi
# The shipped agent build (cargo profile `agent`, see Cargo.toml).
cargo build -q --profile agent -p census-agent
target_dir=$(cargo metadata --format-version 1 --no-deps | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
agent="$target_dir/agent/census-agent"

# One unmeasured run of each warms the page cache the same way for both.
"$agent" inventory --format json >/dev/null
fusioninventory-inventory >/dev/null 2>&1

# Cold: no state directory, so the apt pending-updates scan runs every time.
# Warm: a state directory whose remembered apt answer is still valid (apt's
# lists and dpkg's database unchanged since the warm-up run) - the usual
# case for an agent, whose lists change about once a day.
state=$(mktemp -d)
"$agent" --state-dir "$state" inventory --format json >/dev/null
census=$(/usr/bin/python3 bench/footprint.py "$RUNS" "census-agent (cold)" -- "$agent" --state-dir /nonexistent inventory --format json)
census_warm=$(/usr/bin/python3 bench/footprint.py "$RUNS" "census-agent (warm)" -- "$agent" --state-dir "$state" inventory --format json)
rm -rf "$state"
fusion=$(/usr/bin/python3 bench/footprint.py "$RUNS" fusioninventory-agent -- fusioninventory-inventory)
packages=$("$agent" inventory --format json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["software"]))')

timings=$("$agent" inventory --format json --timings | /usr/bin/python3 -c 'import json,sys; print(" ".join("%s=%.1f" % (t["section"], t["wall_micros"] / 1000) for t in json.load(sys.stdin)["timings"]))')

/usr/bin/python3 - "$census" "$fusion" "$packages" "$RUNS" "$census_warm" <<'PY'
import json, sys
c, f = json.loads(sys.argv[1]), json.loads(sys.argv[2])
packages, runs = sys.argv[3], sys.argv[4]
w = json.loads(sys.argv[5])
print(f"One full inventory, median of {runs} runs (min-max); {packages} packages on this host\n")
print("| agent | CPU ms | wall ms | peak RSS MiB |")
print("|---|---|---|---|")
for r in (c, w, f):
    cells = [f"{r[k]['median']} ({r[k]['min']}-{r[k]['max']})" for k in ("cpu_ms", "wall_ms", "peak_rss_mib")]
    print(f"| {r['label']} | " + " | ".join(cells) + " |")
for r in (c, w):
    ratio = f["cpu_ms"]["median"] / max(r["cpu_ms"]["median"], 0.1)
    print(f"\n{r['label']} uses {ratio:.1f}x less CPU than fusioninventory-agent", end="")
print("; targets: <= 55 ms CPU, <= 20 MB peak.")
PY
echo
echo "census-agent --timings, wall ms per section of one run: $timings"
