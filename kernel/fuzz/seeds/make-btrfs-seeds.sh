#!/bin/sh
# Regenerates seeds/btrfs/: small mkfs.btrfs images (btrfs-progs 6.14, --rootdir) in the
# btrfs target's sparse format (see fuzz_targets/btrfs.rs): header (flags, size in MiB),
# then (block number, 4 KiB) for every block that is not all zeros. No root needed.
set -eu
cd "$(dirname "$0")"
SEEDS=$(pwd)/btrfs
mkdir -p "$SEEDS"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir -p t/etc t/usr/bin t/var/log
printf 'ID=fedora\nVERSION_ID=41\n' > t/etc/os-release
printf 'UUID=x / btrfs subvol=root 0 0\n' > t/etc/fstab
seq 1 3000 > t/etc/numbers
head -c 9000 /dev/zero | tr '\0' 'a' > t/var/log/aaa
ln -s ../usr/bin t/bin
ln -s os-release t/etc/link
find t -exec touch -h -d @1700000000 {} +
mkdir -p s/root s/home s/var
cp -a t/. s/root/
find s -exec touch -h -d @1700000000 {} +
make() { # name, args...
    name=$1; shift
    rm -f img; truncate -s 120M img
    mkfs.btrfs -q -f -U 0b7f5000-0000-4000-8000-000000000001 "$@" img
    python3 - "$SEEDS/$name" <<'PY'
import sys
d = open("img", "rb").read()
out = bytearray([1]) + (len(d) >> 20).to_bytes(2, "little")
for i in range(0, len(d), 4096):
    blk = d[i:i + 4096]
    if any(blk):
        out += (i // 4096).to_bytes(4, "little") + blk
open(sys.argv[1], "wb").write(out)
PY
}
# Small nodes and single metadata keep each seed under 256 KiB.
small="--nodesize 4096 -m single"
make plain --rootdir t $small
make zstd --rootdir t --compress zstd $small
make lzo --rootdir t --compress lzo $small
make zlib-dup --rootdir t --compress zlib --nodesize 4096 -m dup -d dup
make subvols --rootdir s --subvol rw:root --subvol rw:home --subvol default:var $small
make nodes16k --rootdir t --compress zstd -m single
ls -l "$SEEDS"
