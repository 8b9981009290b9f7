#!/bin/sh
# Regenerates the ndb fixtures of ../../ndb.rs from real tools. Run from anywhere:
#   sh inspect/src/pkgdb/testdata/ndb/make.sh
# No tool here writes ndb (Debian's rpm 4.18 is built without it), so: rpmbuild makes three
# tiny packages, rpm (sqlite backend) installs them with --justdb, their header blobs are
# read back from rpmdb.sqlite into blobs/<hnum>.bin, and make.py lays those blobs out as
# rpm's ndb backend would (Packages.db).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LC_ALL=C LANG=C SOURCE_DATE_EPOCH=1700000000
unset LANGUAGE

# 1. Three packages of different sizes: no files, a long description, a few files.
spec() { # name summary description-lines files...
    name=$1 summary=$2 lines=$3
    shift 3
    {
        printf 'Name: %s\nVersion: 1.0\nRelease: 1\nSummary: %s\nLicense: MIT\nBuildArch: noarch\n\n' \
            "$name" "$summary"
        printf '%%description\n'
        i=0
        while [ "$i" -lt "$lines" ]; do
            echo "Line $i of the description of $name, long enough to fill a few ndb blocks."
            i=$((i + 1))
        done
        printf '\n%%install\n'
        for f in "$@"; do
            printf 'mkdir -p %%{buildroot}%s\necho %s > %%{buildroot}%s/%s.conf\n' \
                "$(dirname "$f")" "$f" "$(dirname "$f")" "$(basename "$f")"
        done
        printf '\n%%files\n'
        for f in "$@"; do printf '%s.conf\n' "$f"; done
    } > "$work/$name.spec"
    rpmbuild --quiet --define "_topdir $work/build" -bb "$work/$name.spec" >/dev/null
}
spec ndb-tiny 'no files' 1
spec ndb-long 'a long description' 40
spec ndb-files 'a few files' 3 /etc/ndb/a /etc/ndb/b /usr/share/ndb/c

# 2. Install them into an empty sqlite database (headers only), in a fixed order.
root=$work/root
mkdir -p "$root"
rpm --root "$root" --dbpath /var/lib/rpm --initdb
for name in ndb-tiny ndb-long ndb-files; do
    rpm --root "$root" --dbpath /var/lib/rpm --justdb --nodeps --noscripts -i \
        "$work"/build/RPMS/noarch/$name-1.0-1.noarch.rpm
done

# 3. The blobs as rpm stores them, by header number.
rm -f "$here"/blobs/*.bin
mkdir -p "$here/blobs"
python3 - "$root/var/lib/rpm/rpmdb.sqlite" "$here/blobs" <<'PY'
import sqlite3, sys
db, out = sys.argv[1:]
for hnum, blob in sqlite3.connect(db).execute("SELECT hnum, blob FROM Packages ORDER BY hnum"):
    open(f"{out}/{hnum}.bin", "wb").write(blob)
PY

# 4. The ndb store holding them, header numbers 1, 2, 3.
python3 "$here/make.py" "$here/Packages.db" "$here"/blobs/1.bin "$here"/blobs/2.bin "$here"/blobs/3.bin
ls -l "$here/Packages.db" "$here"/blobs
