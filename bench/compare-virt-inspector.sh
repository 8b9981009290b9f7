#!/bin/bash
# Compare `vmch inspect --format xml` with libguestfs's virt-inspector: time, memory, output.
#
# usage: bench/compare-virt-inspector.sh [-n RUNS] [-o OUTDIR] [-r REF.xml] [-F FMT]
#                                        [IMAGE [VMCH [VMCH_ARG...]]]
#
#   IMAGE     disk image (default /work/bench/debian12.img)
#   VMCH      vmch binary (default: target/release/vmch in this repository, or $VMCH)
#   VMCH_ARG  passed to vmch after `inspect --format xml`, before IMAGE (e.g. --backend qemu)
#   -n RUNS   runs per tool, alternating virt-inspector / vmch (default 3)
#   -o OUTDIR where the XML, timings and the diff go (default /work/bench/compare-<date>)
#   -r REF    do not run virt-inspector: use REF as its XML (no virt-inspector timings)
#   -F FMT    --format=FMT for virt-inspector (default: raw for *.img/*.raw, qcow2 for *.qcow2)
#
# Each run goes through bench/peak.py: wall time and the peak summed RSS of the whole process
# tree (virt-inspector + its QEMU; vmch + its QEMU if it starts one), sampled every 10 ms.
# virt-inspector runs with LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg
# (override by setting them). Its first run after installing libguestfs also builds the
# supermin appliance (cached in /var/tmp/.guestfs-$UID), which is slower: the median absorbs it.
# The last XML of each tool is compared with bench/xmldiff.py (per <operatingsystem>, matched by
# <root>: scalars, mountpoints, filesystems, applications, element order; <icon> not compared).
#
# Exit status: 0 when every run succeeded and the XML matches, 1 when the XML differs,
# 2 when a run failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
runs=3
out=""
ref=""
vi_format=""
while getopts "n:o:r:F:h" opt; do
    case $opt in
        n) runs=$OPTARG ;;
        o) out=$OPTARG ;;
        r) ref=$OPTARG ;;
        F) vi_format=$OPTARG ;;
        h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
image=${1:-/work/bench/debian12.img}
vmch=${2:-${VMCH:-$repo/target/release/vmch}}
shift $(($# >= 2 ? 2 : $#))
vmch_args=("$@")

[ -r "$image" ] || { echo "no image: $image" >&2; exit 2; }
[ -x "$vmch" ] || { echo "no vmch binary: $vmch (build it, or pass its path)" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "-n wants a positive number" >&2; exit 2; }
if [ -n "$ref" ]; then
    [ -r "$ref" ] || { echo "no reference XML: $ref" >&2; exit 2; }
else
    command -v virt-inspector >/dev/null || { echo "virt-inspector is not installed (apt-get install libguestfs-tools)" >&2; exit 2; }
fi
if [ -z "$vi_format" ]; then
    case $image in
        *.img | *.raw) vi_format=raw ;;
        *.qcow2) vi_format=qcow2 ;;
    esac
fi
out=${out:-/work/bench/compare-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
export LIBGUESTFS_BACKEND=${LIBGUESTFS_BACKEND:-direct}
export LIBGUESTFS_BACKEND_SETTINGS=${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}

vi_cmd=(virt-inspector ${vi_format:+--format=$vi_format} -a "$image")
vmch_cmd=("$vmch" inspect --format xml ${vmch_args[@]+"${vmch_args[@]}"} "$image")

{
    echo "date:            $(date -Is)"
    echo "host:            $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "image:           $image ($(stat -c %s "$image") bytes, $(du -k "$image" | cut -f1) KiB allocated)"
    if [ -n "$ref" ]; then
        echo "virt-inspector:  not run, reference XML $ref"
    else
        echo "virt-inspector:  $(virt-inspector --version 2>&1 | head -1), libguestfs $(dpkg-query -W -f '${Version}' libguestfs0 2>/dev/null || echo '?'), $(qemu-system-x86_64 --version | head -1)"
        echo "                 LIBGUESTFS_BACKEND=$LIBGUESTFS_BACKEND LIBGUESTFS_BACKEND_SETTINGS=$LIBGUESTFS_BACKEND_SETTINGS ${vi_cmd[*]}"
    fi
    echo "vmch:            ${vmch_cmd[*]}"
    echo "runs:            $runs per tool"
} | tee "$out/setup.txt"
echo

failed=0
run() { # tool i cmd...
    local tool=$1 i=$2; shift 2
    local rc=0
    python3 "$here/peak.py" --stdout "$out/$tool-$i.xml" --json "$out/$tool-$i.json" -- "$@" \
        2> "$out/$tool-$i.err" || rc=$?
    python3 - "$out/$tool-$i.json" "$tool" "$i" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
parts = ", ".join(f"{k} {v:.0f}" for k, v in r["peak_by_comm"].items())
print(f"{sys.argv[2]:>15} run {sys.argv[3]}: {r['wall_s']:8.3f} s  {r['peak_rss_mib']:8.1f} MiB"
      f"  exit {r['exit']}  ({r['peak_procs']} processes at peak: {parts})")
EOF
    if [ $rc -ne 0 ]; then
        echo "    FAILED (exit $rc), stderr: $out/$tool-$i.err"; tail -5 "$out/$tool-$i.err" | sed 's/^/    | /'
        failed=1
    fi
}

for i in $(seq 1 "$runs"); do
    [ -n "$ref" ] || run virt-inspector "$i" "${vi_cmd[@]}"
    run vmch "$i" "${vmch_cmd[@]}"
done

# the same tool should print the same XML every time
for tool in virt-inspector vmch; do
    [ -e "$out/$tool-1.xml" ] || continue
    for i in $(seq 2 "$runs"); do
        if [ -e "$out/$tool-$i.xml" ] && ! cmp -s "$out/$tool-1.xml" "$out/$tool-$i.xml"; then
            echo "NOTE: $tool run $i printed different XML from run 1"
        fi
    done
done

vi_ran=0
[ -n "$ref" ] || { ref=$out/virt-inspector-$runs.xml; vi_ran=1; }
echo
echo "=== XML: virt-inspector vs vmch ($ref vs $out/vmch-$runs.xml)"
diff_rc=0
python3 "$here/xmldiff.py" --labels virt-inspector,vmch --json "$out/xmldiff.json" \
    "$ref" "$out/vmch-$runs.xml" | tee "$out/xmldiff.txt" || diff_rc=${PIPESTATUS[0]}
diff -u "$ref" "$out/vmch-$runs.xml" > "$out/xml.diff" || true

echo
echo "=== time and memory (median of $runs)"
python3 - "$out" "$runs" "$vi_ran" <<'EOF' | tee "$out/summary.txt"
import json, os, statistics, sys
out, runs, vi_ran = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
med = {}
for tool in ("virt-inspector", "vmch"):
    if tool == "virt-inspector" and not vi_ran:
        print(f"{tool:>15}: not run (reference XML given with -r)")
        continue
    rs = []
    for i in range(1, runs + 1):
        p = os.path.join(out, f"{tool}-{i}.json")
        if os.path.exists(p):
            r = json.load(open(p))
            if r["exit"] == 0:
                rs.append(r)
    if not rs:
        print(f"{tool:>15}: no successful run")
        continue
    w = statistics.median(r["wall_s"] for r in rs)
    m = statistics.median(r["peak_rss_mib"] for r in rs)
    med[tool] = (w, m)
    print(f"{tool:>15}: wall {w:8.3f} s (min {min(r['wall_s'] for r in rs):.3f}, max {max(r['wall_s'] for r in rs):.3f})"
          f"   peak RSS {m:8.1f} MiB (min {min(r['peak_rss_mib'] for r in rs):.1f}, max {max(r['peak_rss_mib'] for r in rs):.1f})"
          f"   [{len(rs)} ok runs]")
if len(med) == 2:
    (wv, mv), (wm, mm) = med["virt-inspector"], med["vmch"]
    print(f"{'ratio':>15}: virt-inspector/vmch wall {wv / wm if wm else float('inf'):.1f}x,"
          f" peak memory {mv / mm if mm else float('inf'):.1f}x")
EOF
echo
echo "results in $out"
[ $failed -eq 0 ] || exit 2
[ "$diff_rc" -eq 0 ] || exit 1
