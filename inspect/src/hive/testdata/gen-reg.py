#!/usr/bin/env python3
"""Writes the .reg files the test hives are merged from (run by make.sh): software.reg, a
SOFTWARE-like hive, and system.reg, a SYSTEM-like one. Parents are listed before children,
as hivexregedit --merge needs."""


def hexbytes(b):
    return ",".join("%02x" % x for x in b)


def utf16z(s):
    return (s + "\0").encode("utf-16-le")


def write(name, lines):
    with open(name, "w", encoding="utf-8", newline="\n") as f:
        f.write("Windows Registry Editor Version 5.00\n\n")
        f.write("\n".join(lines) + "\n")


sw = [
    "[\\Microsoft]",
    "",
    "[\\Microsoft\\Windows NT]",
    "",
    "[\\Microsoft\\Windows NT\\CurrentVersion]",
    '@="default value"',
    '"ProductName"="Windows Server 2022 Standard"',
    '"CurrentVersion"="6.3"',
    '"CurrentBuildNumber"="20348"',
    '"CurrentMajorVersionNumber"=dword:0000000a',
    '"CurrentMinorVersionNumber"=dword:00000000',
    '"InstallationType"="Server"',
    '"SystemRoot"="C:\\\\Windows"',
    '"PathName"=hex(2):' + hexbytes(utf16z("%SystemRoot%\\system32")),
    '"InstallTime"=hex(b):' + hexbytes((0x01D8_2F3A_1B2C_3D4E).to_bytes(8, "little")),
    '"Languages"=hex(7):' + hexbytes(utf16z("en-US") + utf16z("fr-FR") + utf16z("") + utf16z("de-DE") + b"\0\0"),
    '"DigitalProductId"=hex:' + hexbytes(bytes(range(0, 164))),
    '"BigEndian"=hex(5):12,34,56,78',
    '"Nothing"=hex(0):',
    '"OddLength"=hex(1):' + hexbytes("AB".encode("utf-16-le") + b"C"),
    '"JunkAfterNul"=hex(1):' + hexbytes(utf16z("ok") + b"\x00\xd8\xff\xff"),
    '"LongDword"=hex(4):01,02,03,04,05,06',
    '"ShortQword"=hex(b):01,02,03,04',
    '"Custom"=hex(4d2):de,ad,be,ef,01',
    '"Link"=hex(6):' + hexbytes("\\Registry\\Machine\\Software".encode("utf-16-le")),
    '"Big"=hex:' + hexbytes(bytes((i * 7 + i // 251) % 256 for i in range(100_000))),
    '"Caf\u00e9 cr\u00e8me"="Latin-1 name"',
    # hivexregedit --merge encodes a quoted string's UTF-8 bytes one by one: non-ASCII data as hex(1).
    '"\u0398\u03b5\u03c3\u03c3\u03b1\u03bb\u03bf\u03bd\u03af\u03ba\u03b7"=hex(1):'
    + hexbytes(utf16z("UTF-16 name, \u4e2d\u6587 \U0001F600 data")),
    "",
    "[\\Microsoft\\Windows NT\\CurrentVersion\\\u00c9t\u00e9 Fran\u00e7ais]",
    '"Latin1Key"=dword:00000001',
    "",
    "[\\Microsoft\\Windows NT\\CurrentVersion\\\u03a9\u03bc\u03ad\u03b3\u03b1 \u4e2d\u6587]",
    '"Utf16Key"=dword:00000002',
    "",
    "[\\Microsoft\\Windows NT\\CurrentVersion\\MiXeD CaSe]",
    "",
    "[\\Microsoft\\Windows]",
    "",
    "[\\Microsoft\\Windows\\CurrentVersion]",
    "",
    "[\\Microsoft\\Windows\\CurrentVersion\\Uninstall]",
    "",
]
for i in range(50):
    # Names that do not sort in creation order (hivex keeps lh lists sorted, as Windows).
    name = "App%02d" % ((i * 17) % 50) if i % 5 else "{%08X-1234-5678-9ABC-DEF012345678}" % (i * 0x1F3)
    sw += [
        "[\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\%s]" % name,
        '"DisplayName"="Application %d"' % i,
        '"DisplayVersion"="%d.%d.%d"' % (i // 10, i % 10, i * 3),
        '"Publisher"="Publisher %s"' % chr(ord("A") + i % 26),
        '"EstimatedSize"=dword:%08x' % (i * 1024),
        "",
    ]
sw += [
    "[\\Wow6432Node]",
    "",
    "[\\Wow6432Node\\Microsoft]",
    "",
    "[\\Wow6432Node\\Microsoft\\Windows]",
    "",
    "[\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion]",
    "",
    "[\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall]",
    "",
    "[\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\Notepad++]",
    '"DisplayName"="Notepad++ (32-bit x86)"',
    '"DisplayVersion"="8.5.4"',
    "",
]
write("software.reg", sw)

mbr = bytes.fromhex("1a2b3c4d") + (1048576).to_bytes(8, "little")
guid = b"DMIO:ID:" + bytes(range(0x10, 0x20))
sy = [
    "[\\Select]",
    '"Current"=dword:00000001',
    '"Default"=dword:00000001',
    '"Failed"=dword:00000000',
    '"LastKnownGood"=dword:00000002',
    "",
    "[\\ControlSet001]",
    "",
    "[\\ControlSet001\\Control]",
    "",
    "[\\ControlSet001\\Control\\ComputerName]",
    "",
    "[\\ControlSet001\\Control\\ComputerName\\ComputerName]",
    '"ComputerName"="WIN-2022SRV"',
    "",
    "[\\ControlSet001\\Services]",
    "",
    "[\\ControlSet001\\Services\\Tcpip]",
    "",
    "[\\ControlSet001\\Services\\Tcpip\\Parameters]",
    '"Hostname"="win-2022srv"',
    '"Domain"=""',
    '"NV Hostname"="win-2022srv"',
    "",
    "[\\ControlSet002]",
    "",
    "[\\MountedDevices]",
    '"\\\\DosDevices\\\\C:"=hex:' + hexbytes(mbr),
    '"\\\\DosDevices\\\\E:"=hex:' + hexbytes(guid),
    '"\\\\??\\\\Volume{0a1b2c3d-0000-0000-0000-100000000000}"=hex:' + hexbytes(mbr),
    "",
]
write("system.reg", sy)
