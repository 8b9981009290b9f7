#!/usr/bin/env python3
"""Makes the SQLite reader's test databases (inspect/src/pkgdb/sqlite/tests.rs) with real
SQLite (python3's sqlite3 module and the libsqlite3 it links) and real rpm.

Usage: make-fixtures.py OUTDIR [--no-rpm]

For each case NAME it writes, zlib-compressed:
  NAME.sqlite.zz            the database file;
  NAME.sqlite-wal.zz        its WAL, for the cases that have one;
  NAME.N.rows.zz            what SQLite itself reads from the Nth table checked in that
                            database (and WAL): the columns asked for, every row in rowid
                            order.
The rows format (little-endian): b"ROWS", the table name (u32 length, UTF-8), u32 column
count, each column name (u32 length, UTF-8); then per row b"R", i64 rowid, then per column a kind byte: 0 NULL, 1 integer (i64),
2 real (f64), 3 text (u32 length, UTF-8), 4 blob (u32 length, bytes).

The committed fixtures are this script's output; the live test (SQLITE_FIXTURES_LIVE or
CI=true) runs it again into a temporary directory and checks that output too.
"""
import ctypes
import os
import shutil
import struct
import subprocess
import sqlite3
import sys
import tempfile
import zlib


def pattern(seed, n):
    """Compressible but not periodic bytes, so that a misplaced page shows."""
    return bytes(((seed * 31 + i * 7 + (i >> 9) * 13) % 251) for i in range(n))


def write_zz(path, data):
    with open(path, "wb") as f:
        f.write(zlib.compress(data, 9))


def dump(con, table, columns):
    """Rows as SQLite returns them, with text told apart from blobs by typeof()."""
    cols = ", ".join(f'typeof("{c}"), "{c}"' for c in (c.replace('"', '""') for c in columns))
    tname = '"' + table.replace('"', '""') + '"'
    out = bytearray(b"ROWS")
    t = table.encode()
    out += struct.pack("<I", len(t)) + t
    out += struct.pack("<I", len(columns))
    for c in columns:
        b = c.encode()
        out += struct.pack("<I", len(b)) + b
    n = 0
    for row in con.execute(f"SELECT rowid, {cols} FROM {tname} ORDER BY rowid"):
        n += 1
        out += b"R" + struct.pack("<q", row[0])
        for i in range(len(columns)):
            kind, v = row[1 + 2 * i], row[2 + 2 * i]
            if kind == "null":
                out += b"\0"
            elif kind == "integer":
                out += b"\1" + struct.pack("<q", v)
            elif kind == "real":
                out += b"\2" + struct.pack("<d", v)
            elif kind == "text":
                b = v.encode() if isinstance(v, str) else bytes(v)
                out += b"\3" + struct.pack("<I", len(b)) + b
            elif kind == "blob":
                out += b"\4" + struct.pack("<I", len(v)) + bytes(v)
            else:
                raise AssertionError(kind)
    return bytes(out), n


def expect(out, name, db_path, wal_path, tables):
    """Reads each (table, columns) of the database through SQLite from scratch copies and
    writes the rows files; returns the row counts."""
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "x.sqlite")
        shutil.copyfile(db_path, db)
        if wal_path is not None:
            shutil.copyfile(wal_path, db + "-wal")
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for index, (table, columns) in enumerate(tables):
            data, n = dump(con, table, columns)
            write_zz(os.path.join(out, f"{name}.{index}.rows.zz"), data)
            counts[table] = n
        con.close()
    return counts


def save(out, name, db_path, wal_path, tables):
    with open(db_path, "rb") as f:
        write_zz(os.path.join(out, f"{name}.sqlite.zz"), f.read())
    if wal_path is not None:
        with open(wal_path, "rb") as f:
            write_zz(os.path.join(out, f"{name}.sqlite-wal.zz"), f.read())
    return expect(out, name, db_path, wal_path, tables)


PACKAGES = "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL)"
PKG_COLS = ("Packages", ["hnum", "blob"])


def new_db(path, page_size, schema=PACKAGES, encoding=None):
    if os.path.exists(path):
        os.unlink(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"PRAGMA page_size={page_size}")
    if encoding:
        con.execute(f"PRAGMA encoding='{encoding}'")
    con.execute(schema)
    return con


def case_small(out, tmp):
    """Small rows at 4 KiB pages: gaps, a negative and a 9-byte rowid, an empty blob, a NULL
    and a text where the blob should be (rpm's NOT NULL dropped for that); every serial type;
    a table whose CREATE TABLE exercises the column parser."""
    path = os.path.join(tmp, "small.sqlite")
    con = new_db(path, 4096,
                 "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB)")
    for i in range(1, 11):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(i, 10 * i),))
    con.execute("DELETE FROM Packages WHERE hnum IN (4, 7)")
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (-5, ?)", (b"negative",))
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (?, ?)", (2**62 + 3, b"huge rowid"))
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (20, ?)", (b"",))
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (21, NULL)")
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (22, 'text, not a blob')")
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (23, 42)")
    con.execute("CREATE TABLE Kinds (id INTEGER PRIMARY KEY, i, r, t, b)")
    ints = [0, 1, 2, -1, 127, -128, 128, 32767, -32768, 32768, 2**23 - 1, -2**23, 2**23,
            2**31 - 1, -2**31, 2**31, 2**47 - 1, -2**47, 2**47, 2**63 - 1, -2**63]
    for n, v in enumerate(ints):
        con.execute("INSERT INTO Kinds VALUES (?, ?, ?, ?, ?)",
                    (n + 1, v, v / 3 + 0.5, "h\u00e9llo " * n, pattern(n, n)))
    con.execute("INSERT INTO Kinds VALUES (100, NULL, 1e308, '', x'')")
    odd = '"Odd ""Name"""'
    con.execute(f"""CREATE TABLE {odd} ( -- a comment, with a comma
        [first col] VARCHAR(10, 2) DEFAULT 'a,b' NOT NULL, "x" INTEGER,
        `y` /* another, comment */, z AS (y + 1) VIRTUAL, s GENERATED ALWAYS AS (y * 2) STORED,
        w, CONSTRAINT pk PRIMARY KEY (x), UNIQUE (w, y), CHECK (x > 0))""")
    for n in range(1, 6):
        con.execute(f'INSERT INTO {odd} ("first col", x, y, w) VALUES (?, ?, ?, ?)',
                    (f"f{n}", n * 10, n, pattern(n, 3)))
    con.close()
    return save(out, "small", path, None, [
        PKG_COLS,
        ("Kinds", ["id", "i", "r", "t", "b"]),
        ('Odd "Name"', ["first col", "x", "y", "s", "w"]),
    ])


def case_overflow(out, tmp):
    """1 KiB pages: payloads on both sides of the local/overflow thresholds, 5 KiB and
    100 KiB blobs."""
    path = os.path.join(tmp, "overflow.sqlite")
    con = new_db(path, 1024)
    sizes = [1, 900] + list(range(980, 1000)) + [1020, 1021, 1024, 2000, 5 * 1024, 100 * 1024, 3]
    for i, n in enumerate(sizes):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(i, n),))
    con.close()
    return save(out, "overflow", path, None, [PKG_COLS])


def case_reserved(out, tmp):
    """1 KiB pages with 100 reserved bytes at the end of each (set through libsqlite3's
    SQLITE_FCNTL_RESERVE_BYTES, which python's module does not reach), so the usable size
    is 924."""
    path = os.path.join(tmp, "reserved.sqlite")
    if os.path.exists(path):
        os.unlink(path)
    lib = ctypes.CDLL("libsqlite3.so.0")
    lib.sqlite3_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.sqlite3_file_control.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                         ctypes.c_void_p]
    lib.sqlite3_exec.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p]
    lib.sqlite3_close.argtypes = [ctypes.c_void_p]
    db = ctypes.c_void_p()
    assert lib.sqlite3_open(path.encode(), ctypes.byref(db)) == 0
    assert lib.sqlite3_exec(db, b"PRAGMA page_size=1024", None, None, None) == 0
    n = ctypes.c_int(100)
    SQLITE_FCNTL_RESERVE_BYTES = 38
    assert lib.sqlite3_file_control(db, b"main", SQLITE_FCNTL_RESERVE_BYTES,
                                    ctypes.byref(n)) == 0
    sql = PACKAGES + ";"
    for i, size in enumerate([10, 880, 889, 890, 891, 900, 5 * 1024, 20]):
        sql += f"INSERT INTO Packages (blob) VALUES (x'{pattern(i, size).hex()}');"
    assert lib.sqlite3_exec(db, sql.encode(), None, None, None) == 0
    assert lib.sqlite3_close(db) == 0
    with open(path, "rb") as f:
        assert f.read(21)[20] == 100, "reserved bytes not set"
    return save(out, "reserved", path, None, [PKG_COLS])


def case_deep(out, tmp):
    """512-byte pages and 9-byte rowids (fat interior cells): a root, interior pages under
    it, then leaves."""
    path = os.path.join(tmp, "deep.sqlite")
    con = new_db(path, 512)
    con.execute("BEGIN")
    base = 2**60
    for i in range(2000):
        con.execute("INSERT INTO Packages (hnum, blob) VALUES (?, ?)", (base + 7 * i, b""))
    con.execute("COMMIT")
    root = con.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'Packages'").fetchone()[0]
    con.close()
    with open(path, "rb") as f:
        data = f.read()
    # Down the leftmost path: an interior page (0x05) leads through its first cell's child.
    depth, page = 1, root
    while data[(page - 1) * 512] == 0x05:
        depth += 1
        at = (page - 1) * 512
        first_cell = struct.unpack(">H", data[at + 12:at + 14])[0]
        page = struct.unpack(">I", data[at + first_cell:at + first_cell + 4])[0]
    assert depth >= 3, depth
    return save(out, "deep", path, None, [PKG_COLS])


def case_big_page(out, tmp):
    """65536-byte pages (stored as 1 in the header): small rows and a 100 KiB blob."""
    path = os.path.join(tmp, "page64k.sqlite")
    con = new_db(path, 65536)
    for i, n in enumerate([5, 5 * 1024, 100 * 1024, 70000, 7]):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(i, n),))
    con.close()
    with open(path, "rb") as f:
        assert f.read(18)[16:18] == b"\0\1"
    return save(out, "page64k", path, None, [PKG_COLS])


def case_utf16(out, tmp):
    """A UTF-16 database (big-endian, so that little-endian guesses fail): the schema's names
    and sql are UTF-16 text."""
    path = os.path.join(tmp, "utf16.sqlite")
    con = new_db(path, 512, encoding="UTF-16be")
    con.execute("CREATE TABLE \"N\u00e4me\" (k TEXT, v)")
    con.execute("INSERT INTO \"N\u00e4me\" VALUES ('\u00e9t\u00e9', 1)")
    for i in range(3):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(i, 30),))
    con.close()
    return save(out, "utf16", path, None, [PKG_COLS, ("N\u00e4me", ["k", "v"])])


def wal_frames(wal):
    """(offset, pgno, commit size) of each frame of a WAL, without checking anything."""
    page = struct.unpack(">I", wal[8:12])[0]
    frames = []
    off = 32
    while off + 24 + page <= len(wal):
        pgno, commit = struct.unpack(">II", wal[off:off + 8])
        frames.append((off, pgno, commit))
        off += 24 + page
    return frames


def case_wal(out, tmp):
    """WAL mode, no checkpoints: committed transactions only in the WAL, then a transaction
    left open whose pages spilled into the WAL uncommitted; files copied while the connection
    is open. Then the same WAL with one byte of a middle frame flipped: SQLite stops there."""
    path = os.path.join(tmp, "wal-live.sqlite")
    for p in (path, path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.unlink(p)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA page_size=1024")
    assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    con.execute("PRAGMA wal_autocheckpoint=0")
    con.execute(PACKAGES)
    for i in range(1, 21):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(i, 100),))
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # Committed, not checkpointed: three transactions.
    con.execute("BEGIN")
    for i in range(21, 31):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(i, 150),))
    con.execute("UPDATE Packages SET blob = ? WHERE hnum = 3", (pattern(1000, 2000),))
    con.execute("COMMIT")
    con.execute("BEGIN")
    con.execute("DELETE FROM Packages WHERE hnum IN (5, 6, 22)")
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(31, 3000),))
    con.execute("COMMIT")
    con.execute("BEGIN")
    con.execute("UPDATE Packages SET blob = ? WHERE hnum = 1", (b"updated last",))
    con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(32, 40),))
    con.execute("COMMIT")
    # Uncommitted: a small cache makes the open transaction spill its pages into the WAL.
    con.execute("PRAGMA cache_size=10")
    con.execute("BEGIN")
    for i in range(40):
        con.execute("INSERT INTO Packages (blob) VALUES (?)", (pattern(100 + i, 900),))
    con.execute("UPDATE Packages SET blob = x'00' WHERE hnum = 2")
    db_copy = os.path.join(tmp, "wal.sqlite")
    wal_copy = db_copy + "-wal"
    shutil.copyfile(path, db_copy)
    shutil.copyfile(path + "-wal", wal_copy)
    con.execute("ROLLBACK")
    con.close()

    with open(wal_copy, "rb") as f:
        wal = f.read()
    frames = wal_frames(wal)
    commits = [i for i, (_, _, c) in enumerate(frames) if c != 0]
    assert len(commits) == 3, commits
    assert len(frames) > commits[-1] + 1, "no uncommitted frames after the last commit"
    counts = save(out, "wal", db_copy, wal_copy, [PKG_COLS])
    # The main file alone, as a reader that ignores the WAL sees it.
    expect(out, "wal-main", db_copy, None, [PKG_COLS])
    with open(os.path.join(out, "wal.0.rows.zz"), "rb") as a, \
            open(os.path.join(out, "wal-main.0.rows.zz"), "rb") as b:
        assert a.read() != b.read(), "the WAL changes nothing"

    # A flipped byte in a frame of the second transaction: that transaction and the third
    # are lost, the first stays.
    bad = bytearray(wal)
    victim = (commits[0] + 1 + commits[1]) // 2
    off = frames[victim][0]
    bad[off + 24 + 100] ^= 0x55
    bad_path = os.path.join(tmp, "wal-badsum.sqlite-wal")
    with open(bad_path, "wb") as f:
        f.write(bad)
    write_zz(os.path.join(out, "wal-badsum.sqlite-wal.zz"), bytes(bad))
    expect(out, "wal-badsum", db_copy, bad_path, [PKG_COLS])
    for other in ("wal", "wal-main"):
        with open(os.path.join(out, f"{other}.0.rows.zz"), "rb") as a, \
                open(os.path.join(out, "wal-badsum.0.rows.zz"), "rb") as b:
            assert a.read() != b.read(), f"the flipped byte changes nothing against {other}"
    return counts


def case_rpm(out, tmp):
    """A real rpmdb.sqlite: three tiny packages built by rpmbuild, installed by rpm --justdb
    into an empty root."""
    top = os.path.join(tmp, "rpm")
    os.makedirs(os.path.join(top, "SPECS"))
    root = os.path.join(top, "root")
    os.makedirs(root)
    for n, name in enumerate(["alpha", "beta", "gamma"]):
        spec = os.path.join(top, "SPECS", f"{name}.spec")
        with open(spec, "w") as f:
            f.write(f"""Name: {name}
Version: 1.{n}
Release: 1
Summary: tiny test package {name}
License: MIT
URL: https://example.invalid/{name}
BuildArch: noarch
%description
The {name} package, for testing the rpmdb readers.
%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo {name} > %{{buildroot}}/usr/share/{name}/README
%files
/usr/share/{name}/README
""")
        subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {top}/build", spec],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rpms = sorted(os.path.join(top, "build/RPMS/noarch", f)
                  for f in os.listdir(os.path.join(top, "build/RPMS/noarch")))
    subprocess.run(["rpm", "--root", root, "--dbpath", "/var/lib/rpm", "--justdb",
                    "--nodeps", "-i"] + rpms,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dbdir = os.path.join(root, "var/lib/rpm")
    db = os.path.join(dbdir, "rpmdb.sqlite")
    wal = db + "-wal"
    return save(out, "rpm", db, wal if os.path.exists(wal) else None, [PKG_COLS])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cases = [case_small, case_overflow, case_reserved, case_deep, case_big_page,
                 case_utf16, case_wal]
        if "--no-rpm" not in sys.argv:
            cases.append(case_rpm)
        for case in cases:
            print(case.__name__, case(out, tmp))


if __name__ == "__main__":
    main()
