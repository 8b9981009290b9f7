#!/usr/bin/env python3
"""Writes an empty Windows registry hive (regf): the base block and one 4 KiB hbin holding
the root key (nk), its security descriptor (sk) and free space. hivex cannot create a hive
from nothing, only change one (hivexregedit --merge), so the test hives start from this.

Laid out from the format's public descriptions (Timothy Morgan's "The Windows NT Registry
File Format", the libyal/libregf documentation): all integers little-endian, cell offsets
relative to the first hbin (file offset 4096), allocated cells with a negative size.

Usage: empty-hive.py OUT [ROOT-NAME]
"""
import struct
import sys

HBIN = 4096
FILETIME = 132_000_000_000_000_000  # 2019-04-13, fixed so hives are reproducible


def cell(body):
    """An allocated cell: negative size (8-aligned, including the 4-byte size field)."""
    size = (4 + len(body) + 7) // 8 * 8
    return struct.pack("<i", -size) + body + b"\0" * (size - 4 - len(body))


def build(root_name=b"ROOT"):
    # Cells in the hbin, after its 32-byte header.
    nk_off = 0x20
    # The root key: flags KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME (ASCII name).
    nk_len = 4 + 0x4C + len(root_name)
    nk_size = (nk_len + 7) // 8 * 8
    sk_off = nk_off + nk_size
    # A minimal self-relative security descriptor: revision 1, control SE_SELF_RELATIVE,
    # no owner, group, SACL or DACL.
    sd = struct.pack("<BBHIIII", 1, 0, 0x8000, 0, 0, 0, 0)
    sk_body = b"sk" + struct.pack("<HIIII", 0, sk_off, sk_off, 1, len(sd)) + sd
    nk_body = b"nk" + struct.pack(
        "<HQIIIIIIIIIIIIIIIHH",
        0x2C,           # flags
        FILETIME,       # last written
        0,              # access bits (spare)
        0xFFFFFFFF,     # parent: none (root)
        0, 0,           # subkeys: stable, volatile
        0xFFFFFFFF, 0xFFFFFFFF,  # subkey lists: stable, volatile
        0,              # values
        0xFFFFFFFF,     # value list
        sk_off,         # security
        0xFFFFFFFF,     # class name
        0, 0, 0, 0,     # largest subkey name, class name, value name, value data
        0,              # work var
        len(root_name), # key name length
        0,              # class name length
    ) + root_name
    assert len(nk_body) == 0x4C + len(root_name), len(nk_body)
    cells = cell(nk_body) + cell(sk_body)
    free = HBIN - 0x20 - len(cells)
    cells += struct.pack("<i", free) + b"\0" * (free - 4)
    hbin = b"hbin" + struct.pack("<IIIIQI", 0, HBIN, 0, 0, FILETIME, 0) + cells
    assert len(hbin) == HBIN, len(hbin)

    base = bytearray(4096)
    struct.pack_into("<4sIIQIIIIII", base, 0,
                     b"regf", 1, 1, FILETIME,
                     1, 3,       # version 1.3
                     0, 1,       # primary file, direct memory load
                     nk_off,     # root cell
                     HBIN)       # hive bins data size
    struct.pack_into("<I", base, 0x2C, 1)  # clustering factor
    name = "empty".encode("utf-16-le")
    base[0x30:0x30 + len(name)] = name
    checksum = 0
    for (word,) in struct.iter_unpack("<I", bytes(base[:0x1FC])):
        checksum ^= word
    struct.pack_into("<I", base, 0x1FC, checksum)
    return bytes(base) + hbin


if __name__ == "__main__":
    out = sys.argv[1]
    root = sys.argv[2].encode("ascii") if len(sys.argv) > 2 else b"ROOT"
    with open(out, "wb") as f:
        f.write(build(root))
