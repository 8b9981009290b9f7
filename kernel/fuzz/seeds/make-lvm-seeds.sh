#!/bin/sh
# Seeds for the `lvm` fuzz target, made by the real lvm2 tools on loop devices (root; no
# device-mapper needed: --driverloaded n). Each seed is a flags byte (see
# fuzz_targets/lvm.rs) followed by the image: 1 = fix checksums, 3 = also two halves.
set -eu
out=$(cd "$(dirname "$0")" && pwd)/lvm
mkdir -p "$out"
tmp=$(mktemp -d)
loops=""
cleanup() { for l in $loops; do losetup -d "$l"; done; rm -rf "$tmp"; }
trap cleanup EXIT
export LVM_SUPPRESS_FD_WARNINGS=1
attach() { dev=$(losetup -f --show "$1"); loops="$loops $dev"; }
lv() {
    cmd=$1; shift
    filter=""
    for l in $loops; do filter="$filter \"a|^$l\$|\","; done
    lvm "$cmd" --driverloaded n --config "devices { use_devicesfile = 0 pv_min_size = 512 filter = [ $filter \"r|.*|\" ] } activation { udev_sync = 0 udev_rules = 0 } backup { backup = 0 archive = 0 }" "$@"
}
pattern() { python3 -c "import sys; sys.stdout.buffer.write(bytes((i * 7 + $2) % 251 for i in range($1)))"; }

# One PV: VG rhel, root (two segments), swap.
truncate -s 512k "$tmp/one.img"
attach "$tmp/one.img"; a=$dev
lv pvcreate -y --metadatasize 32k --dataalignment 64k "$a"
lv vgcreate -y -s 8k rhel "$a"
lv lvcreate -an -Zn -y -L 32k -n root rhel
lv lvcreate -an -Zn -y -L 16k -n swap rhel
lv lvextend -L +16k rhel/root
start=$(lv pvs --noheadings --units b --nosuffix -o pe_start "$a" | tr -d ' ')
pattern $((512 * 1024 - start)) 1 | dd of="$tmp/one.img" bs=1 seek="$start" conv=notrunc 2>/dev/null
truncate -s 160k "$tmp/one.img" # the LVs end before; keeps the seed small
{ printf '\001'; cat "$tmp/one.img"; } > "$out/rhel-one-pv.img"

# Two PVs: VG my-vg, a striped LV over both and a linear one.
truncate -s 512k "$tmp/a.img" "$tmp/b.img"
attach "$tmp/a.img"; b1=$dev; attach "$tmp/b.img"; b2=$dev
lv pvcreate -y --metadatasize 32k --dataalignment 64k "$b1" "$b2"
lv vgcreate -y -s 8k my-vg "$b1" "$b2"
lv lvcreate -an -Zn -y -i 2 -I 8k -L 32k -n data my-vg
lv lvcreate -an -Zn -y -L 8k -n lin my-vg "$b1"
for f in a b; do
    pattern $((512 * 1024 - start)) 3 | dd of="$tmp/$f.img" bs=1 seek="$start" conv=notrunc 2>/dev/null
done
truncate -s 128k "$tmp/a.img" "$tmp/b.img"
{ printf '\003'; cat "$tmp/a.img" "$tmp/b.img"; } > "$out/striped-two-pvs.img"
ls -l "$out"
