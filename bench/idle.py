#!/usr/bin/python3
"""Measures running agents side by side: resident memory and CPU per hour.

usage: idle.py WARMUP_S PERIOD_S SAMPLE_S SPEC.json

SPEC.json is a list of {"label", "cmd", "poll": null | {"kind", ...}} (see
bench/idle.sh). Every agent is started at once, in its own session. After
WARMUP_S (start-up, first inventory), each is measured for PERIOD_S:

- CPU: user + system time of the agent's whole process tree, including
  children it has reaped (cutime/cstime), read from /proc at the start and
  at the end of the period; reported as seconds per hour and as a share of
  one core.
- memory: every SAMPLE_S, the sum over the process tree of RSS (VmRSS) and
  of PSS (smaps_rollup, shared pages divided among the processes sharing
  them); the median and the maximum are reported.

While measuring, each agent is asked for what it exists to give, at the
interval its peers' defaults use: node_exporter is scraped every 15 s
(Prometheus' usual interval for node metrics), zabbix_agentd is asked five
passive items every 60 s (the Linux template's update interval), census-agent
and fusioninventory-agent work on their own schedules. Prints one JSON line
per agent.
"""
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request

CLK = os.sysconf("SC_CLK_TCK")


def tree(root):
    """The pids of root and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime stime cutime cstime are fields 14-17 (1-based) of stat.
        total += sum(int(x) for x in fields[11:15])
    return total / CLK


def memory_kib(pids):
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                rss += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            with open(f"/proc/{pid}/smaps_rollup") as f:
                pss += next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return rss, pss


def zabbix_get(port, key):
    data = key.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"ZBXD\x01" + struct.pack("<Q", len(data)) + data)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    return answer[13:]


def poller(spec, stop):
    poll = spec.get("poll")
    if not poll:
        return
    while not stop.wait(poll["every_s"]):
        try:
            if poll["kind"] == "http":
                urllib.request.urlopen(poll["url"], timeout=10).read()
            elif poll["kind"] == "zabbix":
                for key in poll["keys"]:
                    zabbix_get(poll["port"], key)
        except OSError as e:
            print(f"{spec['label']}: poll failed: {e}", file=sys.stderr)


def main():
    warmup, period, sample = (float(x) for x in sys.argv[1:4])
    specs = json.load(open(sys.argv[4]))
    procs = []
    for spec in specs:
        log = open(spec["log"], "wb")
        procs.append(subprocess.Popen(spec["cmd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True))
    stop = threading.Event()
    pollers = [threading.Thread(target=poller, args=(s, stop), daemon=True) for s in specs]
    try:
        for t in pollers:
            t.start()
        time.sleep(warmup)
        start = {p.pid: cpu_seconds(tree(p.pid)) for p in procs}
        samples = {p.pid: [] for p in procs}
        t0 = time.monotonic()
        while time.monotonic() - t0 < period:
            for p in procs:
                if p.poll() is not None:
                    sys.exit(f"{p.args[0]} exited with {p.returncode} during the measurement")
                samples[p.pid].append(memory_kib(tree(p.pid)))
            time.sleep(sample)
        elapsed = time.monotonic() - t0
        for spec, p in zip(specs, procs):
            used = cpu_seconds(tree(p.pid)) - start[p.pid]
            rss = [r for r, _ in samples[p.pid]]
            pss = [q for _, q in samples[p.pid]]
            print(json.dumps({
                "label": spec["label"],
                "processes": len(tree(p.pid)),
                "period_s": round(elapsed),
                "cpu_s_per_hour": round(used * 3600 / elapsed, 2),
                "cpu_percent_of_core": round(used * 100 / elapsed, 4),
                "rss_mib_median": round(statistics.median(rss) / 1024, 1),
                "rss_mib_max": round(max(rss) / 1024, 1),
                "pss_mib_median": round(statistics.median(pss) / 1024, 1),
                "binary": spec.get("binary"),
                "binary_bytes": os.path.getsize(spec["binary"]) if spec.get("binary") else None,
            }), flush=True)
    finally:
        stop.set()
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
