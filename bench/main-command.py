#!/usr/bin/env python3
"""The README's main command against QEMU TCG and libguestfs's virt-inspector, side by side.

usage: bench/main-command.py [-n RUNS] [--no-virt-inspector] [--appliance DIR] [--vmch PATH] [IMAGE]

Runs, in rounds (so load drifts hit every tool alike), on the same IMAGE (default
/work/bench/debian12.img, from bench/make-images.sh):
  - `vmch inspect --format xml IMAGE`                        (the main command: --backend auto)
  - `vmch inspect --format xml --backend qemu --accel tcg IMAGE`
  - `virt-inspector --format=raw -a IMAGE` (LIBGUESTFS_BACKEND=direct, force_tcg)
  - with --appliance DIR (from `vmch libguestfs-appliance DIR`): the same virt-inspector with
    LIBGUESTFS_PATH=DIR, i.e. unmodified libguestfs driving our kernel
each through bench/peak.py (wall time, peak RSS of the process tree), then prints a Markdown
table of medians and the ratios against the main command, and checks that every run printed
the same XML as the first vmch run (virt-inspector's is compared by bench/xmldiff.py).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def run(label, cmd, out_dir, i, env=None):
    xml = os.path.join(out_dir, f"{label}-{i}.xml")
    js = os.path.join(out_dir, f"{label}-{i}.json")
    rc = subprocess.call(
        [sys.executable, os.path.join(HERE, "peak.py"), "--stdout", xml, "--json", js, "--"] + cmd,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    r = json.load(open(js))
    if rc != 0:
        sys.exit(f"{label} run {i} failed (exit {rc}): {' '.join(cmd)}")
    print(f"{label:>28} run {i}: {r['wall_s']:8.3f} s {r['peak_rss_mib']:7.1f} MiB", flush=True)
    return r, xml


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5, help="rounds (default 5)")
    ap.add_argument("--no-virt-inspector", action="store_true")
    ap.add_argument("--appliance", help="also run virt-inspector with LIBGUESTFS_PATH=DIR")
    ap.add_argument("--vmch", default=os.path.join(REPO, "target/release/vmch"))
    ap.add_argument("image", nargs="?", default="/work/bench/debian12.img")
    a = ap.parse_args()
    fmt = "qcow2" if a.image.endswith(".qcow2") else "raw"
    tools = [
        ("vmch inspect (auto)", [a.vmch, "inspect", "--format", "xml", a.image], None),
        ("vmch inspect (qemu tcg)",
         [a.vmch, "inspect", "--format", "xml", "--backend", "qemu", "--accel", "tcg", a.image], None),
    ]
    if not a.no_virt_inspector:
        env = dict(os.environ, LIBGUESTFS_BACKEND="direct", LIBGUESTFS_BACKEND_SETTINGS="force_tcg")
        tools.append(("virt-inspector", ["virt-inspector", f"--format={fmt}", "-a", a.image], env))
        if a.appliance:
            ours = dict(env, LIBGUESTFS_PATH=os.path.abspath(a.appliance))
            tools.append(("virt-inspector (our appliance)",
                          ["virt-inspector", f"--format={fmt}", "-a", a.image], ours))
    out_dir = tempfile.mkdtemp(prefix="main-command-")
    results = {label: [] for label, _, _ in tools}
    xmls = {label: [] for label, _, _ in tools}
    for i in range(1, a.n + 1):
        for label, cmd, env in tools:
            r, xml = run(label, cmd, out_dir, i, env)
            results[label].append(r)
            xmls[label].append(xml)
    ref = open(xmls[tools[0][0]][0], "rb").read()
    for label, _, _ in tools[:2]:
        for x in xmls[label]:
            if open(x, "rb").read() != ref:
                sys.exit(f"{label}: {x} differs from the first run's XML")
    if a.appliance and not a.no_virt_inspector:
        same = all(open(x, "rb").read() == open(xmls["virt-inspector"][-1], "rb").read()
                   for x in xmls["virt-inspector (our appliance)"])
        print(f"virt-inspector with our appliance printed the stock appliance's XML: {same}")
    if not a.no_virt_inspector:
        rc = subprocess.call([sys.executable, os.path.join(HERE, "xmldiff.py"), "--labels",
                              "virt-inspector,vmch", xmls["virt-inspector"][-1], xmls[tools[0][0]][-1]])
        print(f"xmldiff exit {rc} (0: equal)")
    print(f"\nimage {a.image}, {a.n} rounds, outputs in {out_dir}\n")
    print("| command | median wall s | runs (s) | median peak RSS MiB |")
    print("|---|---|---|---|")
    med = {}
    for label, _, _ in tools:
        walls = [r["wall_s"] for r in results[label]]
        rss = statistics.median(r["peak_rss_mib"] for r in results[label])
        med[label] = (statistics.median(walls), rss)
        runs = ", ".join(f"{w:.3f}" for w in walls)
        print(f"| {label} | {med[label][0]:.3f} | {runs} | {rss:.1f} |")
    base = med[tools[0][0]]
    print()
    for label, _, _ in tools[1:]:
        print(f"- {label} / main command: {med[label][0] / base[0]:.1f}x the time, "
              f"{med[label][1] / base[1]:.1f}x the memory")
    if "virt-inspector (our appliance)" in med:
        stock, ours = med["virt-inspector"], med["virt-inspector (our appliance)"]
        print(f"- virt-inspector, stock appliance / our appliance: {stock[0] / ours[0]:.1f}x the "
              f"time, {stock[1] / ours[1]:.1f}x the memory")


if __name__ == "__main__":
    main()
