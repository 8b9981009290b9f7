#!/bin/sh
# Writes a minimal libguestfs "fixed appliance" directory for LIBGUESTFS_PATH: README.fixed,
# kernel and initrd (empty: the fake HV never boots them) and root (libguestfs checks its ext
# superblock). Usage: make-fixed-appliance.sh DIR
set -eu
dir=${1:?usage: make-fixed-appliance.sh DIR}
mkdir -p "$dir"
: > "$dir/README.fixed"
: > "$dir/kernel"
: > "$dir/initrd"
rm -f "$dir/root"
truncate -s 4M "$dir/root"
mkfs.ext4 -q -F "$dir/root"
