#!/bin/bash
# Build the benchmark disk images used by compare-virt-inspector.sh.
#
# usage: bench/make-images.sh [OUTDIR]      (default OUTDIR=/work/bench; run as root)
#
#   OUTDIR/debian12.img    2 GiB raw, MBR: p1 ext4 /boot (LABEL=boot, 256 MiB), p2 ext4 / (UUID=...)
#                          filled from a debootstrapped Debian 12 (default variant, ~156 packages)
#   OUTDIR/debian12.qcow2  qemu-img convert of the above
#   OUTDIR/tiny.img        64 MiB raw, MBR: p1 ext4 / with an Alpine-like tree (2 apk packages)
#
# Needs: debootstrap, e2fsprogs (mkfs.ext4 -d), fdisk (sfdisk), qemu-utils, busybox or any x86_64 ELF.
# The debootstrap tree is kept in OUTDIR/rootfs and reused when it exists.
set -euo pipefail

OUT=${1:-/work/bench}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
ROOT_UUID=5b3c9d2e-8f41-4c7a-9e0d-1a2b3c4d5e6f
BOOT_UUID=0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0
TINY_UUID=9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d
export E2FSPROGS_FAKE_TIME=${E2FSPROGS_FAKE_TIME:-1700000000}

mkdir -p "$OUT"
cd "$OUT"

# ---------------------------------------------------------------- Debian 12
if [ ! -e rootfs/etc/debian_version ]; then
    debootstrap --arch=amd64 bookworm rootfs "$MIRROR"
fi
rm -f rootfs/var/cache/apt/archives/*.deb
echo bench-debian > rootfs/etc/hostname
cat > rootfs/etc/hosts <<'EOF'
127.0.0.1	localhost
127.0.1.1	bench-debian
::1		localhost ip6-localhost ip6-loopback
EOF
cat > rootfs/etc/fstab <<EOF
# /etc/fstab: static file system information.
# <file system>                            <mount point> <type> <options>         <dump> <pass>
UUID=$ROOT_UUID  /             ext4   errors=remount-ro 0      1
LABEL=boot                                 /boot         ext4   defaults          0      2
proc                                       /proc         proc   defaults          0      0
EOF

# partitions: p1 2048..+256MiB (/boot), p2 the rest (/)
P1_START=2048; P1_SECTORS=$((256 * 2048))
P2_START=$((P1_START + P1_SECTORS)); P2_SECTORS=$((2 * 1024 * 2048 - P2_START))
rm -f debian12.img boot.fs root.fs
truncate -s 2G debian12.img
sfdisk --quiet debian12.img <<EOF
label: dos
label-id: 0x0be7c401
start=$P1_START, size=$P1_SECTORS, type=83
start=$P2_START, size=$P2_SECTORS, type=83, bootable
EOF
truncate -s $((P1_SECTORS * 512)) boot.fs
mkfs.ext4 -q -F -L boot -U "$BOOT_UUID" -d rootfs/boot boot.fs
truncate -s $((P2_SECTORS * 512)) root.fs
mkfs.ext4 -q -F -L bench-root -U "$ROOT_UUID" -d rootfs root.fs
dd if=boot.fs of=debian12.img bs=1M seek=$((P1_START * 512)) oflag=seek_bytes conv=sparse,notrunc status=none
dd if=root.fs of=debian12.img bs=1M seek=$((P2_START * 512)) oflag=seek_bytes conv=sparse,notrunc status=none
rm -f boot.fs root.fs
rm -f debian12.qcow2
qemu-img convert -O qcow2 debian12.img debian12.qcow2

# ---------------------------------------------------------------- tiny Alpine-like
rm -rf tinyroot tiny.img tiny.fs
mkdir -p tinyroot/{etc,bin,lib/apk/db,usr/bin,var,tmp,root}
cat > tinyroot/etc/os-release <<'EOF'
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
EOF
echo 3.19.1 > tinyroot/etc/alpine-release
echo tiny-alpine > tinyroot/etc/hostname
cat > tinyroot/etc/fstab <<EOF
UUID=$TINY_UUID	/	ext4	rw,relatime 0 1
tmpfs	/tmp	tmpfs	nosuid,nodev 0 0
EOF
cat > tinyroot/lib/apk/db/installed <<'EOF'
C:Q1y9ZSg8KiRGQ0yPMiB6XvUNqeuAk=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1700000000
c:b6d5c4a1b7e5bd5c6f8d1e2f3a4b5c6d7e8f9a0b
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1abcdefabcdefabcdefabcdefabcdefab=
R:libc.musl-x86_64.so.1

C:Q1mO6sJPVZfnP9BnZqJzZzT2mB2N0=
P:busybox
V:1.36.1-r15
A:x86_64
S:509577
I:950272
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1700000000
c:1f2e3d4c5b6a79880f1e2d3c4b5a69788f9e0d1c
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r15 cmd:sh=1.36.1-r15
F:bin
R:busybox
a:0:0:755
R:sh

EOF
if [ -x /bin/busybox ]; then cp /bin/busybox tinyroot/bin/busybox; else cp /bin/true tinyroot/bin/busybox; fi
cp tinyroot/bin/busybox tinyroot/bin/sh
truncate -s 64M tiny.img
sfdisk --quiet tiny.img <<EOF
label: dos
label-id: 0x7a1e0001
start=2048, type=83
EOF
truncate -s $(((64 * 2048 - 2048) * 512)) tiny.fs
mkfs.ext4 -q -F -L alpine-root -U "$TINY_UUID" -d tinyroot tiny.fs
dd if=tiny.fs of=tiny.img bs=1M seek=$((2048 * 512)) oflag=seek_bytes conv=sparse,notrunc status=none
rm -f tiny.fs

ls -ls debian12.img debian12.qcow2 tiny.img
