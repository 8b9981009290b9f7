#!/usr/bin/env python3
"""Writes the file tree of a small Linux root (debian or alpine) for seeds/make-seeds.sh.

Usage: mktree.py DIR debian|alpine
"""
import os, struct, sys
root, distro = sys.argv[1], sys.argv[2]
def w(p, data, mode=0o644):
    p = os.path.join(root, p.lstrip('/'))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, 'wb') as f: f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(p, mode)
if distro == 'debian':
    w('/etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL="https://www.debian.org/"\n')
    w('/etc/debian_version', '12.5\n')
    w('/etc/fstab', '# /etc/fstab: static file system information.\nUUID=11111111-2222-3333-4444-555555555555 / ext4 errors=remount-ro 0 1\nLABEL=boot /boot ext2 defaults 0 2\n/dev/sdb1 none swap sw 0 0\ntmpfs /tmp tmpfs defaults 0 0\n')
    w('/etc/hostname', 'fuzz-debian\n')
    w('/var/lib/dpkg/status', '''Package: base-files
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12985
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: coreutils
Status: deinstall ok config-files
Architecture: amd64
Version: 9.1-1
Description: GNU core utilities
''')
    w('/lib/apk/db/installed', '')
else:
    w('/etc/os-release', 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\nHOME_URL="https://alpinelinux.org/"\n')
    w('/etc/alpine-release', '3.19.1\n')
    w('/etc/fstab', '/dev/sda1 / ext4 rw,relatime 0 1\nUUID=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee /boot ext2 rw 0 2\n/dev/cdrom /media/cdrom iso9660 noauto,ro 0 0\n')
    w('/etc/hostname', 'fuzz-alpine\n')
    w('/lib/apk/db/installed', '''C:Q1Rg1D8Fz8XJY2nS0Zr3HxJm0Wx5E=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407093
I:655360
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1700000000
F:lib
R:ld-musl-x86_64.so.1

C:Q1abcdefabcdefabcdefabcdefabcdef=
P:busybox
V:1.36.1-r15
A:x86_64
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
''')
    w('/var/lib/dpkg/status', 'Package: stray\nStatus: install ok installed\nVersion: 1.0\n')
w('/etc/hosts', '127.0.0.1 localhost\n')
w('/etc/machine-id', '0123456789abcdef0123456789abcdef\n')
# ELF64, little-endian, x86-64 (e_machine 62) executable header.
elf = b'\x7fELF' + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 0, 64, 0, 0)
w('/usr/bin/ls', elf + bytes(64), 0o755)
w('/usr/lib/os-release', 'ID=shadowed\n')
os.makedirs(os.path.join(root, 'boot'), exist_ok=True)
os.makedirs(os.path.join(root, 'tmp'), exist_ok=True)
os.symlink('usr/bin', os.path.join(root, 'bin'))
os.symlink('usr/lib', os.path.join(root, 'lib64'))
# A long (slow) symlink, stored in a block rather than the inode.
os.symlink('/' + '/'.join(['usr'] + ['.'] * 40 + ['bin', 'ls']), os.path.join(root, 'usr/bin/longlink'))
os.symlink('loop', os.path.join(root, 'etc/loop'))
# A directory spanning several blocks (htree-indexed with dir_index).
for i in range(60):
    w(f'/usr/share/doc/package-with-a-long-name-{i:03d}', '')
