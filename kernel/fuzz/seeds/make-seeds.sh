#!/bin/sh
# Regenerates the checked-in seed inputs in seeds/{partition,inspect,detect,vfat,xfs}/.
#
# Needs e2fsprogs (mkfs.ext4, mkfs.ext2), util-linux (sfdisk, mkswap), dosfstools
# (mkfs.vfat), mtools and python3. No root, no loop devices: every image is a plain file.
# Output is deterministic (fixed UUIDs, hash seed and timestamps).
set -eu
cd "$(dirname "$0")"
SEEDS=$(pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export E2FSPROGS_FAKE_TIME=1700000000
HASH=01234567-89ab-cdef-0123-456789abcdef

# mke2fs -d copies each file's ctime, which touch cannot set: pin every inode's ctime.
pin_ctimes() {
    n=$(dumpe2fs -h "$1" 2>/dev/null | sed -n 's/^Inode count: *//p')
    seq 1 "$n" | sed 's/.*/testi <&>/' > testi.cmd
    debugfs -f testi.cmd "$1" 2>/dev/null |
        sed -n 's/^Inode \([0-9]*\) is marked in use.*/sif <\1> ctime 20231114221320/p' > sif.cmd
    debugfs -w -f sif.cmd "$1" > /dev/null 2>&1
}

cd "$WORK"
python3 "$SEEDS/mktree.py" deb debian
python3 "$SEEDS/mktree.py" alp alpine
mkdir -p boot/grub
echo 'set timeout=0' > boot/grub/grub.cfg
echo kernel > boot/vmlinuz-6.1
find deb alp boot -exec touch -h -d @1700000000 {} +

# inspect: a whole-disk Debian root (no metadata_csum, so that mutations reach the
# parsers instead of failing checksums), and an MBR disk with an Alpine root (default
# ext4 features, metadata_csum included) at 1 MiB and an ext2 /boot (a GRUB /boot, named
# by UUID in the root's fstab) after it.
mkfs.ext4 -q -F -b 1024 -O ^metadata_csum -U 11111111-2222-3333-4444-555555555555 \
    -E hash_seed=$HASH -L root -d deb ext4-root.img 1M
mkfs.ext4 -q -F -b 1024 -U 22222222-3333-4444-5555-666666666666 \
    -E hash_seed=$HASH -L alpine -d alp root-alp.img 1M
mkfs.ext2 -q -F -b 1024 -N 16 -U aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee \
    -E hash_seed=$HASH -L boot -d boot boot.img 256K
for img in ext4-root.img root-alp.img boot.img; do pin_ctimes "$img"; done
truncate -s $((4608 * 512)) mbr-disk.img
printf 'label: dos\nlabel-id: 0xdeadbeef\nstart=2048, size=2048, type=83, bootable\nstart=4096, size=512, type=83\n' |
    sfdisk --no-reread --no-tell-kernel -q mbr-disk.img
dd if=root-alp.img of=mbr-disk.img bs=512 seek=2048 conv=notrunc status=none
dd if=boot.img of=mbr-disk.img bs=512 seek=4096 conv=notrunc status=none
cp ext4-root.img mbr-disk.img "$SEEDS/inspect/"

# partition: 128 KiB disks. MBR: a primary, an extended with two logicals (EBR chain);
# GPT: two named partitions, with primary and backup headers. Partitions hold an ext2
# superblock and a swap signature so that detect finds something on them.
truncate -s 50K swap.img
mkswap -q -L swp -U 33333333-4444-5555-6666-777777777777 swap.img
truncate -s 128K mbr.img
printf 'label: dos\nlabel-id: 0x1234abcd\nstart=4, size=40, type=83, bootable\nstart=44, size=200, type=5\nstart=48, size=60, type=83\nstart=112, size=100, type=82\n' |
    sfdisk --no-reread --no-tell-kernel -q mbr.img
dd if=boot.img of=mbr.img bs=512 seek=4 count=40 conv=notrunc status=none
dd if=swap.img of=mbr.img bs=512 seek=112 count=100 conv=notrunc status=none
truncate -s 128K gpt.img
printf 'label: gpt\nlabel-id: 652EC19E-2D0F-AD4D-871D-94DDCD823C4B\nfirst-lba: 34\nstart=34, size=60, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6210312A-984E-7047-A301-7A7F5CBBD4A3, name="root"\nstart=100, size=80, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=9DC87038-174C-A249-A183-86680D490666, name="swap"\n' |
    sfdisk --no-reread --no-tell-kernel -q gpt.img
dd if=ext4-root.img of=gpt.img bs=512 seek=34 count=60 conv=notrunc status=none
dd if=swap.img of=gpt.img bs=512 seek=100 count=80 conv=notrunc status=none
cp mbr.img gpt.img "$SEEDS/partition/"

# vfat: FAT12 (192 KiB), FAT16 (4 MiB, cut at 224 KiB) and FAT32 (33 MiB with one FAT, cut
# at 288 KiB: mtools takes a FAT32 of fewer than 65525 clusters for FAT12) volumes with
# long and short names, NT case bits, a nested tree, a directory of two clusters and a
# fragmented file (mtools; times through mcopy -m and SOURCE_DATE_EPOCH, all but the
# seconds of the volume-label entry, which mtools stamps itself).
export MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null TZ=UTC SOURCE_DATE_EPOCH=1700000000
mkdir -p vf/EFI/BOOT vf/many vf/a/b
printf 'x' > vf/EFI/BOOT/BOOTX64.EFI; head -c 3000 /dev/zero | tr '\0' 'e' > vf/EFI/BOOT/grubx64.efi
echo lower > vf/readme.txt; echo upper > vf/README2.TXT; echo mixed > "vf/Long Name.text"
echo deep > vf/a/b/deep.txt; : > vf/empty
for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo "$i" > "vf/many/a long file name $i.txt"; done
find vf -exec touch -h -d @1700000000 {} +
head -c 1536 /dev/zero | tr '\0' 'f' > f0; head -c 1536 /dev/zero | tr '\0' 'g' > f1
head -c 4000 /dev/zero | tr '\0' 'h' > big
touch -d @1700000000 f0 f1 big
for spec in "12 192K 1 vfat/fat12.img 0" "16 4M 1 vfat/fat16.img 224" "32 33M 1 vfat/fat32.img 288"; do
    set -- $spec
    rm -f v.img; truncate -s "$2" v.img
    mkfs.vfat -F "$1" -f 1 -s "$3" -n "SEED$1" -i "1234AB$1" v.img > /dev/null 2>&1
    mcopy -s -m -i v.img vf/* ::/
    mcopy -m -i v.img f0 ::/f0; mcopy -m -i v.img f1 ::/f1; mdel -i v.img ::/f0
    mcopy -m -i v.img big ::/fragmented.bin
    if [ "$5" != 0 ]; then head -c "$5"K v.img > v2.img; mv v2.img v.img; fi
    cp v.img "$SEEDS/$4"
done

# detect: the first bytes of each kind of volume.
D="$SEEDS/detect"
head -c 2048 ext4-root.img > "$D/ext4"
head -c 4096 swap.img > "$D/swap"
truncate -s 64K fat.img && mkfs.vfat -n FUZZ -i 1234abcd fat.img > /dev/null
head -c 512 fat.img > "$D/vfat"
truncate -s 200K fat32.img && mkfs.vfat -F 32 -n FAT32 -i 5678abcd fat32.img > /dev/null 2>&1
head -c 512 fat32.img > "$D/vfat32"
python3 - "$D" <<'PY'
import struct, sys, uuid
d = sys.argv[1]
u = uuid.UUID('12345678-9abc-def0-1234-56789abcdef0').bytes
x = bytearray(512); x[0:4] = b'XFSB'; x[4:8] = struct.pack('>I', 4096)
x[32:48] = u; x[108:116] = b'xfslabel'
open(f'{d}/xfs', 'wb').write(x)
b = bytearray(65536 + 4096); s = 65536
b[s+32:s+48] = u; b[s+64:s+72] = b'_BHRfS_M'; b[s+299:s+304] = b'btrfs'
open(f'{d}/btrfs', 'wb').write(b)
l = bytearray(2048); s = 512
l[s:s+8] = b'LABELONE'; l[s+8:s+16] = struct.pack('<Q', 1); l[s+20:s+24] = struct.pack('<I', 32)
l[s+24:s+32] = b'LVM2 001'; l[s+32:s+64] = b'abcdefghijklmnopqrstuvwxyz012345'
open(f'{d}/lvm2', 'wb').write(l)
k = bytearray(512); k[0:6] = b'LUKS\xba\xbe'; k[6:8] = struct.pack('>H', 2)
k[24:29] = b'crypt'; k[168:204] = str(uuid.UUID(bytes=u)).encode()
open(f'{d}/luks', 'wb').write(k)
PY
ls -l "$SEEDS"/*/

# xfs: the first 256 KiB of small mkfs.xfs (xfsprogs 6.1) images, v4 and v5, with a
# protofile tree (files, a block directory, a shortform one, symlinks, a fifo). The fuzz
# target reads zeros past the input. mkfs.xfs makes filesystems below 300 MB only for
# fstests, hence the three variables. The XFS CRCs are not checked under the fuzz
# targets' `fuzzing` feature. Not deterministic: mkfs.xfs 6.1 stamps the time of the run.
if command -v mkfs.xfs > /dev/null; then
    mkdir -p "$SEEDS/xfs"
    x=$(mktemp -d)
    seq 100000 | head -c 3000 > "$x/f1"
    seq 100000 | head -c 20000 > "$x/f2"
    {
        printf '/dev/null\n0 0\nd--755 0 0\nf1 ---644 0 0 %s\nf2 ---644 0 0 %s\n' "$x/f1" "$x/f2"
        printf 'sub d--755 0 0\n'
        for i in $(seq -w 0 149); do printf 'name-%s ---644 0 0 /dev/null\n' "$i"; done
        printf '$\nsm d--755 0 0\na ---644 0 0 /dev/null\n$\n'
        printf 'long l--777 0 0 /%s\n' "$(printf 'long-component/%.0s' $(seq 60))end"
        printf 'short l--777 0 0 f1\npipe p--644 0 0\n$\n'
    } > "$x/proto"
    for v in "v5:" "v4:-m crc=0" "v5n:-m bigtime=1 -i nrext64=1" "v4nf:-m crc=0 -n ftype=0"; do
        n=${v%%:*}
        truncate -s 40M "$x/$n.img"
        # shellcheck disable=SC2086 # the options are words
        TEST_DIR=/tmp TEST_DEV=/tmp QA_CHECK_FS=1 mkfs.xfs -q -f -b size=1024 \
            -d agcount=2 -l agnum=1 ${v#*:} -p "$x/proto" "$x/$n.img" 2> /dev/null
        head -c 262144 "$x/$n.img" > "$SEEDS/xfs/$n-start.img"
    done
    rm -rf "$x"
fi
