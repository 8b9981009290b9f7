#!/bin/sh
# Regenerates the rpm header fixtures of ../../rpmheader.rs from real tools (rpm 4.18,
# sqlite backend; gpg for the gpg-pubkey pseudo-package). Run from anywhere:
#   sh inspect/src/pkgdb/testdata/rpmheader/make.sh
# Writes <name>.bin (one header blob as stored in rpmdb.sqlite's Packages table),
# noarch-file.hdr (the main header of vmc-noarch's .rpm file, with its 8-byte magic
# prefix) and expected.txt (what `rpm -qa --qf` prints for each blob, C locale).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C LANG=C
unset LANGUAGE

# 1. Build the packages (no files, so they stay tiny).
for spec in epoch nourl i18n noarch; do
    rpmbuild --quiet --define "_topdir $work/build" -bb "$here/$spec.spec" >/dev/null
done

# 2. Install them into an empty database (headers only).
root=$work/root
mkdir -p "$root"
rpm --root "$root" --dbpath /var/lib/rpm --initdb
rpm --root "$root" --dbpath /var/lib/rpm --justdb --nodeps --noscripts -i \
    "$work"/build/RPMS/*/*.rpm

# 3. A throwaway OpenPGP key, imported as the gpg-pubkey pseudo-package.
export GNUPGHOME=$work/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key \
    'vmchannel test key <test@example.org>' rsa2048 sign never 2>/dev/null
gpg --batch --armor --export test@example.org > "$work/key.asc"
rpm --root "$root" --dbpath /var/lib/rpm --import "$work/key.asc"

# 4. What rpm itself prints (fields split by 0x1f, records ended by 0x1e).
US=$(printf '\037')
RS=$(printf '\036')
rpm --root "$root" --dbpath /var/lib/rpm -qa --qf \
    "%{DBINSTANCE}$US%{NAME}$US%{EPOCH}$US%{VERSION}$US%{RELEASE}$US%{ARCH}$US%{URL}$US%{SUMMARY}$US%{DESCRIPTION}$RS" \
    > "$work/qa.txt"

# 5. The blobs, named after the package, and expected.txt naming the same files.
python3 - "$root/var/lib/rpm/rpmdb.sqlite" "$work/qa.txt" "$here" <<'PY'
import sqlite3, sys, os
db, qa, out = sys.argv[1:]
blobs = dict(sqlite3.connect(db).execute("SELECT hnum, blob FROM Packages"))
recs = open(qa, "rb").read().split(b"\x1e")[:-1]
lines = []
for rec in sorted(recs, key=lambda r: r.split(b"\x1f")[1]):
    f = rec.split(b"\x1f")
    name = f[1].decode()
    with open(os.path.join(out, name + ".bin"), "wb") as w:
        w.write(blobs[int(f[0])])
    lines.append(b"\x1f".join([name.encode() + b".bin"] + f[1:]) + b"\x1e\n")
open(os.path.join(out, "expected.txt"), "wb").write(b"".join(lines))
PY

# 6. The main header of an .rpm file: after the 96-byte lead and the signature header
#    (padded to 8 bytes), a header with its magic, whose length we compute from il/dl.
python3 - "$work"/build/RPMS/noarch/vmc-noarch-*.rpm "$here/noarch-file.hdr" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
def header_end(at):
    assert data[at:at + 4] == b"\x8e\xad\xe8\x01", hex(at)
    il, dl = struct.unpack(">II", data[at + 8:at + 16])
    return at + 16 + 16 * il + dl
sig_end = header_end(96)
main = sig_end + (-sig_end) % 8
open(sys.argv[2], "wb").write(data[main:header_end(main)])
PY
ls -l "$here"
