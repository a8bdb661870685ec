#!/usr/bin/env bash
# Agent footprint while running (SPEC §8: idle RSS <= 8 MiB and below every
# peer measured the same way; CPU <= 0.1 % of a core averaged), side by side
# with Debian's prometheus-node-exporter, zabbix-agent and
# fusioninventory-agent, all started at the same moment and measured over
# the same period by bench/idle.py (method in its docstring).
#
#   bench/idle.sh                      (WARMUP=120 PERIOD=3600 SAMPLE=5)
#   PERIOD=600 bench/idle.sh           (a shorter run; the hourly inventory
#                                       then falls outside the window)
#
# census-agent runs at its defaults against a local release collector; the
# collector's own CPU is not counted. The agent measured is the shipped
# build (cargo profile `agent`), or CENSUS_AGENT=/path/to/census-agent (an
# installed package's, another build's). Needs root (installs the peers with
# apt-get when missing, runs zabbix_agentd with AllowRoot).
set -euo pipefail
warmup=${WARMUP:-120}
period=${PERIOD:-3600}
sample=${SAMPLE:-5}
cd "$(dirname "$0")/.."

need=()
for pkg in prometheus-node-exporter zabbix-agent fusioninventory-agent; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# Debian starts the peers' own services on install where an init system
# runs; the measured copies below are private ones on loopback ports.
cargo build -q --release -p census-collector
bin=${CARGO_TARGET_DIR:-target}/release
if [ -z "${CENSUS_AGENT:-}" ]; then
  cargo build -q --profile agent -p census-agent
  CENSUS_AGENT=${CARGO_TARGET_DIR:-target}/agent/census-agent
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The collector census-agent reports to.
$bin/census-collector init --json --san localhost --san 127.0.0.1 --data-dir "$work/collector" > "$work/init.json"
secret=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["enrollment_secret"])' "$work/init.json")
agent_port=$(port); admin_port=$(port); http_port=$(port)
printf 'data_dir = "%s"\n[agent_api]\nlisten = "127.0.0.1:%s"\n[admin_api]\nlisten = "127.0.0.1:%s"\n[http_api]\nlisten = "127.0.0.1:%s"\n' \
  "$work/collector" "$agent_port" "$admin_port" "$http_port" > "$work/collector.toml"
$bin/census-collector serve --config "$work/collector.toml" > "$work/collector.log" 2>&1 &
for _ in $(seq 600); do grep -q '^ready' "$work/collector.log" && break; sleep 0.1; done
grep -q '^ready' "$work/collector.log" || { cat "$work/collector.log" >&2; exit 1; }
"$CENSUS_AGENT" --state-dir "$work/agent" enroll --server "https://127.0.0.1:$agent_port" \
  --ca "$work/collector/pki/ca.pem" --secret "$secret" > /dev/null

node_port=$(port); fusion_port=$(port)
# zabbix_agentd accepts ListenPort 1024-32767 only.
zabbix_port=$(python3 -c 'import random, socket
while True:
    s = socket.socket(); p = random.randint(20000, 32767)
    try: s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass')
mkdir -p "$work/fusion"
cat > "$work/zabbix_agentd.conf" <<EOF
PidFile=$work/zabbix_agentd.pid
LogFile=$work/zabbix_agentd.log
Server=127.0.0.1
ListenIP=127.0.0.1
ListenPort=$zabbix_port
Hostname=census-bench
AllowRoot=1
EOF
# census-agent runs with the malloc settings of its shipped systemd unit.
tunables=$(sed -n 's/^Environment=GLIBC_TUNABLES=//p' deploy/systemd/census-agent.service)
python3 - "$work" "$CENSUS_AGENT" "$node_port" "$zabbix_port" "$fusion_port" "$tunables" > "$work/spec.json" <<'PY'
import json, sys
work, agent, node, zabbix, fusion, tunables = sys.argv[1:]
print(json.dumps([
    {"label": "census-agent", "binary": agent, "log": f"{work}/agent.log",
     "cmd": ["env", f"GLIBC_TUNABLES={tunables}", agent, "--state-dir", f"{work}/agent", "run"], "poll": None},
    {"label": "prometheus-node-exporter", "binary": "/usr/bin/prometheus-node-exporter", "log": f"{work}/node.log",
     "cmd": ["/usr/bin/prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{node}"],
     "poll": {"kind": "http", "every_s": 15, "url": f"http://127.0.0.1:{node}/metrics"}},
    {"label": "zabbix-agent", "binary": "/usr/sbin/zabbix_agentd", "log": f"{work}/zabbix.log",
     "cmd": ["/usr/sbin/zabbix_agentd", "-f", "-c", f"{work}/zabbix_agentd.conf"],
     "poll": {"kind": "zabbix", "every_s": 60, "port": int(zabbix),
              "keys": ["system.cpu.load[all,avg1]", "vm.memory.size[available]", "vfs.fs.size[/,pused]",
                       "net.if.in[lo]", "system.uptime"]}},
    {"label": "fusioninventory-agent", "binary": None, "log": f"{work}/fusion.log",
     "cmd": ["/usr/bin/fusioninventory-agent", "--daemon", "--no-fork", f"--local={work}/fusion",
             "--httpd-ip=127.0.0.1", f"--httpd-port={fusion}", "--logger=stderr"], "poll": None},
]))
PY
echo "== warm-up ${warmup}s, then ${period}s measured, memory sampled every ${sample}s" >&2
python3 bench/idle.py "$warmup" "$period" "$sample" "$work/spec.json" | tee "$work/result.jsonl" >&2
fusion_kib=$(dpkg-query -W -f='${Installed-Size}' fusioninventory-agent)
echo
echo "| agent | processes | RSS MiB median (max) | PSS MiB median | CPU s per hour | % of one core | binary |"
echo "|---|---|---|---|---|---|---|"
python3 - "$work/result.jsonl" "$fusion_kib" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    size = f"{r['binary_bytes'] / 2**20:.1f} MiB" if r["binary_bytes"] else f"Perl scripts ({int(sys.argv[2]) / 1024:.1f} MiB installed) + perl"
    print(f"| {r['label']} | {r['processes']} | {r['rss_mib_median']} ({r['rss_mib_max']}) | {r['pss_mib_median']} | "
          f"{r['cpu_s_per_hour']} | {r['cpu_percent_of_core']:.3f} | {size} |")
PY
