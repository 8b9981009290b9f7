#!/bin/sh
# Records golden vectors from the real libguestfs (1.48) through the fake hypervisor: runs
# guestfish and the virt tools against a blank disk with fake-hv.py as LIBGUESTFS_HV, then
# copies one call frame and its reply per procedure into tests/data/calls/ (NAME.call,
# NAME.reply) and each tool's output into tests/data/outputs/ (what the tool printed from
# replies this crate encoded). Run from the workspace root:
#     cargo build -p guestfs-proto --features std --example fake_guestfsd
#     guestfs-proto/tools/record-golden.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=$here/../tests/data
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$here/make-fixed-appliance.sh" "$work/app"
truncate -s 10M "$work/disk.img"
export LIBGUESTFS_BACKEND=direct LIBGUESTFS_PATH="$work/app" LIBGUESTFS_HV="$here/fake-hv.py"
export LANG=C.UTF-8
run() { # NAME CMD...
    name=$1; shift
    FAKE_GUESTFSD_LOG="$work/rec-$name" timeout 120 "$@" > "$work/out-$name.txt" 2>&1 || true
}
cd "$work"
run guestfish guestfish --ro -a disk.img -- run : list-devices : list-partitions : \
    list-filesystems : vfs-type /dev/sda1 : vfs-label /dev/sda1 : vfs-uuid /dev/sda1 : \
    blkid /dev/sda1 : mount-ro /dev/sda1 / : ls / : ll /etc : cat /etc/hostname : \
    statns /etc/hostname : lstatns /bin/sh : is-file /etc/hostname followsymlinks:true : \
    is-dir /etc : exists /nope : download /root/hello.txt hello.txt : statvfs / : \
    realpath /bin/sh : file /usr/bin/ls : filesize /etc/os-release : readdir /etc : \
    is-symlink /bin/sh : readlink /bin/sh : -touch /x : -mkdir /d : umount-all : \
    -statns relative
run inspector virt-inspector -a disk.img
run ls-l virt-ls -l -a disk.img /etc
run ls-lR virt-ls -lR -a disk.img /etc
run ls-R virt-ls -R -a disk.img /
run cat virt-cat -a disk.img /etc/os-release
run df virt-df -a disk.img
FAKE_GUESTFSD_GUEST=windows run inspector-win virt-inspector -a disk.img
rm -rf "$data/calls" "$data/outputs"
mkdir -p "$data/calls" "$data/outputs"
for t in guestfish inspector ls-l ls-lR ls-R cat df inspector-win; do
    cp "$work/out-$t.txt" "$data/outputs/$t.txt"
    cp "$work/rec-$t/calls.txt" "$data/outputs/$t.calls.txt"
    for f in "$work/rec-$t"/*.call; do
        name=$(basename "$f" .call); name=${name#*-}
        [ -e "$data/calls/$name.call" ] && continue
        cp "$f" "$data/calls/$name.call"
        cp "${f%.call}.reply" "$data/calls/$name.reply"
    done
done
ls "$data/calls" | sed 's/\..*//' | sort -u | tr '\n' ' '; echo
