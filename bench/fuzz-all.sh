#!/usr/bin/env bash
# Runs every cargo-fuzz target of the tree for SECONDS each (default 480), one after another,
# and prints one docs/FUZZING.md table row per target: executions, corpus size, findings.
# Needs cargo-fuzz (`cargo install cargo-fuzz`); stable Rust, no sanitizer, debug assertions.
#
#   bash bench/fuzz-all.sh [SECONDS]
set -uo pipefail
T=${1:-480}
root=$(cd "$(dirname "$0")/.." && pwd)
logs=$(mktemp -d)

# qcow2 seeds for the image target, made by qemu-img (small clusters keep them small).
img_seeds=$logs/image-seeds
mkdir -p "$img_seeds"
qemu-img create -q -f qcow2 -o cluster_size=512 "$img_seeds/empty.qcow2" 1M
qemu-img create -q -f qcow2 -o cluster_size=512 -u -F raw -b base.raw "$img_seeds/overlay.qcow2" 64K
qemu-img create -q -f qcow2 -o cluster_size=512 -u -F qcow2 -b self.qcow2 "$img_seeds/loop.qcow2" 1M
head -c 65536 /dev/urandom > "$logs/data.raw"
qemu-img convert -O qcow2 -o cluster_size=512 -f raw "$logs/data.raw" "$img_seeds/data.qcow2"
qemu-img convert -c -O qcow2 -o cluster_size=4096 -f raw "$logs/data.raw" "$img_seeds/compressed.qcow2"

# Seeds for the package database readers, from their committed fixtures.
db_seeds=$logs/db-seeds
mkdir -p "$db_seeds/bdb" "$db_seeds/ndb" "$db_seeds/rpmheader"
fixtures=$root/inspect/src/pkgdb/testdata
cp "$fixtures"/bdb/*.db "$db_seeds/bdb/"
(printf '\001'; cat "$fixtures/ndb/Packages.db") >"$db_seeds/ndb/fixture"
(printf '\000'; cat "$fixtures/ndb/Packages.db") >"$db_seeds/ndb/fixture-raw"
cp "$fixtures"/rpmheader/*.bin "$fixtures/rpmheader/noarch-file.hdr" "$db_seeds/rpmheader/"
python3 "$root/kernel/fuzz/seeds/make-sqlite-seeds.py" "$db_seeds/sqlite" >/dev/null

run() {
    local dir=$1 target=$2 seeds=$3 max_len=$4
    cd "$root/$dir" || return
    mkdir -p "corpus/$target"
    local log=$logs/$target.log
    cargo fuzz run "$target" --sanitizer none -a "corpus/$target" $seeds -- \
        -max_total_time="$T" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
        -print_final_stats=1 >"$log" 2>&1
    local status=$?
    local execs corpus findings
    execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
    corpus=$(find "corpus/$target" -type f | wc -l)
    findings=$(find "artifacts/$target" -type f 2>/dev/null | wc -l)
    echo "| \`$dir\` \`$target\` | ${execs:-?} | $corpus | $findings (exit $status) | \`cd $dir && cargo fuzz run $target --sanitizer none -a corpus/$target $seeds -- -max_total_time=$T -max_len=$max_len\` |"
}

echo "| target | executions | corpus | findings | command |"
echo "|---|---|---|---|---|"
run proto/fuzz decoder "" 65536
run guestfs-proto/fuzz decoder "" 65536
run host-device/fuzz console "" 16384
run host-device/fuzz image "$img_seeds" 65536
run kernel/fuzz detect seeds/detect 69632
run kernel/fuzz partition seeds/partition 131072
run kernel/fuzz inspect seeds/inspect 2359296
run kernel/fuzz guestfs seeds/inspect 2359296
run kernel/fuzz btrfs seeds/btrfs 1048576
run kernel/fuzz xfs seeds/xfs 262144
run kernel/fuzz vfat seeds/vfat 300000
run kernel/fuzz lvm seeds/lvm 300000
run kernel/fuzz sqlite "$db_seeds/sqlite" 300000
run kernel/fuzz bdb "$db_seeds/bdb" 200000
run kernel/fuzz ndb "$db_seeds/ndb" 200000
run kernel/fuzz rpmheader "$db_seeds/rpmheader" 65536
run kernel/fuzz hive seeds/hive 300000
run kernel/fuzz ntfs seeds/ntfs 262144
echo "logs: $logs"
