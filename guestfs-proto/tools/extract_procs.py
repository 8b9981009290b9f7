#!/usr/bin/env python3
"""Extract libguestfs's daemon procedure table (facts only: names, numbers,
argument/optional-argument/return types, struct layouts) from a libguestfs
source checkout's OCaml generator, as JSON.

    extract_procs.py LIBGUESTFS_GIT_DIR TAG > procs.json

It reads `git show TAG:generator/...` so it works on a bare mirror.  Nothing of
libguestfs's code is copied: the output is a data table that gen_procs.py turns
into Rust.
"""
import json
import re
import subprocess
import sys


def show(repo, tag, path):
    return subprocess.run(["git", "-C", repo, "show", f"{tag}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def strip_comments(src):
    out, i, depth, in_str = [], 0, 0, False
    while i < len(src):
        c = src[i]
        if depth == 0 and c == '"' and not in_str:
            in_str = True
            out.append(c)
        elif in_str:
            out.append(c)
            if c == '\\':
                out.append(src[i + 1])
                i += 1
            elif c == '"':
                in_str = False
        elif src.startswith("(*", i):
            depth += 1
            i += 1
        elif depth and src.startswith("*)", i):
            depth -= 1
            i += 1
        elif depth == 0:
            out.append(c)
        i += 1
    return "".join(out)


TOKEN = re.compile(r'\s*(?:(?P<str>"(?:\\.|[^"\\])*")|(?P<id>[A-Za-z_][A-Za-z0-9_\']*)|(?P<num>-?\d+)|(?P<p>[()\[\];,]))')


def tokenize(s, pos):
    """Yield tokens from s starting at pos."""
    while True:
        m = TOKEN.match(s, pos)
        if not m:
            return
        pos = m.end()
        if m.group("str") is not None:
            yield ("str", json.loads(m.group("str")), pos)
        elif m.group("id") is not None:
            yield ("id", m.group("id"), pos)
        elif m.group("num") is not None:
            yield ("num", int(m.group("num")), pos)
        else:
            yield ("p", m.group("p"), pos)


class Parser:
    def __init__(self, s, pos):
        self.toks = tokenize(s, pos)
        self.peeked = None

    def peek(self):
        if self.peeked is None:
            self.peeked = next(self.toks)
        return self.peeked

    def next(self):
        t = self.peek()
        self.peeked = None
        return t

    def expect(self, v):
        t = self.next()
        assert t[1] == v, (t, v)

    def expr(self):
        """tuple-expr := atom (',' atom)*"""
        items = [self.atom()]
        while self.peek()[1] == ",":
            self.next()
            items.append(self.atom())
        return items[0] if len(items) == 1 else {"tuple": items}

    def atom(self):
        kind, v, _ = self.next()
        if kind in ("str", "num"):
            return v
        if v == "(":
            e = self.expr()
            self.expect(")")
            return e
        if v == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.expr())
                if self.peek()[1] == ";":
                    self.next()
            self.next()
            return {"list": items}
        assert kind == "id", (kind, v)
        if v[0].isupper():
            nk, nv, _ = self.peek()
            if nv == "(" or nk in ("str", "num"):
                arg = self.atom()
                args = arg["tuple"] if isinstance(arg, dict) and "tuple" in arg else [arg]
                return {"c": v, "args": args}
            return {"c": v, "args": []}
        return {"var": v}


def conv_arg(a):
    c, args = a["c"], a["args"]
    if c in ("String", "StringList"):
        return {"kind": c, "sub": args[0]["c"], "name": args[1]}
    if c in ("OptString", "Bool", "Int", "Int64", "BufferIn"):
        return {"kind": c, "name": args[0]}
    if c == "Pointer":
        return {"kind": c, "name": args[1]}
    raise ValueError(a)


def conv_ret(r):
    c, args = r["c"], r["args"]
    d = {"kind": c}
    if c in ("RString", "RStringList"):
        d["sub"] = args[0]["c"]
        d["name"] = args[1]
    elif c == "RHashtable":
        d["sub"] = [args[0]["c"], args[1]["c"]]
        d["name"] = args[2]
    elif c in ("RStruct", "RStructList"):
        d["name"], d["struct"] = args
    elif c in ("RInt", "RInt64", "RBool", "RBufferOut", "RConstString", "RConstOptString"):
        d["name"] = args[0]
    return d


def main():
    repo, tag = sys.argv[1], sys.argv[2]
    procnr = {}
    for m in re.finditer(r'^(\d+), "(\w+)";', show(repo, tag, "generator/proc_nr.ml"), re.M):
        procnr[m.group(2)] = int(m.group(1))
    files = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", tag, "generator/"],
                           check=True, capture_output=True, text=True).stdout.split()
    procs = {}
    for f in files:
        if not re.match(r"generator/actions_\w+\.ml$", f):
            continue
        src = strip_comments(show(repo, tag, f))
        daemon_at = src.find("let daemon_functions")
        for m in re.finditer(r'\bname = "(\w+)"', src):
            name = m.group(1)
            if name not in procnr:
                continue
            if daemon_at < 0 or m.start() < daemon_at:
                continue
            # the record body up to the next "{ defaults with"
            end = src.find("{ defaults with", m.end())
            body = src[m.start(): end if end > 0 else len(src)]
            sm = re.search(r"\bstyle = ", body)
            p = Parser(body, sm.end())
            style = p.expr()
            ret, args, optargs = style["tuple"]
            opt = re.search(r'\boptional = Some "(\w+)"', body)
            dep = re.search(r'\bdeprecated_by = (?:Replaced_by|Deprecated_no_replacement)\b(?: "(\w+)")?', body)
            procs[name] = {
                "name": name,
                "nr": procnr[name],
                "ret": conv_ret(ret),
                "args": [conv_arg(a) for a in args["list"]],
                "optargs": [{"kind": o["c"], "name": o["args"][0]} for o in optargs["list"]],
                "optgroup": opt.group(1) if opt else None,
                "deprecated": bool(dep),
                "file": f.split("/")[1],
            }
    missing = sorted(set(procnr) - set(procs))
    if missing:
        sys.exit(f"procedures without a style: {missing}")
    # structs
    src = strip_comments(show(repo, tag, "generator/structs.ml"))
    lists = {}
    for m in re.finditer(r"^let (lvm_\w+_cols) = \[", src, re.M):
        p = Parser(src, m.end() - 1)
        lists[m.group(1)] = p.atom()
    structs = {}
    for m in re.finditer(r's_name = "(\w+)";[^{}]*?s_cols = ', src):
        p = Parser(src, m.end())
        cols = p.atom()
        if "var" in cols:
            cols = lists[cols["var"]]
        structs[m.group(1)] = [[c["tuple"][0], c["tuple"][1]["c"]] for c in cols["list"]]
    json.dump({"tag": tag, "procs": sorted(procs.values(), key=lambda p: p["nr"]),
               "structs": structs}, sys.stdout, indent=1)
    print()


main()
