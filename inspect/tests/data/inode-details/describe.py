#!/usr/bin/env python3
"""Describes a mounted tree as Linux answers it, one line per fact, for inspect/tests/inode_details.rs:
S path ino mode nlink uid gid rdev size blksize blocks atime mtime ctime (times as sec.nsec),
X path name=hex... (lgetxattr, on-disk order is not knowable here: sorted by name),
D path ino:name ... (readdir(3) order, . and .. included)."""
import ctypes, ctypes.util, os, sys

root = sys.argv[1]
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class Dirent(ctypes.Structure):
    _fields_ = [("d_ino", ctypes.c_uint64), ("d_off", ctypes.c_int64),
                ("d_reclen", ctypes.c_ushort), ("d_type", ctypes.c_ubyte),
                ("d_name", ctypes.c_char * 256)]


libc.opendir.restype = ctypes.c_void_p
libc.opendir.argtypes = [ctypes.c_char_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.readdir.argtypes = [ctypes.c_void_p]
libc.closedir.argtypes = [ctypes.c_void_p]


def readdir(path):
    d = libc.opendir(path.encode())
    out = []
    while True:
        e = libc.readdir(d)
        if not e:
            break
        out.append("%d:%d:%s" % (e.contents.d_ino, e.contents.d_type,
                                 e.contents.d_name.decode("utf-8", "replace")))
    libc.closedir(d)
    return out


def t(sec, ns):
    return "%d.%09d" % (sec, ns % 1_000_000_000)


def walk(rel):
    p = root + rel if rel else root
    st = os.lstat(p)
    shown = rel or "/"
    print("S %s %d %o %d %d %d %d %d %d %d %s %s %s" % (
        shown, st.st_ino, st.st_mode, st.st_nlink, st.st_uid, st.st_gid, st.st_rdev,
        st.st_size, st.st_blksize, st.st_blocks,
        t(int(st.st_atime), st.st_atime_ns), t(int(st.st_mtime), st.st_mtime_ns),
        t(int(st.st_ctime), st.st_ctime_ns)))
    names = sorted(os.listxattr(p, follow_symlinks=False))
    if names:
        print("X %s %s" % (shown, " ".join(
            "%s=%s" % (n, os.getxattr(p, n, follow_symlinks=False).hex()) for n in names)))
    if os.path.isdir(p) and not os.path.islink(p):
        entries = readdir(p)
        print("D %s %s" % (shown, " ".join(entries)))
        for e in sorted(entries):
            name = e.split(":", 2)[2]
            if name not in (".", ".."):
                walk(rel + "/" + name)


walk("")
