#!/usr/bin/env python3
"""Run a command; report its wall time and the peak summed RSS of its whole process tree.

usage: peak.py [--interval SEC] [--stdout FILE] [--json FILE] -- COMMAND [ARG]...

The command's stdout goes to FILE (default: our stdout), its stderr is passed through.
Every INTERVAL seconds (default 0.01) the RSS (VmRSS, /proc/PID/status) of the command and of
all its descendants (found through /proc/*/stat parent links) is summed; the largest sum is the
peak. Processes that have already exited between samples are not seen, so very short-lived
children can be missed; anything alive for longer than one interval is counted.

Prints one JSON object on stderr (or to --json FILE):
  {"wall_s": 12.3, "peak_rss_mib": 456.7, "peak_procs": 3, "samples": 1200,
   "exit": 0, "peak_by_comm": {"qemu-system-x86": 400.1, ...}, "cmd": [...]}
peak_by_comm is the breakdown of the sample that held the peak.
Exit status: the command's (128 + signal if it was killed by one).
"""
import argparse
import json
import os
import subprocess
import sys
import time


def children_map():
    """pid -> list of child pids, and pid -> comm, for all processes."""
    kids = {}
    comm = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses
        lp = data.find("(")
        rp = data.rfind(")")
        if lp < 0 or rp < 0:
            continue
        fields = data[rp + 2:].split()
        if len(fields) < 2:
            continue
        pid = int(name)
        ppid = int(fields[1])
        kids.setdefault(ppid, []).append(pid)
        comm[pid] = data[lp + 1:rp]
    return kids, comm


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0  # exited, or a zombie / kernel thread without VmRSS


def tree(root):
    kids, comm = children_map()
    out = []
    stack = [root]
    seen = set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        out.append(p)
        stack.extend(kids.get(p, ()))
    return out, comm


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--stdout", help="file that receives the command's stdout")
    ap.add_argument("--json", help="write the JSON report here instead of stderr")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command given")

    out = open(a.stdout, "wb") if a.stdout else None
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out if out else None)
    peak = 0
    peak_procs = 0
    peak_by = {}
    samples = 0
    while True:
        pids, comm = tree(proc.pid)
        total = 0
        by = {}
        live = 0
        for p in pids:
            r = rss_kib(p)
            total += r
            if r:
                live += 1
                c = comm.get(p, "?")
                by[c] = by.get(c, 0) + r
        samples += 1
        if total > peak:
            peak = total
            peak_procs = live
            peak_by = by
        if proc.poll() is not None:
            break
        time.sleep(a.interval)
    wall = time.monotonic() - t0
    rc = proc.returncode
    if out:
        out.close()
    report = {
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(peak / 1024, 1),
        "peak_procs": peak_procs,
        "samples": samples,
        "exit": rc if rc >= 0 else 128 - rc,
        "peak_by_comm": {k: round(v / 1024, 1) for k, v in by_items(peak_by)},
        "cmd": cmd,
    }
    text = json.dumps(report)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text, file=sys.stderr)
    sys.exit(report["exit"])


def by_items(d):
    return sorted(d.items(), key=lambda kv: -kv[1])


if __name__ == "__main__":
    main()
