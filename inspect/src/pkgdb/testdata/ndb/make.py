#!/usr/bin/env python3
"""Writes an rpm ndb package store (Packages.db) holding the given header blobs.

No tool here writes ndb (Debian's rpm is built without the backend), so this lays the file
out as rpm's lib/backend/ndb/rpmpkg.c does when its blobs are put one after another into a
new store (rpmpkgInit, then rpmpkgPut with package indexes 1, 2, ...), all integers
little-endian:
- page 0, bytes 0..32: header 'RpmP', version 0, generation, slot pages, next package index;
- slot pages (4096 bytes each, page 0's slots start at byte 32): 16-byte slots 'Slot',
  package index, block offset, block count (all zero but the magic when free);
- then each blob at a 16-byte block: 'BlbS', package index, generation at write time,
  length; the blob; zero padding to the block; 'BlbE' trailer: adler32 (of head, blob and
  padding), length, magic.
The Rust twin is `build` in ../../ndb.rs; the tests check both agree byte for byte.

Usage: make.py OUT BLOB...
"""
import struct
import sys
import zlib

PAGE, SLOT, BLK = 4096, 16, 16
HEAD, TAIL = 16, 12


def build(blobs):
    n = len(blobs)
    # Page 0 holds 254 slots (the header takes the first two), later pages 256.
    pages = 1
    while pages * (PAGE // SLOT) - 2 < n:
        pages += 1
    # Each put bumps the generation once (when its slot is written); init set it to 1.
    out = bytearray(struct.pack("<4sIIII", b"RpmP", 0, n + 1, pages, n + 1))
    out += b"\0" * (PAGE * pages - len(out))
    blkoff = pages * PAGE // BLK
    for i, blob in enumerate(blobs):
        pkgidx = i + 1
        blkcnt = (HEAD + len(blob) + TAIL + BLK - 1) // BLK
        slot = (2 + i) * SLOT
        struct.pack_into("<4sIII", out, slot, b"Slot", pkgidx, blkoff, blkcnt)
        body = struct.pack("<4sIII", b"BlbS", pkgidx, pkgidx, len(blob)) + blob
        body += b"\0" * (blkcnt * BLK - TAIL - len(body))
        body += struct.pack("<II4s", zlib.adler32(body), len(blob), b"BlbE")
        out += body
        blkoff += blkcnt
    # Free slots keep their magic.
    for s in range(2 + n, pages * PAGE // SLOT):
        struct.pack_into("<4s", out, s * SLOT, b"Slot")
    return bytes(out)


if __name__ == "__main__":
    out, *paths = sys.argv[1:]
    blobs = [open(p, "rb").read() for p in paths]
    open(out, "wb").write(build(blobs))
