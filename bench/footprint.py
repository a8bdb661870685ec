#!/usr/bin/python3
"""Measures the CPU time and peak memory of one command run several times.

usage: footprint.py RUNS LABEL -- COMMAND [ARGS...]

Each run's resource use comes from wait4(2) on the child: user + system CPU
(including the child's own reaped subprocesses, e.g. `rpm -qa` spawned by an
inventory) and its peak resident set (ru_maxrss). Output goes to /dev/null.
Prints one JSON line: label, runs, median and min/max of cpu_ms, wall_ms,
peak_rss_mib.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def main():
    runs = int(sys.argv[1])
    label = sys.argv[2]
    assert sys.argv[3] == "--", "usage: footprint.py RUNS LABEL -- COMMAND..."
    cmd = sys.argv[4:]
    cpu, wall, rss = [], [], []
    for _ in range(runs):
        start = time.monotonic()
        with open(os.devnull, "wb") as null:
            child = subprocess.Popen(cmd, stdout=null, stderr=null, stdin=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
        wall.append((time.monotonic() - start) * 1000)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{label}: {cmd} exited with {os.waitstatus_to_exitcode(status)}")
        cpu.append((usage.ru_utime + usage.ru_stime) * 1000)
        rss.append(usage.ru_maxrss / 1024)  # KiB -> MiB
    summary = {"label": label, "runs": runs}
    for name, values in (("cpu_ms", cpu), ("wall_ms", wall), ("peak_rss_mib", rss)):
        summary[name] = {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
