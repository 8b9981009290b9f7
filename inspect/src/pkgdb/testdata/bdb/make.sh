#!/bin/sh
# Regenerates the fixtures of pkgdb::bdb (see README) from real tools: rpmbuild and rpm 4.18
# (the package header blobs), db5.3_load / db5.3_dump (Berkeley DB 5.3 hash databases, and
# the expected contents), perl's DB_File (libdb 5.3: a database with deleted entries, which
# the db5.3 utilities cannot make), and rpm's own read-only BDB backend (that rpm reads the
# fixture). Needs rpm, rpmbuild, db5.3-util, perl, python3.
set -eu
cd "$(dirname "$0")"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Three tiny noarch packages, installed (--justdb) into a scratch rpmdb.sqlite.
for p in "alpha 1.0 1" "beta 2.3 4" "gamma 0.1 7"; do
    set -- $p
    cat >"$T/$1.spec" <<EOF
Name: $1
Version: $2
Release: $3
Summary: vmchannel test package $1
License: MIT
BuildArch: noarch
%description
Test package $1 for the Berkeley DB reader fixtures.
%install
mkdir -p %{buildroot}/usr/share/$1
echo $1 >%{buildroot}/usr/share/$1/README
%files
/usr/share/$1/README
EOF
    rpmbuild -bb --quiet --define "_topdir $T/top" "$T/$1.spec" >/dev/null
done
mkdir -p "$T/root"
rpm --root "$T/root" --dbpath /var/lib/rpm --justdb --nodeps --noscripts -i "$T"/top/RPMS/noarch/*.rpm

python3 - "$T" <<'PY'
import sqlite3, struct, subprocess, sys

t = sys.argv[1]
con = sqlite3.connect(f"{t}/root/var/lib/rpm/rpmdb.sqlite")
blobs = con.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
assert len(blobs) == 3, blobs

def load(name, pairs, pagesize, lorder, kind="hash", extra=()):
    """db5.3_load -T: lines alternate key and value, every byte written as a \\xx escape."""
    text = "".join(
        "".join(f"\\{b:02x}" for b in k) + "\n" + "".join(f"\\{b:02x}" for b in v) + "\n"
        for k, v in pairs
    )
    subprocess.run(
        ["db5.3_load", "-T", "-t", kind, "-c", f"db_pagesize={pagesize}", "-c",
         f"db_lorder={lorder}", *extra, f"{t}/{name}"],
        input=text.encode(), check=True)
    subprocess.run(["cp", f"{t}/{name}", name], check=True)

# Real headers, keyed as rpm does (native, here little-endian, header numbers), with rpm's
# key 0 (the next-instance counter).
real = [(struct.pack("<I", 0), struct.pack("<I", len(blobs) + 1))]
real += [(struct.pack("<I", h), b) for h, b in blobs]
load("real-le-4096.db", real, 4096, 1234)
load("real-be-512.db", real, 512, 4321)

# Synthetic: 300 small values (the table splits into many buckets) and two of 20 KiB
# (overflow chains), keys in the byte order of the database.
def many(order):
    pairs = [(struct.pack(order + "I", 0), struct.pack(order + "I", 1303))]
    for i in range(1, 301):
        pairs.append((struct.pack(order + "I", i), bytes((i * 7 + j) & 0xFF for j in range(100))))
    for i in (1301, 1302):
        pairs.append((struct.pack(order + "I", i), bytes((i + j * 13) % 251 for j in range(20480))))
    return pairs
load("many-le-512.db", many("<"), 512, 1234)
load("many-be-4096.db", many(">"), 4096, 4321)

# A btree database (not supported: a clear error).
load("btree-le-512.db", real[:2], 512, 1234, kind="btree")
# A hash database with page checksums (not supported either).
load("chksum-le-512.db", real[:2], 512, 1234, extra=["-c", "chksum=1"])
PY

# Deleted entries and reused pages: libdb 5.3 through perl's DB_File.
perl - "$T/deleted-le-512.db" <<'PL'
use strict;
use DB_File;
use Fcntl;
my $info = DB_File::HASHINFO->new();
$info->{bsize} = 512;
$info->{lorder} = 1234;
my %h;
tie %h, 'DB_File', $ARGV[0], O_RDWR | O_CREAT | O_TRUNC, 0644, $info or die "tie: $!";
sub val { my ($i) = @_; my $n = $i % 25 == 0 ? 3000 : 60 + $i % 40;
          return join('', map { chr(($i * 31 + $_) & 0xff) } 0 .. $n - 1); }
$h{pack('V', $_)} = val($_) for 1 .. 300;
delete $h{pack('V', $_)} for grep { $_ % 2 == 0 || $_ % 25 == 0 || $_ > 200 } 1 .. 300;
$h{pack('V', $_)} = val($_) for 301 .. 330;
untie %h;
PL
cp "$T/deleted-le-512.db" .

for f in real-le-4096.db real-be-512.db many-le-512.db many-be-4096.db deleted-le-512.db; do
    python3 - "$f" <<'PY'
import struct, subprocess, sys
name = sys.argv[1]
out = subprocess.run(["db5.3_dump", name], check=True, capture_output=True).stdout
lines = out.decode().split("\n")
items = lines[lines.index("HEADER=END") + 1 : lines.index("DATA=END")]
rec = b"".join(struct.pack("<I", len(b)) + b for b in (bytes.fromhex(l.strip()) for l in items))
open(name + ".expect", "wb").write(rec)
print(name, len(items) // 2, "pairs")
PY
done

# rpm itself reads the real-blob fixtures with its read-only BDB backend.
for f in real-le-4096.db real-be-512.db; do
    mkdir -p "$T/bdb-$f/var/lib/rpm"
    cp "$f" "$T/bdb-$f/var/lib/rpm/Packages"
    got=$(rpm --root "$T/bdb-$f" --dbpath /var/lib/rpm --define '_db_backend bdb_ro' -qa 2>"$T/qa.err" | sort | tr '\n' ' ')
    want="alpha-1.0-1.noarch beta-2.3-4.noarch gamma-0.1-7.noarch "
    [ "$got" = "$want" ] || { echo "rpm -qa on $f: '$got', expected '$want'" >&2; exit 1; }
    echo "rpm -qa on $f: $got"
done
ls -l *.db *.expect
