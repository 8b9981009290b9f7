#!/usr/bin/env python3
"""Seeds for the sqlite fuzz target from the reader's committed fixtures
(inspect/src/pkgdb/testdata/sqlite): flags, the database's length, the database, then its WAL.

Usage: make-sqlite-seeds.py [OUTDIR] (default: seeds/sqlite beside this script)."""
import os
import struct
import sys
import zlib

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(here, "../../../inspect/src/pkgdb/testdata/sqlite")
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "sqlite")
os.makedirs(out, exist_ok=True)


def zz(name):
    path = os.path.join(fixtures, name + ".zz")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return zlib.decompress(f.read())


for name, db, wal in [("small", "small", None), ("overflow", "overflow", None),
                      ("reserved", "reserved", None), ("utf16", "utf16", None),
                      ("wal", "wal", "wal"), ("wal-badsum", "wal", "wal-badsum"),
                      ("rpm", "rpm", None)]:
    d = zz(db + ".sqlite")
    w = zz(wal + ".sqlite-wal") if wal else b""
    flags = (1 if wal else 0) | (2 if wal and name == "wal" else 0)
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([flags]) + struct.pack("<I", len(d)) + d + w)
