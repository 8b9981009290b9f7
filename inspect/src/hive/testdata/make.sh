#!/bin/sh
# Regenerates the fixtures of inspect/src/hive (see README) with the real tools: hivex's
# hivexregedit --merge fills empty hives (tests/data/windows/empty-hive.py) from the .reg
# files gen-reg.py writes; restructure.py adds what hivex never writes (ri/lf/li lists, db
# big data); hivexregedit --export and hivexget (hivex 1.3.23) record the real reader's view.
# Needs python3 and libhivex-bin.
set -eu
cd "$(dirname "$0")"
EMPTY=../../../../tests/data/windows/empty-hive.py

python3 gen-reg.py
for h in software system; do
    rm -f $h.hive
    python3 $EMPTY $h.hive ROOT
    hivexregedit --merge $h.hive $h.reg
done
python3 restructure.py software.hive software-ri-db.hive

# PERL_UNICODE=S: hivexregedit prints Latin-1 names unencoded otherwise.
for h in software system software-ri-db; do
    PERL_UNICODE=S hivexregedit --export $h.hive '\' >$h.export
done
# hivex reads the restructured hive as the original.
cmp software.export software-ri-db.export
rm software-ri-db.export

# hivexget HIVE KEY VALUE, one line each: hive, key, value, hivexget's output in hex.
CV='\Microsoft\Windows NT\CurrentVersion'
get() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(hivexget "$1" "$2" "$3" | od -An -v -tx1 | tr -d ' \n')"
}
{
    for h in software.hive software-ri-db.hive; do
        for v in ProductName CurrentVersion CurrentBuildNumber CurrentMajorVersionNumber \
            CurrentMinorVersionNumber InstallationType SystemRoot PathName InstallTime \
            Languages DigitalProductId BigEndian Nothing OddLength JunkAfterNul LongDword \
            Custom Link Big "" "Café crème" "Θεσσαλονίκη"; do
            get $h "$CV" "$v"
        done
        get $h '\MICROSOFT\windows nt\CurrentVersion' productNAME
        get $h "$CV"'\Été Français' Latin1Key
        get $h "$CV"'\Ωμέγα 中文' Utf16Key
        get $h '\Microsoft\Windows\CurrentVersion\Uninstall\App07' DisplayName
        get $h '\Microsoft\Windows\CurrentVersion\Uninstall\{0000137E-1234-5678-9ABC-DEF012345678}' DisplayVersion
        get $h '\Wow6432Node\Microsoft\Windows\CurrentVersion\Uninstall\Notepad++' DisplayName
    done
    get system.hive '\Select' Current
    get system.hive '\ControlSet001\Services\Tcpip\Parameters' Hostname
    get system.hive '\ControlSet001\Services\Tcpip\Parameters' Domain
    get system.hive '\controlset001\control\computername\computername' ComputerName
} >hivexget.expect
