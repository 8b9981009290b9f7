#!/bin/sh
# Regenerates seeds/ntfs/: small mkntfs images (-s 512, -c 512 or 1024) filled through an
# ntfs-3g mount, written in the ntfs target's sparse format (see fuzz_targets/ntfs.rs):
# a header (flags 3: protect FILE/INDX records, synthesise $UpCase; size in MiB; $UpCase's
# first sector), then (sector number, 512 bytes) for every sector the reader may look at
# that is not all zeros, records stored with their fixups undone (so that their zero tail
# sectors drop out), $UpCase only where it differs from the harness's default table.
# Left out as the reader never reads them: free MFT records, records 12 to 26 (reserved,
# and $Extend's files), the backup boot sector, the data of $MFTMirr, $LogFile, $AttrDef,
# $Secure:$SDS, of $Boot past the boot sector and of non-resident security descriptors;
# in `many`, the records of all but the first 32 files of the 200-file directory (their
# index entries stay).
#
# Needs ntfs-3g (mkntfs, ntfs-3g), attr (setfattr), fuse (fusermount), python3; root for
# the fuse mounts. Timestamps and the volume serial differ from run to run.
set -eu
cd "$(dirname "$0")"
SEEDS=$(pwd)/ntfs
mkdir -p "$SEEDS"
WORK=$(mktemp -d)
MNT=$WORK/mnt
mkdir -p "$MNT"
trap 'fusermount -u "$MNT" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"

cat > seed.py <<'PY'
"""Writes an mkntfs image as a sparse ntfs fuzz seed (see fuzz_targets/ntfs.rs)."""
import struct
import sys

SECTOR = 512


def le(b, o, n):
    return int.from_bytes(b[o:o + n], "little")


def unfix(rec):
    """Undoes the update sequence of a FILE/INDX record in place; False if it is not one."""
    usa, cnt = le(rec, 4, 2), le(rec, 6, 2)
    if cnt < 2 or (cnt - 1) * SECTOR != len(rec) or usa + 2 * cnt > SECTOR - 2:
        return False
    usn = bytes(rec[usa:usa + 2])
    if any(rec[(i + 1) * SECTOR - 2:(i + 1) * SECTOR] != usn for i in range(cnt - 1)):
        return False
    for i in range(cnt - 1):
        e = (i + 1) * SECTOR - 2
        rec[e:e + 2] = rec[usa + 2 + 2 * i:usa + 4 + 2 * i]
    return True


def runs(a):
    out, pos, lcn, vcn = [], le(a, 32, 2), 0, le(a, 16, 8)
    while a[pos]:
        h = a[pos]
        lb, ob = h & 15, h >> 4
        n = le(a, pos + 1, lb)
        if ob:
            lcn += int.from_bytes(a[pos + 1 + lb:pos + 1 + lb + ob], "little", signed=True)
            out.append((vcn, n, lcn))
        else:
            out.append((vcn, n, None))
        vcn += n
        pos += 1 + lb + ob
    return out


def attrs(rec):
    """(type, name, value or runs, non-resident) of each attribute of a fixed-up record."""
    off, out = le(rec, 20, 2), []
    while off + 8 <= len(rec) and le(rec, off, 4) != 0xFFFFFFFF:
        a = rec[off:off + le(rec, off + 4, 4)]
        name = a[le(a, 10, 2):le(a, 10, 2) + 2 * a[9]].decode("utf-16-le")
        if a[8]:
            out.append((le(a, 0, 4), name, runs(a), True))
        else:
            vo = le(a, 20, 2)
            out.append((le(a, 0, 4), name, a[vo:vo + le(a, 16, 4)], False))
        off += len(a)
    return out


def upcase_table():
    """The harness's default table (`upcase_table` in fuzz_targets/ntfs.rs)."""
    def up(c):
        if 0x61 <= c <= 0x7A or (0xE0 <= c <= 0xFE and c != 0xF7):
            return c - 32
        if c == 0xFF:
            return 0x178
        if 0x3B1 <= c <= 0x3C9 and c != 0x3C2:
            return c - 32
        if 0x430 <= c <= 0x44F:
            return c - 32
        if 0x450 <= c <= 0x45F:
            return c - 80
        if 0xFF41 <= c <= 0xFF5A:
            return c - 32
        return c
    return b"".join(struct.pack("<H", up(c)) for c in range(65536))


def main(img, out, keep_children):
    d = bytearray(open(img, "rb").read())
    d[72:80] = (0x0123456789ABCDEF).to_bytes(8, "little")  # a fixed serial
    cs = le(d, 11, 2) * d[13]
    f = struct.unpack("b", d[64:65])[0]
    rs = f * cs if f > 0 else 1 << -f
    # The fixed-up records, through the MFT's own run list.
    rec0 = bytearray(d[le(d, 48, 8) * cs:][:rs])
    assert rec0[:4] == b"FILE" and unfix(rec0)
    mft = [r for t, n, r, nr in attrs(rec0) if t == 0x80 and n == "" and nr][0]
    mft_size = sum(n for _, n, _ in mft) * cs

    def rec_off(i):
        b = i * rs
        for vcn, n, lcn in mft:
            if vcn * cs <= b < (vcn + n) * cs:
                return lcn * cs + b - vcn * cs

    records = {}
    drop = set()  # sectors left out
    for i in range(mft_size // rs):
        o = rec_off(i)
        r = bytearray(d[o:o + rs])
        if r[:4] == b"FILE" and unfix(r) and le(r, 22, 2) & 1:
            records[i] = r
        if i not in records or 12 <= i <= 26:
            # Free records; mkntfs's reserved ones and $Extend's $Quota, $ObjId, $Reparse.
            drop.update(range(o // SECTOR, (o + rs) // SECTOR))

    def drop_data(i, name=""):
        for t, n, r, nr in attrs(records[i]):
            if t == 0x80 and n == name and nr:
                for vcn, ln, lcn in r:
                    if lcn is not None:
                        drop.update(range(lcn * cs // SECTOR, (lcn + ln) * cs // SECTOR))

    for i in (1, 2, 4, 7):
        drop_data(i)
    drop_data(9, "$SDS")
    drop.discard(0)
    drop.add(len(d) // SECTOR - 1)  # the backup boot sector
    for r in records.values():  # non-resident security descriptors
        for t, n, rl, nr in attrs(r):
            if t == 0x50 and nr:
                for vcn, ln, lcn in rl:
                    drop.update(range(lcn * cs // SECTOR, (lcn + ln) * cs // SECTOR))
    # In `many`, the records of the files after the first 32 in the named directory.
    if keep_children:
        parent_name, keep = keep_children.split(":")
        parent = [i for i, r in records.items()
                  if any(t == 0x30 and v[66:66 + 2 * v[64]].decode("utf-16-le") == parent_name
                         for t, n, v, nr in attrs(r) if not nr)][0]
        children = sorted(i for i, r in records.items()
                          if any(t == 0x30 and le(v, 0, 6) == parent
                                 for t, n, v, nr in attrs(r) if not nr))
        for i in children[int(keep):]:
            o = rec_off(i)
            drop.update(range(o // SECTOR, (o + rs) // SECTOR))
    # $UpCase: one run, its first sector in the header.
    up_runs = [r for t, n, r, nr in attrs(records[10]) if t == 0x80 and n == "" and nr][0]
    assert len(up_runs) == 1 and up_runs[0][1] * cs == 131072, up_runs
    up_first = up_runs[0][2] * cs // SECTOR
    # Undo the fixups of every FILE/INDX record, as the harness finds them.
    plain = bytearray(d)
    for s in range(len(d) // SECTOR):
        o = s * SECTOR
        if plain[o:o + 4] in (b"FILE", b"INDX"):
            n = le(plain, o + 6, 2) - 1
            r = bytearray(plain[o:o + n * SECTOR])
            if 1 <= n <= 128 and unfix(r):
                plain[o:o + n * SECTOR] = r
            else:
                drop.add(s)  # not a record the harness could protect
    table = upcase_table()
    body = bytearray([3]) + (len(d) >> 20).to_bytes(2, "little") + up_first.to_bytes(4, "little")
    kept = 0
    for s in range(len(d) // SECTOR):
        blk = plain[s * SECTOR:(s + 1) * SECTOR]
        if s in drop:
            continue
        if up_first <= s < up_first + 256:
            i = (s - up_first) * SECTOR
            if blk == table[i:i + SECTOR]:
                continue
        elif not any(blk):
            continue
        body += s.to_bytes(4, "little") + blk
        kept += 1
    open(out, "wb").write(body)
    print(f"{out}: {kept} sectors, {len(body)} bytes")


main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
PY

# name, cluster size, MiB, what to keep of a directory's children (name:count)
start() {
    rm -f img
    truncate -s "$3M" img
    mkntfs -F -Q -q -s 512 -c "$2" -L "seed $1" img
    ntfs-3g -o compression img "$MNT"
}
finish() {
    sync
    fusermount -u "$MNT"
    python3 seed.py img "$SEEDS/$1.img" "${2:-}"
}

# A tree: nested directories, mixed-case and non-ASCII names, resident, empty and
# non-resident files, a sparse file, fragmented files, hard links, Interix symlinks, a
# junction and reparse-point symlinks (hex values as inspect/tests/ntfs.rs makes them), a
# fifo.
start tree 512 4
M=$MNT
mkdir -p "$M/Program Files/Common Files/Sub Dir" "$M/Windows/System32/config"
printf 'hello\n' > "$M/Program Files/Common Files/Sub Dir/ReadMe.TXT"
seq 1 700 > "$M/Windows/System32/config/SOFTWARE"
printf 'case\n' > "$M/Windows/MiXeD CaSe.Txt"
printf 'unicode\n' > "$M/Windows/naïve ünïcødé ✓ 日本語.txt"
: > "$M/empty"
printf 'resident data' > "$M/small"
python3 - "$M" <<'PY'
import os, sys
m = sys.argv[1]
with open(f"{m}/sparse.bin", "wb") as f:
    f.truncate(1 << 20)
    f.seek(300_000); f.write(b"in the middle")
    f.seek((1 << 20) - 700); f.write(bytes(range(256)) * 2)
fs = [open(f"{m}/frag{i}.bin", "wb") for i in range(3)]
for r in range(6):
    for i, f in enumerate(fs):
        f.write(bytes((r * 7 + i * 13 + j) % 251 for j in range(700)))
        f.flush(); os.fsync(f.fileno())
for f in fs:
    f.close()
PY
printf 'linked\n' > "$M/Windows/target.txt"
ln "$M/Windows/target.txt" "$M/Windows/link-one.txt"
ln "$M/Windows/target.txt" "$M/hard link two"
ln -s Windows/System32 "$M/intx-link"
ln -s /Windows/../small "$M/abs-intx-link"
mkdir "$M/junction"
: > "$M/abs-symlink"
: > "$M/rel-symlink"
# IO_REPARSE_TAG_MOUNT_POINT \??\C:\Windows\System32; SYMLINK \??\C:\small (absolute);
# SYMLINK Windows\MiXeD CaSe.Txt (relative).
utf16() { printf '%s' "$1" | iconv -f utf-8 -t utf-16le | od -An -v -tx1 | tr -d ' \n'; }
le16() { printf '%02x%02x' $(($1 & 255)) $(($1 >> 8)); }
reparse() { # file, junction(1/0), substitute, print, relative
    s=$(utf16 "$3"); p=$(utf16 "$4"); sl=$((${#s} / 2)); pl=$((${#p} / 2))
    if [ "$2" = 1 ]; then
        tag=030000a0
        body=$(le16 0)$(le16 $sl)$(le16 $((sl + 2)))$(le16 $pl)${s}0000${p}0000
    else
        tag=0c0000a0
        body=$(le16 0)$(le16 $sl)$(le16 $sl)$(le16 $pl)$(printf '%02x000000' "$5")$s$p
    fi
    setfattr -n system.ntfs_reparse_data -v "0x$tag$(le16 $((${#body} / 2)))0000$body" "$1"
}
reparse "$M/junction" 1 '\??\C:\Windows\System32' 'C:\Windows\System32' 0
reparse "$M/abs-symlink" 0 '\??\C:\small' 'C:\small' 0
reparse "$M/rel-symlink" 0 'Windows\MiXeD CaSe.Txt' 'Windows\MiXeD CaSe.Txt' 1
mkfifo "$M/fifo"
finish tree

# A directory of 200 files: an index root with sub-nodes, a dozen index blocks.
start many 1024 4
mkdir "$MNT/many"
for i in $(seq -w 1 200); do printf '%s\n' "$i" > "$MNT/many/f$i"; done
printf 'top\n' > "$MNT/top.txt"
finish many many:32

# Compressed files (LZNT1, 16-cluster units): text, random data, a tiny file, text then
# zeros then random data.
start compressed 512 4
mkdir "$MNT/Compressed"
setfattr -n system.ntfs_attrib_be -v 0x00000800 "$MNT/Compressed"
python3 - "$MNT/Compressed" <<'PY'
import random, sys
d = sys.argv[1]
rnd = random.Random(5)
words = ["alpha ", "beta ", "gamma ", "delta\n", "epsilon ", "zeta "]
text = lambda n: "".join(rnd.choice(words) for _ in range(n)).encode()[:n]
open(f"{d}/text.txt", "wb").write(text(30000))
open(f"{d}/random.bin", "wb").write(rnd.randbytes(9000))
open(f"{d}/tiny.txt", "wb").write(b"tiny")
open(f"{d}/mixed.bin", "wb").write(text(9000) + bytes(20000) + rnd.randbytes(3000))
PY
finish compressed

# Many hard links with long names: more names than one record holds, so an attribute
# list and extension records.
start attrlist 512 4
mkdir "$MNT/links"
printf 'linked\n' > "$MNT/links/target.txt"
for i in $(seq -w 1 40); do
    ln "$MNT/links/target.txt" "$MNT/links/another-quite-long-hard-link-name-$i.txt"
done
finish attrlist

ls -l "$SEEDS"
