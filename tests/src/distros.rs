//! Small test systems of the Red Hat, SUSE and Arch families, one per disk, each holding
//! the release files its distribution ships (os-release, the `*-release` files,
//! /etc/SuSE-release, /etc/sysconfig/network, /etc/HOSTNAME...) with their real contents, so
//! that libguestfs's distribution rules can be measured against virt-inspector.
//!
//! Each disk is one ext4 filesystem (`mkfs.ext4 -d`), on the whole disk or in the single
//! partition of an MBR disk, holding /etc/fstab, /etc/hosts and /bin/bash (through
//! /bin -> usr/bin on usr-merged systems): what libguestfs needs to call it a Linux root and
//! find its architecture. No package database: virt-inspector's answer is recorded with
//! `--no-applications --no-icon` in `tests/data/inspector/distros/<name>.xml`
//! (`cargo run -p vmchannel-tests --bin record-inspector distros [NAME...]`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::images::{Content, EM_X86_64, ImageError, MIB, Part, Tree, elf, make_disk, make_fs};

/// One entry of a system's tree.
#[derive(Clone, Copy, Debug)]
pub enum Entry {
    /// A regular file with these contents.
    File(&'static str),
    /// A symlink to this target (as written).
    Link(&'static str),
    /// An x86-64 ELF executable.
    Elf,
}

/// Where the filesystem sits on its disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placing {
    /// On the whole disk: the root is /dev/sda.
    WholeDisk,
    /// In partition 1 of an MBR disk: the root is /dev/sda1.
    Partition,
}

/// A test system.
#[derive(Clone, Copy, Debug)]
pub struct System {
    /// Its name, as in file names.
    pub name: &'static str,
    /// The release it imitates.
    pub imitates: &'static str,
    /// Where its filesystem is.
    pub placing: Placing,
    /// Its filesystem's UUID.
    pub uuid: &'static str,
    /// Its filesystem's label, if any.
    pub label: Option<&'static str>,
    /// /bin is a link to usr/bin (bash is /usr/bin/bash), else a directory (/bin/bash).
    pub usr_merged: bool,
    /// /etc/fstab; `@UUID@` stands for [`System::uuid`].
    pub fstab: &'static str,
    /// Every other file, by absolute path.
    pub files: &'static [(&'static str, Entry)],
}

use Entry::{Elf, File, Link};

const FSTAB_UUID: &str = "UUID=@UUID@ /                       ext4    defaults        1 1\n";

/// Fedora 39 without a VARIANT (fedora-release-common's os-release), dnf installed.
const FEDORA39: System = System {
    name: "fedora39",
    imitates: "Fedora 39 (fedora-release-common, no edition)",
    placing: Placing::WholeDisk,
    uuid: "d1570001-0000-4000-8000-000000000039",
    label: Some("fedora"),
    usr_merged: true,
    fstab: FSTAB_UUID,
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"Fedora Linux\"\nVERSION=\"39 (Thirty Nine)\"\nID=fedora\nVERSION_ID=39\n\
                 VERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f39\"\n\
                 PRETTY_NAME=\"Fedora Linux 39 (Thirty Nine)\"\nANSI_COLOR=\"0;38;2;60;110;180\"\n\
                 LOGO=fedora-logo-icon\nCPE_NAME=\"cpe:/o:fedoraproject:fedora:39\"\n\
                 DEFAULT_HOSTNAME=\"fedora\"\nHOME_URL=\"https://fedoraproject.org/\"\n\
                 DOCUMENTATION_URL=\"https://docs.fedoraproject.org/en-US/fedora/f39/system-administrators-guide/\"\n\
                 SUPPORT_URL=\"https://ask.fedoraproject.org/\"\n\
                 BUG_REPORT_URL=\"https://bugzilla.redhat.com/\"\n\
                 REDHAT_BUGZILLA_PRODUCT=\"Fedora\"\nREDHAT_BUGZILLA_PRODUCT_VERSION=39\n\
                 REDHAT_SUPPORT_PRODUCT=\"Fedora\"\nREDHAT_SUPPORT_PRODUCT_VERSION=39\n\
                 SUPPORT_END=2024-11-12\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        (
            "/etc/fedora-release",
            File("Fedora release 39 (Thirty Nine)\n"),
        ),
        ("/etc/redhat-release", Link("fedora-release")),
        ("/etc/system-release", Link("fedora-release")),
        ("/etc/hostname", File("fedora39.example.com\n")),
        ("/usr/bin/dnf-3", Elf),
        ("/usr/bin/dnf", Link("dnf-3")),
    ],
};

const RHEL89: System = System {
    name: "rhel89",
    imitates: "Red Hat Enterprise Linux 8.9 (Ootpa)",
    placing: Placing::WholeDisk,
    uuid: "d1570002-0000-4000-8000-000000000089",
    label: None,
    usr_merged: true,
    fstab: FSTAB_UUID,
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.9 (Ootpa)\"\nID=\"rhel\"\n\
                 ID_LIKE=\"fedora\"\nVERSION_ID=\"8.9\"\nPLATFORM_ID=\"platform:el8\"\n\
                 PRETTY_NAME=\"Red Hat Enterprise Linux 8.9 (Ootpa)\"\nANSI_COLOR=\"0;31\"\n\
                 CPE_NAME=\"cpe:/o:redhat:enterprise_linux:8::baseos\"\n\
                 HOME_URL=\"https://www.redhat.com/\"\n\
                 DOCUMENTATION_URL=\"https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/8\"\n\
                 BUG_REPORT_URL=\"https://bugzilla.redhat.com/\"\n\n\
                 REDHAT_BUGZILLA_PRODUCT=\"Red Hat Enterprise Linux 8\"\n\
                 REDHAT_BUGZILLA_PRODUCT_VERSION=8.9\n\
                 REDHAT_SUPPORT_PRODUCT=\"Red Hat Enterprise Linux\"\n\
                 REDHAT_SUPPORT_PRODUCT_VERSION=\"8.9\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        (
            "/etc/redhat-release",
            File("Red Hat Enterprise Linux release 8.9 (Ootpa)\n"),
        ),
        ("/etc/system-release", Link("redhat-release")),
        ("/etc/hostname", File("rhel8.example.com\n")),
        ("/usr/bin/dnf-3", Elf),
        ("/usr/bin/dnf", Link("dnf-3")),
        ("/usr/bin/yum", Link("dnf-3")),
    ],
};

const RHEL79: System = System {
    name: "rhel79",
    imitates: "Red Hat Enterprise Linux Server 7.9 (Maipo)",
    placing: Placing::Partition,
    uuid: "d1570003-0000-4000-8000-000000000079",
    label: None,
    usr_merged: true,
    fstab: "\n#\n# /etc/fstab\n# Created by anaconda on Tue Sep 29 10:21:51 2020\n#\n\
            # Accessible filesystems, by reference, are maintained under '/dev/disk'\n\
            # See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info\n#\n\
            UUID=@UUID@ /                       ext4    defaults        1 1\n",
    files: &[
        (
            "/etc/os-release",
            File(
                "NAME=\"Red Hat Enterprise Linux Server\"\nVERSION=\"7.9 (Maipo)\"\nID=\"rhel\"\n\
                 ID_LIKE=\"fedora\"\nVARIANT=\"Server\"\nVARIANT_ID=\"server\"\nVERSION_ID=\"7.9\"\n\
                 PRETTY_NAME=\"Red Hat Enterprise Linux Server 7.9 (Maipo)\"\nANSI_COLOR=\"0;31\"\n\
                 CPE_NAME=\"cpe:/o:redhat:enterprise_linux:7.9:GA:server\"\n\
                 HOME_URL=\"https://www.redhat.com/\"\nBUG_REPORT_URL=\"https://bugzilla.redhat.com/\"\n\n\
                 REDHAT_BUGZILLA_PRODUCT=\"Red Hat Enterprise Linux 7\"\n\
                 REDHAT_BUGZILLA_PRODUCT_VERSION=7.9\n\
                 REDHAT_SUPPORT_PRODUCT=\"Red Hat Enterprise Linux\"\n\
                 REDHAT_SUPPORT_PRODUCT_VERSION=\"7.9\"\n",
            ),
        ),
        (
            "/etc/redhat-release",
            File("Red Hat Enterprise Linux Server release 7.9 (Maipo)\n"),
        ),
        ("/etc/system-release", Link("redhat-release")),
        ("/etc/hostname", File("rhel7.example.com\n")),
        ("/usr/bin/yum", Elf),
    ],
};

/// RHEL 6: no os-release, no /etc/hostname; the host name is in /etc/sysconfig/network.
const RHEL610: System = System {
    name: "rhel610",
    imitates: "Red Hat Enterprise Linux Server 6.10 (Santiago)",
    placing: Placing::Partition,
    uuid: "d1570004-0000-4000-8000-000000000610",
    label: None,
    usr_merged: false,
    fstab: "\n#\n# /etc/fstab\n# Created by anaconda on Mon Jun 18 09:12:01 2018\n#\n\
            # Accessible filesystems, by reference, are maintained under '/dev/disk'\n\
            # See man pages fstab(5), findfs(8), mount(8) and/or blkid(8) for more info\n#\n\
            UUID=@UUID@ /                       ext4    defaults        1 1\n\
            tmpfs                   /dev/shm                tmpfs   defaults        0 0\n\
            devpts                  /dev/pts                devpts  gid=5,mode=620  0 0\n\
            sysfs                   /sys                    sysfs   defaults        0 0\n\
            proc                    /proc                   proc    defaults        0 0\n",
    files: &[
        (
            "/etc/redhat-release",
            File("Red Hat Enterprise Linux Server release 6.10 (Santiago)\n"),
        ),
        ("/etc/system-release", Link("redhat-release")),
        (
            "/etc/sysconfig/network",
            File("NETWORKING=yes\nHOSTNAME=rhel6.example.com\n"),
        ),
        ("/usr/bin/yum", Elf),
    ],
};

/// CentOS 6: centos-release with redhat-release linked to it; the host name quoted in
/// /etc/sysconfig/network (as some tools write it).
const CENTOS610: System = System {
    name: "centos610",
    imitates: "CentOS release 6.10 (Final)",
    placing: Placing::Partition,
    uuid: "d1570005-0000-4000-8000-000000000610",
    label: None,
    usr_merged: false,
    fstab: "UUID=@UUID@ /                       ext4    defaults        1 1\n\
            tmpfs                   /dev/shm                tmpfs   defaults        0 0\n",
    files: &[
        ("/etc/centos-release", File("CentOS release 6.10 (Final)\n")),
        ("/etc/redhat-release", Link("centos-release")),
        ("/etc/system-release", Link("centos-release")),
        (
            "/etc/sysconfig/network",
            File("NETWORKING=yes\nHOSTNAME=\"centos6.localdomain\"\nNOZEROCONF=yes\n"),
        ),
    ],
};

const CENTOS_STREAM9: System = System {
    name: "centos-stream9",
    imitates: "CentOS Stream 9",
    placing: Placing::WholeDisk,
    uuid: "d1570006-0000-4000-8000-000000000009",
    label: Some("root"),
    usr_merged: true,
    fstab: FSTAB_UUID,
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"CentOS Stream\"\nVERSION=\"9\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\n\
                 VERSION_ID=\"9\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"CentOS Stream 9\"\n\
                 ANSI_COLOR=\"0;31\"\nLOGO=\"fedora-logo-icon\"\n\
                 CPE_NAME=\"cpe:/o:centos:centos:9\"\nHOME_URL=\"https://centos.org/\"\n\
                 BUG_REPORT_URL=\"https://issues.redhat.com/\"\n\
                 REDHAT_SUPPORT_PRODUCT=\"Red Hat Enterprise Linux 9\"\n\
                 REDHAT_SUPPORT_PRODUCT_VERSION=\"CentOS Stream\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        ("/etc/centos-release", File("CentOS Stream release 9\n")),
        ("/etc/redhat-release", Link("centos-release")),
        ("/etc/system-release", Link("centos-release")),
        ("/etc/hostname", File("stream9.localdomain\n")),
    ],
};

const ROCKY93: System = System {
    name: "rocky93",
    imitates: "Rocky Linux 9.3 (Blue Onyx)",
    placing: Placing::WholeDisk,
    uuid: "d1570007-0000-4000-8000-000000000093",
    label: None,
    usr_merged: true,
    fstab: FSTAB_UUID,
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\n\
                 ID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\n\
                 PRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\nANSI_COLOR=\"0;32\"\n\
                 LOGO=\"fedora-logo-icon\"\nCPE_NAME=\"cpe:/o:rocky:rocky:9::baseos\"\n\
                 HOME_URL=\"https://rockylinux.org/\"\nBUG_REPORT_URL=\"https://bugs.rockylinux.org/\"\n\
                 SUPPORT_END=\"2032-05-31\"\nROCKY_SUPPORT_PRODUCT=\"Rocky-Linux-9\"\n\
                 ROCKY_SUPPORT_PRODUCT_VERSION=\"9.3\"\nREDHAT_SUPPORT_PRODUCT=\"Rocky Linux\"\n\
                 REDHAT_SUPPORT_PRODUCT_VERSION=\"9.3\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        (
            "/etc/rocky-release",
            File("Rocky Linux release 9.3 (Blue Onyx)\n"),
        ),
        (
            "/etc/rocky-release-upstream",
            File("Derived from Red Hat Enterprise Linux 9.3\n"),
        ),
        ("/etc/redhat-release", Link("rocky-release")),
        ("/etc/system-release", Link("rocky-release")),
        ("/etc/hostname", File("rocky9.example.com\n")),
    ],
};

const ALMA93: System = System {
    name: "almalinux93",
    imitates: "AlmaLinux 9.3 (Shamrock Pearl Cat)",
    placing: Placing::WholeDisk,
    uuid: "d1570008-0000-4000-8000-000000000093",
    label: None,
    usr_merged: true,
    fstab: FSTAB_UUID,
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"AlmaLinux\"\nVERSION=\"9.3 (Shamrock Pearl Cat)\"\nID=\"almalinux\"\n\
                 ID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\n\
                 PRETTY_NAME=\"AlmaLinux 9.3 (Shamrock Pearl Cat)\"\nANSI_COLOR=\"0;34\"\n\
                 LOGO=\"fedora-logo-icon\"\nCPE_NAME=\"cpe:/o:almalinux:almalinux:9::baseos\"\n\
                 HOME_URL=\"https://almalinux.org/\"\nDOCUMENTATION_URL=\"https://wiki.almalinux.org/\"\n\
                 BUG_REPORT_URL=\"https://bugs.almalinux.org/\"\n\n\
                 ALMALINUX_MANTISBT_PROJECT=\"AlmaLinux-9\"\n\
                 ALMALINUX_MANTISBT_PROJECT_VERSION=\"9.3\"\n\
                 REDHAT_SUPPORT_PRODUCT=\"AlmaLinux\"\nREDHAT_SUPPORT_PRODUCT_VERSION=\"9.3\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        (
            "/etc/almalinux-release",
            File("AlmaLinux release 9.3 (Shamrock Pearl Cat)\n"),
        ),
        ("/etc/redhat-release", Link("almalinux-release")),
        ("/etc/system-release", Link("almalinux-release")),
        ("/etc/hostname", File("alma9.example.com\n")),
    ],
};

/// Oracle Linux 8: os-release with `ID="ol"`, oracle-release, and a redhat-release that
/// says Red Hat Enterprise Linux.
const ORACLE89: System = System {
    name: "oracle89",
    imitates: "Oracle Linux Server 8.9",
    placing: Placing::WholeDisk,
    uuid: "d1570009-0000-4000-8000-000000000089",
    label: None,
    usr_merged: true,
    fstab: FSTAB_UUID,
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"Oracle Linux Server\"\nVERSION=\"8.9\"\nID=\"ol\"\nID_LIKE=\"fedora\"\n\
                 VARIANT=\"Server\"\nVARIANT_ID=\"server\"\nVERSION_ID=\"8.9\"\n\
                 PLATFORM_ID=\"platform:el8\"\nPRETTY_NAME=\"Oracle Linux Server 8.9\"\n\
                 ANSI_COLOR=\"0;31\"\nCPE_NAME=\"cpe:/o:oracle:linux:8:9:server\"\n\
                 HOME_URL=\"https://linux.oracle.com/\"\n\
                 BUG_REPORT_URL=\"https://github.com/oracle/oracle-linux\"\n\n\
                 ORACLE_BUGZILLA_PRODUCT=\"Oracle Linux 8\"\nORACLE_BUGZILLA_PRODUCT_VERSION=8.9\n\
                 ORACLE_SUPPORT_PRODUCT=\"Oracle Linux\"\nORACLE_SUPPORT_PRODUCT_VERSION=8.9\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        (
            "/etc/oracle-release",
            File("Oracle Linux Server release 8.9\n"),
        ),
        (
            "/etc/redhat-release",
            File("Red Hat Enterprise Linux release 8.9 (Ootpa)\n"),
        ),
        ("/etc/system-release", Link("oracle-release")),
        ("/etc/hostname", File("ol8.example.com\n")),
    ],
};

const SCIENTIFIC79: System = System {
    name: "scientific79",
    imitates: "Scientific Linux 7.9 (Nitrogen)",
    placing: Placing::Partition,
    uuid: "d157000a-0000-4000-8000-000000000079",
    label: None,
    usr_merged: true,
    fstab: FSTAB_UUID,
    files: &[
        (
            "/etc/os-release",
            File(
                "NAME=\"Scientific Linux\"\nVERSION=\"7.9 (Nitrogen)\"\nID=\"scientific\"\n\
                 ID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"7.9\"\n\
                 PRETTY_NAME=\"Scientific Linux 7.9 (Nitrogen)\"\nANSI_COLOR=\"0;31\"\n\
                 CPE_NAME=\"cpe:/o:scientificlinux:scientificlinux:7.9:GA\"\n\
                 HOME_URL=\"http://www.scientificlinux.org//\"\n\
                 BUG_REPORT_URL=\"mailto:scientific-linux-devel@listserv.fnal.gov\"\n\n\
                 REDHAT_BUGZILLA_PRODUCT=\"Scientific Linux 7\"\n\
                 REDHAT_BUGZILLA_PRODUCT_VERSION=7.9\n\
                 REDHAT_SUPPORT_PRODUCT=\"Scientific Linux\"\n\
                 REDHAT_SUPPORT_PRODUCT_VERSION=\"7.9\"\n",
            ),
        ),
        (
            "/etc/redhat-release",
            File("Scientific Linux release 7.9 (Nitrogen)\n"),
        ),
        ("/etc/system-release", Link("redhat-release")),
        ("/etc/hostname", File("sl7.fnal.gov\n")),
    ],
};

/// Tumbleweed: /etc/os-release links to /usr/lib/os-release, whose VERSION_ID is a date.
const TUMBLEWEED: System = System {
    name: "tumbleweed",
    imitates: "openSUSE Tumbleweed 20240601",
    placing: Placing::WholeDisk,
    uuid: "d157000b-0000-4000-8000-000020240601",
    label: Some("ROOT"),
    usr_merged: true,
    fstab: "UUID=@UUID@  /  ext4  defaults  0  1\n",
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"openSUSE Tumbleweed\"\n# VERSION=\"20240601\"\nID=\"opensuse-tumbleweed\"\n\
                 ID_LIKE=\"opensuse suse\"\nVERSION_ID=\"20240601\"\n\
                 PRETTY_NAME=\"openSUSE Tumbleweed\"\nANSI_COLOR=\"0;32\"\n\
                 CPE_NAME=\"cpe:/o:opensuse:tumbleweed:20240601\"\n\
                 BUG_REPORT_URL=\"https://bugzilla.opensuse.org\"\n\
                 SUPPORT_URL=\"https://bugs.opensuse.org\"\n\
                 HOME_URL=\"https://www.opensuse.org\"\n\
                 DOCUMENTATION_URL=\"https://en.opensuse.org/Portal:Tumbleweed\"\n\
                 LOGO=\"distributor-logo-Tumbleweed\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        ("/etc/hostname", File("tumbleweed\n")),
        ("/usr/bin/zypper", Elf),
    ],
};

/// Leap 15.5: /etc/HOSTNAME a link to /etc/hostname, as Leap 15 ships it.
const LEAP155: System = System {
    name: "leap155",
    imitates: "openSUSE Leap 15.5",
    placing: Placing::WholeDisk,
    uuid: "d157000c-0000-4000-8000-000000000155",
    label: None,
    usr_merged: false,
    fstab: "UUID=@UUID@  /  ext4  defaults  0  1\n",
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"openSUSE Leap\"\nVERSION=\"15.5\"\nID=\"opensuse-leap\"\n\
                 ID_LIKE=\"suse opensuse\"\nVERSION_ID=\"15.5\"\n\
                 PRETTY_NAME=\"openSUSE Leap 15.5\"\nANSI_COLOR=\"0;32\"\n\
                 CPE_NAME=\"cpe:/o:opensuse:leap:15.5\"\n\
                 BUG_REPORT_URL=\"https://bugs.opensuse.org\"\n\
                 HOME_URL=\"https://www.opensuse.org/\"\n\
                 DOCUMENTATION_URL=\"https://en.opensuse.org/Portal:Leap\"\n\
                 LOGO=\"distributor-logo-Leap\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        ("/etc/hostname", File("leap155.suse.lan\n")),
        ("/etc/HOSTNAME", Link("hostname")),
    ],
};

const SLES15SP5: System = System {
    name: "sles15sp5",
    imitates: "SUSE Linux Enterprise Server 15 SP5",
    placing: Placing::WholeDisk,
    uuid: "d157000d-0000-4000-8000-000000001505",
    label: None,
    usr_merged: false,
    fstab: "UUID=@UUID@  /  ext4  defaults  0  1\n",
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"SLES\"\nVERSION=\"15-SP5\"\nVERSION_ID=\"15.5\"\n\
                 PRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\nID=\"sles\"\n\
                 ID_LIKE=\"suse\"\nANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles:15:sp5\"\n\
                 DOCUMENTATION_URL=\"https://documentation.suse.com/\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        ("/etc/hostname", File("sles15.suse.lan\n")),
        ("/etc/HOSTNAME", Link("hostname")),
    ],
};

/// SLES 12 SP5: os-release, and the deprecated /etc/SuSE-release still there.
const SLES12SP5: System = System {
    name: "sles12sp5",
    imitates: "SUSE Linux Enterprise Server 12 SP5",
    placing: Placing::WholeDisk,
    uuid: "d157000e-0000-4000-8000-000000001205",
    label: None,
    usr_merged: false,
    fstab: "UUID=@UUID@ / ext4 acl,user_xattr 1 1\n",
    files: &[
        (
            "/usr/lib/os-release",
            File(
                "NAME=\"SLES\"\nVERSION=\"12-SP5\"\nVERSION_ID=\"12.5\"\n\
                 PRETTY_NAME=\"SUSE Linux Enterprise Server 12 SP5\"\nID=\"sles\"\n\
                 ANSI_COLOR=\"0;32\"\nCPE_NAME=\"cpe:/o:suse:sles:12:sp5\"\n",
            ),
        ),
        ("/etc/os-release", Link("../usr/lib/os-release")),
        (
            "/etc/SuSE-release",
            File(
                "SUSE Linux Enterprise Server 12 (x86_64)\nVERSION = 12\nPATCHLEVEL = 5\n\
                 # This file is deprecated and will be removed in a future service pack or release.\n\
                 # Please check /etc/os-release for details about this release.\n",
            ),
        ),
        ("/etc/HOSTNAME", File("sles12.suse.lan\n")),
    ],
};

/// SLES 11 SP4: no os-release; SuSE-release, and a bare lsb-release (`LSB_VERSION` only).
const SLES11SP4: System = System {
    name: "sles11sp4",
    imitates: "SUSE Linux Enterprise Server 11 SP4",
    placing: Placing::Partition,
    uuid: "d157000f-0000-4000-8000-000000001104",
    label: None,
    usr_merged: false,
    fstab: "/dev/sda1            /                    ext3       acl,user_xattr        1 1\n\
            proc                 /proc                proc       defaults              0 0\n\
            sysfs                /sys                 sysfs      noauto                0 0\n\
            debugfs              /sys/kernel/debug    debugfs    noauto                0 0\n\
            devpts               /dev/pts             devpts     mode=0620,gid=5       0 0\n",
    files: &[
        (
            "/etc/SuSE-release",
            File("SUSE Linux Enterprise Server 11 (x86_64)\nVERSION = 11\nPATCHLEVEL = 4\n"),
        ),
        (
            "/etc/lsb-release",
            File(
                "LSB_VERSION=\"core-2.0-noarch:core-3.2-noarch:core-4.0-noarch:core-2.0-x86_64:core-3.2-x86_64:core-4.0-x86_64\"\n",
            ),
        ),
        ("/etc/HOSTNAME", File("sles11sp4.site\n")),
    ],
};

/// openSUSE 13.2 as its release files were before os-release took over: SuSE-release only.
const OPENSUSE132: System = System {
    name: "opensuse132",
    imitates: "openSUSE 13.2 (Harlequin), /etc/SuSE-release only",
    placing: Placing::Partition,
    uuid: "d1570010-0000-4000-8000-000000001302",
    label: None,
    usr_merged: false,
    fstab: "UUID=@UUID@ / ext4 acl,user_xattr 1 1\n",
    files: &[
        (
            "/etc/SuSE-release",
            File(
                "openSUSE 13.2 (x86_64)\nVERSION = 13.2\nCODENAME = Harlequin\n\
                 # /etc/SuSE-release is deprecated and will be removed in a future service pack or release.\n\
                 # Please check /etc/os-release for details about this release.\n",
            ),
        ),
        ("/etc/HOSTNAME", File("linux-h2so.site\n")),
    ],
};

/// Arch before os-release: an empty /etc/arch-release.
const ARCH_OLD: System = System {
    name: "arch-release",
    imitates: "Arch Linux with only the (empty) /etc/arch-release",
    placing: Placing::WholeDisk,
    uuid: "d1570011-0000-4000-8000-00000000a4c4",
    label: None,
    usr_merged: true,
    fstab: "# Static information about the filesystems.\n# See fstab(5) for details.\n\n\
            # <file system> <dir> <type> <options> <dump> <pass>\n\
            UUID=@UUID@\t/\text4\trw,relatime\t0 1\n",
    files: &[
        ("/etc/arch-release", File("")),
        ("/etc/hostname", File("archbox\n")),
        ("/usr/bin/pacman", Elf),
    ],
};

/// Every test system.
pub const ALL: &[System] = &[
    FEDORA39,
    RHEL89,
    RHEL79,
    RHEL610,
    CENTOS610,
    CENTOS_STREAM9,
    ROCKY93,
    ALMA93,
    ORACLE89,
    SCIENTIFIC79,
    TUMBLEWEED,
    LEAP155,
    SLES15SP5,
    SLES12SP5,
    SLES11SP4,
    OPENSUSE132,
    ARCH_OLD,
];

impl System {
    /// virt-inspector's XML for it (`--no-applications --no-icon`), as recorded.
    pub fn inspector_xml(&self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/inspector/distros")
            .join(format!("{}.xml", self.name))
    }

    /// Writes its tree into `t`.
    pub fn fill(&self, t: &Tree) -> Result<(), ImageError> {
        t.dir("/etc")?
            .file("/etc/fstab", self.fstab.replace("@UUID@", self.uuid))?
            .file(
                "/etc/hosts",
                "127.0.0.1   localhost localhost.localdomain\n::1         localhost\n",
            )?
            .dir("/root")?
            .dir("/var/log")?
            .dir("/usr/lib")?;
        if self.usr_merged {
            t.file("/usr/bin/bash", elf(EM_X86_64))?
                .link("/usr/bin/sh", "bash")?
                .dir("/usr/sbin")?
                .dir("/usr/lib64")?
                .link("/bin", "usr/bin")?
                .link("/sbin", "usr/sbin")?
                .link("/lib64", "usr/lib64")?;
        } else {
            t.file("/bin/bash", elf(EM_X86_64))?
                .link("/bin/sh", "bash")?
                .dir("/sbin")?
                .dir("/usr/bin")?;
        }
        for &(path, entry) in self.files {
            match entry {
                File(text) => t.file(path, text)?,
                Link(target) => t.link(path, target)?,
                Elf => t.file(path, elf(EM_X86_64))?,
            };
        }
        Ok(())
    }

    /// Builds its disk at `path`; `scratch` is a directory for the tree.
    pub fn build(&self, path: &Path, scratch: &Path) -> Result<(), ImageError> {
        let dir = scratch.join(format!("t-{}", self.name));
        let _ = fs::remove_dir_all(&dir);
        let t = Tree::new(&dir)?;
        self.fill(&t)?;
        let content = Content::Ext4 {
            tree: t.path(),
            uuid: self.uuid,
            label: self.label,
        };
        let result = match self.placing {
            Placing::WholeDisk => make_fs(path, 16 * MIB, &content),
            Placing::Partition => make_disk(
                path,
                18,
                "dos",
                &[Part {
                    mib: 16,
                    kind: "83",
                    name: None,
                    content,
                }],
            ),
        };
        let _ = fs::remove_dir_all(&dir);
        result
    }
}

/// The disks of [`ALL`], built once per test binary into a temporary directory that is
/// removed when the binary exits.
pub struct DistroSet {
    /// Keeps the files.
    pub dir: tempfile::TempDir,
    /// Each system's image, in [`ALL`] order.
    pub images: Vec<(System, PathBuf)>,
}

/// The test systems' disks, built on first use and shared by every test in the binary.
pub fn shared() -> &'static DistroSet {
    static SET: std::sync::OnceLock<DistroSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("vmch-distros")
            .tempdir()
            .expect("a temp dir for the distribution disks");
        crate::images::remove_at_exit(dir.path());
        let images = ALL
            .iter()
            .map(|s| {
                let img = dir.path().join(format!("{}.img", s.name));
                s.build(&img, dir.path())
                    .unwrap_or_else(|e| panic!("building the {} disk: {e}", s.name));
                (*s, img)
            })
            .collect();
        DistroSet { dir, images }
    })
}
