#!/usr/bin/env python3
"""Rewrites a hivex-made hive into one with the structures Windows writes and hivex does not
(run by make.sh): hivex only ever writes one lh list per key and puts a large value in one
big cell, whatever the hive's version. This appends one hbin holding

- for key UNINSTALL: an ri index list over an lf list (the first 20 subkeys, with 4-character
  hints), an li list (the next 15) and an lh list (the rest, hashes kept), in the same order,
- for value BIG of key CURRENTVERSION: a db big-data cell, its segment list and segments of
  16344 bytes (the last one shorter), as Windows writes values over 16344 bytes in hives of
  version 1.4 and later,

points the key and the value at them (the old cells stay allocated, unreferenced), makes the
hive version 1.5 and dirty (sequence numbers 5 and 4: hivex reads it as it is on disk) and
fixes the base block's checksum. make.sh checks that hivexregedit --export reads the same
tree from the result as from the original.

Usage: restructure.py IN OUT
"""
import struct
import sys

UNINSTALL = ["Microsoft", "Windows", "CurrentVersion", "Uninstall"]
CURRENTVERSION = ["Microsoft", "Windows NT", "CurrentVersion"]
BIG = "Big"
SEG = 16344

data = bytearray(open(sys.argv[1], "rb").read())
B = 4096


def i32(off):
    return struct.unpack_from("<i", data, B + off)[0]


def u32(off):
    return struct.unpack_from("<I", data, B + off)[0]


def u16(off):
    return struct.unpack_from("<H", data, B + off)[0]


def cell(off):
    """(data offset, data length) of the allocated cell at hive offset off."""
    size = i32(off)
    assert size < 0, hex(off)
    return off + 4, -size - 4


def key_name(nk):
    d, _ = cell(nk)
    n = u16(d - 4 + 4 + 72)
    raw = bytes(data[B + d + 76:B + d + 76 + n])
    return raw.decode("latin-1" if u16(d + 2) & 0x20 else "utf-16-le")


def children(nk):
    d, _ = cell(nk)
    if u32(d + 20) == 0:
        return []
    lst = u32(d + 28)
    ld, _ = cell(lst)
    assert bytes(data[B + ld:B + ld + 2]) == b"lh", "hivex writes lh lists"
    n = u16(ld + 2)
    return [(u32(ld + 4 + 8 * i), u32(ld + 8 + 8 * i)) for i in range(n)]


def find(path):
    nk = u32(-B + 36)  # the base block's root cell offset
    for part in path:
        nk = next(c for c, _ in children(nk) if key_name(c).lower() == part.lower())
    return nk


def value(nk, name):
    d, _ = cell(nk)
    nv, vl = u32(d + 36), u32(d + 40)
    vd, _ = cell(vl)
    for i in range(nv):
        vk = u32(vd + 4 * i)
        kd, _ = cell(vk)
        n = u16(kd + 2)
        raw = bytes(data[B + kd + 20:B + kd + 20 + n])
        if raw.decode("latin-1" if u16(kd + 16) & 1 else "utf-16-le") == name:
            return kd
    raise KeyError(name)


bins_size = struct.unpack_from("<I", data, 40)[0]
assert len(data) == B + bins_size
hbin_off = bins_size
cells = bytearray()


def add(body):
    """Appends an allocated cell to the new hbin; returns its hive offset."""
    global cells
    size = (4 + len(body) + 7) // 8 * 8
    off = hbin_off + 32 + len(cells)
    cells += struct.pack("<i", -size) + body + b"\0" * (size - 4 - len(body))
    return off


# The subkey lists.
un = find(UNINSTALL)
kids = children(un)
assert len(kids) == 50, len(kids)
lf = add(b"lf" + struct.pack("<H", 20) + b"".join(
    struct.pack("<I", c) + key_name(c).encode("latin-1")[:4].ljust(4, b"\0") for c, _ in kids[:20]))
li = add(b"li" + struct.pack("<H", 15) + b"".join(struct.pack("<I", c) for c, _ in kids[20:35]))
lh = add(b"lh" + struct.pack("<H", 15) + b"".join(struct.pack("<II", c, h) for c, h in kids[35:]))
ri = add(b"ri" + struct.pack("<H", 3) + struct.pack("<III", lf, li, lh))
und, _ = cell(un)
struct.pack_into("<I", data, B + und + 28, ri)

# The big data.
vk = value(find(CURRENTVERSION), BIG)
length = u32(vk + 4)
assert length & 0x80000000 == 0 and length > SEG
vd, vlen = cell(u32(vk + 8))
assert vlen >= length
payload = bytes(data[B + vd:B + vd + length])
segs = [add(payload[i:i + SEG]) for i in range(0, length, SEG)]
seglist = add(b"".join(struct.pack("<I", s) for s in segs))
db = add(b"db" + struct.pack("<HII", len(segs), seglist, 0))
struct.pack_into("<I", data, B + vk + 8, db)

# The hbin: header, cells, one free cell to its end.
size = (32 + len(cells) + 8 + 4095) // 4096 * 4096
free = size - 32 - len(cells)
cells += struct.pack("<i", free) + b"\0" * (free - 4)
hbin = b"hbin" + struct.pack("<IIIIQI", hbin_off, size, 0, 0, 132_000_000_000_000_000, 0) + cells
assert len(hbin) == size
data += hbin

# The base block: sequence numbers 5/4 (dirty), version 1.5, hive bins size, checksum.
struct.pack_into("<II", data, 4, 5, 4)
struct.pack_into("<I", data, 24, 5)
struct.pack_into("<I", data, 40, bins_size + size)
csum = 0
for (w,) in struct.iter_unpack("<I", bytes(data[:0x1FC])):
    csum ^= w
struct.pack_into("<I", data, 0x1FC, csum)
open(sys.argv[2], "wb").write(data)
