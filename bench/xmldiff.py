#!/usr/bin/env python3
"""Compare two virt-inspector-style XML documents field by field.

usage: xmldiff.py [--labels A,B] [--max-details N] [--json FILE] A.xml B.xml

Operating systems are matched by <root>. Per matched operating system:
  scalars       every child element without children (name, arch, distro, product_name,
                product_variant, major_version, minor_version, package_format,
                package_management, windows_systemroot, hostname, osinfo, format, live, ...)
  mountpoints   keyed by the mount path; the value is the dev attribute
  filesystems   keyed by dev; fields type, label, uuid (and any other child)
  drive_mappings keyed by the name attribute (Windows only)
  applications  keyed by name + arch (+ #n for repeats); presence, then every field
                (epoch, version, release, arch, url, source_package, summary, description, ...)
  order         the sequence of child element names of <operatingsystem> and the sequence of
                application keys (the XML is meant to be identical, so order counts)
Elements listed in NOT_COMPARED (<icon>) are reported separately, by presence and size only.

Prints a table (equal / different / only in A / only in B per field), the differences
(at most N per field, default 5, 0 = all), then one line starting with "SUMMARY:".
Exit status: 0 when everything compared is equal, 1 when something differs, 2 on bad input.
"""
import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict

NOT_COMPARED = ("icon",)
CONTAINERS = ("mountpoints", "filesystems", "applications", "drive_mappings")


class Tally:
    def __init__(self):
        self.rows = OrderedDict()  # field -> [equal, different, only_a, only_b]
        self.details = OrderedDict()  # field -> [str]

    def row(self, field):
        return self.rows.setdefault(field, [0, 0, 0, 0])

    def add(self, field, key, a, b):
        """a/b: value or None when absent on that side."""
        r = self.row(field)
        if a is None and b is None:
            return
        if a is None:
            r[3] += 1
            self.detail(field, f"{key}: only in B: {short(b)}")
        elif b is None:
            r[2] += 1
            self.detail(field, f"{key}: only in A: {short(a)}")
        elif a == b:
            r[0] += 1
        else:
            r[1] += 1
            self.detail(field, f"{key}: {delta(a, b)}")

    def detail(self, field, text):
        self.details.setdefault(field, []).append(text)


def short(v, n=100):
    s = repr(v)
    return s if len(s) <= n else s[: n - 5] + "...'" + f" ({len(v)} chars)"


def delta(a, b, n=100):
    """A=... B=... for short values; around the first difference for long ones."""
    if len(repr(a)) <= n and len(repr(b)) <= n:
        return f"A={a!r} B={b!r}"
    i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    lo = max(0, i - 30)
    return (f"first difference at char {i} (lengths {len(a)}, {len(b)}): "
            f"A=...{a[lo:i + 40]!r}... B=...{b[lo:i + 40]!r}...")


def text(e):
    return e.text if e.text is not None else ""


def parse(path):
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        print(f"xmldiff: {path}: {err}", file=sys.stderr)
        sys.exit(2)
    if root.tag != "operatingsystems":
        print(f"xmldiff: {path}: root element is <{root.tag}>, not <operatingsystems>",
              file=sys.stderr)
        sys.exit(2)
    oses = OrderedDict()
    for i, os_ in enumerate(root.findall("operatingsystem")):
        key = os_.findtext("root") or f"#{i}"
        oses[key] = os_
    return oses


def keyed(items):
    """[(key, value)] -> OrderedDict, repeated keys become key#2, key#3 ..."""
    out = OrderedDict()
    seen = {}
    for k, v in items:
        n = seen.get(k, 0) + 1
        seen[k] = n
        out[k if n == 1 else f"{k}#{n}"] = v
    return out


def compare_maps(t, field, prefix, a, b):
    for k in list(a) + [k for k in b if k not in a]:
        t.add(field, f"{prefix}{k}", a.get(k), b.get(k))


def app_fields(e):
    return OrderedDict((c.tag, text(c)) for c in e)


def compare_os(t, nc, root, a, b):
    p = f"[{root}] "
    # scalars
    def scalars(os_):
        return OrderedDict((c.tag, text(c)) for c in os_
                           if len(c) == 0 and c.tag not in CONTAINERS + NOT_COMPARED)
    sa, sb = scalars(a), scalars(b)
    for k in list(sa) + [k for k in sb if k not in sa]:
        t.add(k, f"{p}{k}", sa.get(k), sb.get(k))

    # mountpoints: path -> dev
    def mps(os_):
        return keyed((text(m), m.get("dev")) for m in os_.findall("mountpoints/mountpoint"))
    compare_maps(t, "mountpoints", p + "mountpoint ", mps(a), mps(b))

    # filesystems: dev -> fields
    def fss(os_):
        return keyed((f.get("dev"), OrderedDict((c.tag, text(c)) for c in f))
                     for f in os_.findall("filesystems/filesystem"))
    fa, fb = fss(a), fss(b)
    for dev in list(fa) + [d for d in fb if d not in fa]:
        if dev not in fb or dev not in fa:
            t.add("filesystems", f"{p}filesystem {dev}",
                  dict(fa[dev]) if dev in fa else None, dict(fb[dev]) if dev in fb else None)
            continue
        t.add("filesystems", f"{p}filesystem {dev}", "present", "present")
        x, y = fa[dev], fb[dev]
        for k in list(x) + [k for k in y if k not in x]:
            t.add(f"filesystem.{k}", f"{p}{dev} {k}", x.get(k), y.get(k))

    # drive mappings: name -> dev
    def dms(os_):
        return keyed((d.get("name"), text(d)) for d in os_.findall("drive_mappings/drive_mapping"))
    da, db = dms(a), dms(b)
    if da or db or a.find("drive_mappings") is not None or b.find("drive_mappings") is not None:
        compare_maps(t, "drive_mappings", p + "drive ", da, db)

    # applications
    def apps(os_):
        return keyed((f"{x.findtext('name')}/{x.findtext('arch') or '-'}", app_fields(x))
                     for x in os_.findall("applications/application"))
    aa, ab = apps(a), apps(b)
    for k in list(aa) + [k for k in ab if k not in aa]:
        if k not in aa or k not in ab:
            t.add("applications", f"{p}{k}",
                  "present" if k in aa else None, "present" if k in ab else None)
            continue
        t.add("applications", f"{p}{k}", "present", "present")
        x, y = aa[k], ab[k]
        for f in list(x) + [f for f in y if f not in x]:
            if f == "name":
                continue
            t.add(f"application.{f}", f"{p}{k} {f}", x.get(f), y.get(f))

    # order
    ta = [c.tag for c in a if c.tag not in NOT_COMPARED]
    tb = [c.tag for c in b if c.tag not in NOT_COMPARED]
    t.add("order:os_elements", f"{p}element order", " ".join(ta), " ".join(tb))
    common = [k for k in aa if k in ab]
    ob = [k for k in ab if k in aa]
    if common != ob:
        i = next(i for i, (x, y) in enumerate(zip(common, ob)) if x != y)
        t.add("order:applications", f"{p}application order",
              f"...{common[i]}... (position {i})", f"...{ob[i]}...")
    elif common:
        t.add("order:applications", f"{p}application order", "same", "same")

    # not compared
    for tag in NOT_COMPARED:
        ea, eb = a.find(tag), b.find(tag)
        nc.append((f"{p}<{tag}>",
                   f"{len(text(ea).strip())} chars" if ea is not None else "absent",
                   f"{len(text(eb).strip())} chars" if eb is not None else "absent"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--labels", default="A,B", help="names for the two sides, e.g. virt-inspector,vmch")
    ap.add_argument("--max-details", type=int, default=5)
    ap.add_argument("--json", help="also write the table as JSON to this file")
    args = ap.parse_args()
    la, lb = (args.labels.split(",") + ["B"])[:2]

    oa, ob = parse(args.a), parse(args.b)
    t = Tally()
    nc = []
    for root in list(oa) + [r for r in ob if r not in oa]:
        if root not in oa or root not in ob:
            t.add("operatingsystems", f"root {root}",
                  "present" if root in oa else None, "present" if root in ob else None)
            continue
        t.add("operatingsystems", f"root {root}", "present", "present")
        compare_os(t, nc, root, oa[root], ob[root])

    with open(args.a, "rb") as f:
        ra = f.read()
    with open(args.b, "rb") as f:
        rb = f.read()
    identical = ra == rb

    def strip_nc(raw):
        for tag in NOT_COMPARED:
            raw = re.sub(rb"\n *<%s>.*?</%s>" % (tag.encode(), tag.encode()), b"", raw, flags=re.S)
            raw = re.sub(rb"\n *<%s/>" % tag.encode(), b"", raw)
        return raw
    identical_nc = strip_nc(ra) == strip_nc(rb)

    order = ["operatingsystems", "root", "name", "arch", "distro", "product_name",
             "product_variant", "major_version", "minor_version", "package_format",
             "package_management", "windows_systemroot", "windows_current_control_set",
             "hostname", "osinfo", "format", "live", "netinst", "multipart", "mountpoints",
             "filesystems", "filesystem.type", "filesystem.label", "filesystem.uuid",
             "drive_mappings", "applications", "application.display_name", "application.epoch",
             "application.version", "application.release", "application.arch",
             "application.install_path", "application.publisher", "application.url",
             "application.source_package", "application.summary", "application.description",
             "order:os_elements", "order:applications"]

    def rank(item):
        k = item[0]
        if k in order:
            return (order.index(k), 0)
        group = k.split(".")[0] + "." if "." in k else ""
        last = max([i for i, o in enumerate(order) if group and o.startswith(group)]
                   + [order.index("multipart")])  # unknown scalars after the known ones
        return (last, 1)
    t.rows = OrderedDict(sorted(t.rows.items(), key=rank))
    w = max([len(k) for k in t.rows] + [24])
    hdr = f"{'field':<{w}} {'equal':>7} {'differ':>7} {'only ' + la:>{max(9, len(la) + 5)}} {'only ' + lb:>{max(9, len(lb) + 5)}}"
    print(f"A = {la}: {args.a}")
    print(f"B = {lb}: {args.b}")
    print()
    print(hdr)
    print("-" * len(hdr))
    tot = [0, 0, 0, 0]
    for k, r in t.rows.items():
        mark = "" if r[1] == r[2] == r[3] == 0 else "  <--"
        print(f"{k:<{w}} {r[0]:>7} {r[1]:>7} {r[2]:>{max(9, len(la) + 5)}} {r[3]:>{max(9, len(lb) + 5)}}{mark}")
        for i in range(4):
            tot[i] += r[i]
    print("-" * len(hdr))
    print(f"{'total':<{w}} {tot[0]:>7} {tot[1]:>7} {tot[2]:>{max(9, len(la) + 5)}} {tot[3]:>{max(9, len(lb) + 5)}}")
    print()
    print("not compared:")
    if not nc:
        print("  (nothing)")
    for what, x, y in nc:
        print(f"  {what}: {la} {x}, {lb} {y}")
    if t.details:
        print()
        print("differences (A = %s, B = %s):" % (la, lb))
        for k, lines in t.details.items():
            shown = lines if args.max_details == 0 else lines[: args.max_details]
            for line in shown:
                print(f"  {k}: {line}")
            if len(shown) < len(lines):
                print(f"  {k}: ... {len(lines) - len(shown)} more")
    print()
    compared = sum(tot)
    ok = tot[1] == tot[2] == tot[3] == 0
    print(f"SUMMARY: {'EQUAL' if ok else 'DIFFERENT'}: {compared} fields compared, "
          f"{tot[0]} equal, {tot[1]} different, {tot[2]} only in {la}, {tot[3]} only in {lb}; "
          f"byte-identical: {'yes' if identical else 'no'}"
          f" ({'yes' if identical_nc else 'no'} without {'/'.join(NOT_COMPARED)}); "
          f"not compared: {', '.join('<%s>' % x for x in NOT_COMPARED)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"labels": [la, lb], "rows": t.rows, "total": tot,
                       "byte_identical": identical, "byte_identical_without_not_compared": identical_nc, "not_compared": nc,
                       "details": t.details}, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
