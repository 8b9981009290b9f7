//! Linux distributions as libguestfs names them, and what follows from the distribution and
//! version: package format, package manager, libosinfo short id.

use alloc::format;
use alloc::string::String;

/// A distribution libguestfs 1.48 can tell apart. (Later versions added AlmaLinux, Circle,
/// OpenCloudOS, TencentOS and openEuler; 1.48 calls the first two `redhat-based` by their
/// /etc/redhat-release and does not know the others.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Distro {
    AlpineLinux,
    AltLinux,
    ArchLinux,
    Buildroot,
    CentOs,
    Cirros,
    CoreOs,
    Debian,
    Fedora,
    Frugalware,
    Gentoo,
    KaliLinux,
    Kylin,
    LinuxMint,
    Mageia,
    Meego,
    NeoKylin,
    OpenMandriva,
    OpenSuse,
    OracleLinux,
    Pardus,
    PldLinux,
    RedhatBased,
    Rhel,
    Rocky,
    ScientificLinux,
    Slackware,
    Sles,
    SuseBased,
    TtyLinux,
    Ubuntu,
    VoidLinux,
}

impl Distro {
    /// The name libguestfs's `inspect_get_distro` gives.
    pub fn name(self) -> &'static str {
        match self {
            Distro::AlpineLinux => "alpinelinux",
            Distro::AltLinux => "altlinux",
            Distro::ArchLinux => "archlinux",
            Distro::Buildroot => "buildroot",
            Distro::CentOs => "centos",
            Distro::Cirros => "cirros",
            Distro::CoreOs => "coreos",
            Distro::Debian => "debian",
            Distro::Fedora => "fedora",
            Distro::Frugalware => "frugalware",
            Distro::Gentoo => "gentoo",
            Distro::KaliLinux => "kalilinux",
            Distro::Kylin => "kylin",
            Distro::LinuxMint => "linuxmint",
            Distro::Mageia => "mageia",
            Distro::Meego => "meego",
            Distro::NeoKylin => "neokylin",
            Distro::OpenMandriva => "openmandriva",
            Distro::OpenSuse => "opensuse",
            Distro::OracleLinux => "oraclelinux",
            Distro::Pardus => "pardus",
            Distro::PldLinux => "pldlinux",
            Distro::RedhatBased => "redhat-based",
            Distro::Rhel => "rhel",
            Distro::Rocky => "rocky",
            Distro::ScientificLinux => "scientificlinux",
            Distro::Slackware => "slackware",
            Distro::Sles => "sles",
            Distro::SuseBased => "suse-based",
            Distro::TtyLinux => "ttylinux",
            Distro::Ubuntu => "ubuntu",
            Distro::VoidLinux => "voidlinux",
        }
    }

    /// The distribution of an os-release `ID=` value. libguestfs 1.48 knows neither
    /// `almalinux` nor `linuxmint` (nor `ol` or `scientific`) here: those systems are told by
    /// their other release files.
    pub fn from_os_release_id(id: &str) -> Option<Distro> {
        Some(match id {
            "alpine" => Distro::AlpineLinux,
            "altlinux" => Distro::AltLinux,
            "arch" => Distro::ArchLinux,
            "centos" => Distro::CentOs,
            "coreos" => Distro::CoreOs,
            "debian" => Distro::Debian,
            "fedora" => Distro::Fedora,
            "frugalware" => Distro::Frugalware,
            "gentoo" => Distro::Gentoo,
            "kali" => Distro::KaliLinux,
            "kylin" => Distro::Kylin,
            "mageia" => Distro::Mageia,
            "neokylin" => Distro::NeoKylin,
            "openmandriva" => Distro::OpenMandriva,
            "opensuse" => Distro::OpenSuse,
            s if s.starts_with("opensuse-") => Distro::OpenSuse,
            "pardus" => Distro::Pardus,
            "pld" => Distro::PldLinux,
            "rhel" => Distro::Rhel,
            "rocky" => Distro::Rocky,
            "sles" | "sled" => Distro::Sles,
            "ubuntu" => Distro::Ubuntu,
            "void" => Distro::VoidLinux,
            _ => return None,
        })
    }

    /// The distribution of an lsb-release `DISTRIB_ID=` value.
    pub fn from_lsb_id(id: &str) -> Option<Distro> {
        Some(match id {
            "CoreOS" => Distro::CoreOs,
            "LinuxMint" => Distro::LinuxMint,
            "Mageia" => Distro::Mageia,
            "Ubuntu" => Distro::Ubuntu,
            _ => return None,
        })
    }

    /// Rolling releases: os-release without `VERSION_ID` is complete for them.
    pub fn is_rolling(self) -> bool {
        matches!(self, Distro::ArchLinux | Distro::Gentoo | Distro::VoidLinux)
    }

    /// The package format (`inspect_get_package_format`).
    pub fn package_format(self) -> Option<&'static str> {
        use Distro::*;
        match self {
            AltLinux | CentOs | Fedora | Mageia | Meego | NeoKylin | OpenMandriva | OpenSuse
            | OracleLinux | RedhatBased | Rhel | Rocky | ScientificLinux | Sles | SuseBased => {
                Some("rpm")
            }
            // libguestfs 1.48 takes Kylin for an Ubuntu derivative.
            Debian | KaliLinux | Kylin | LinuxMint | Ubuntu => Some("deb"),
            ArchLinux => Some("pacman"),
            Gentoo => Some("ebuild"),
            Pardus => Some("pisi"),
            AlpineLinux => Some("apk"),
            VoidLinux => Some("xbps"),
            Buildroot | Cirros | CoreOs | Frugalware | PldLinux | Slackware | TtyLinux => None,
        }
    }

    /// The package manager (`inspect_get_package_management`) for major version `major`;
    /// `has_dnf` says whether /usr/bin/dnf exists (asked for Fedora only).
    pub fn package_management(
        self,
        major: u32,
        has_dnf: impl FnOnce() -> bool,
    ) -> Option<&'static str> {
        use Distro::*;
        match self {
            Meego => Some("yum"),
            Fedora => {
                if major >= 22 && has_dnf() {
                    Some("dnf")
                } else if major >= 1 {
                    Some("yum")
                } else {
                    None
                }
            }
            NeoKylin | OpenMandriva => Some("dnf"),
            CentOs | OracleLinux | RedhatBased | Rhel | Rocky | ScientificLinux => match major {
                8.. => Some("dnf"),
                5..=7 => Some("yum"),
                2..=4 => Some("up2date"),
                _ => None,
            },
            AltLinux | Debian | KaliLinux | Kylin | LinuxMint | Ubuntu => Some("apt"),
            ArchLinux => Some("pacman"),
            Gentoo => Some("portage"),
            Pardus => Some("pisi"),
            Mageia => Some("urpmi"),
            OpenSuse | Sles | SuseBased => Some("zypper"),
            AlpineLinux => Some("apk"),
            VoidLinux => Some("xbps"),
            Buildroot | Cirros | CoreOs | Frugalware | PldLinux | Slackware | TtyLinux => None,
        }
    }

    /// The libosinfo short id libguestfs 1.48's `inspect_get_osinfo` guesses (`debian12`,
    /// `ubuntu22.04`, `centos7.0`, `alpinelinux3.19`, `sles15sp5`); `None` where it says
    /// "unknown". (SUSE's 15 ids are `sle15...` in libosinfo, but 1.48 still builds
    /// `sles15sp5`; a Tumbleweed with `VERSION_ID=20240601` is `opensuse20240601.0`.)
    pub fn osinfo(self, major: u32, minor: u32) -> Option<String> {
        let name = self.name();
        match self {
            Distro::CentOs if major >= 8 => return Some(format!("{name}{major}")),
            Distro::CentOs if major == 7 => return Some(format!("{name}7.0")),
            Distro::CentOs if major == 6 => return Some(format!("{name}6.{minor}")),
            Distro::Rocky if major >= 8 => return Some(format!("{name}{major}")),
            Distro::Debian if major >= 4 => return Some(format!("{name}{major}")),
            Distro::Fedora | Distro::Mageia => return Some(format!("{name}{major}")),
            Distro::Sles if minor == 0 => return Some(format!("{name}{major}")),
            Distro::Sles => return Some(format!("{name}{major}sp{minor}")),
            Distro::Ubuntu => return Some(format!("{name}{major}.{minor:02}")),
            Distro::ArchLinux | Distro::Gentoo | Distro::VoidLinux => {
                return Some(String::from(name));
            }
            // Even for version 0.0.
            Distro::AltLinux if major >= 8 => return Some(format!("alt{major}.{minor}")),
            Distro::AltLinux => return Some(format!("{name}{major}.{minor}")),
            _ => {}
        }
        (major > 0 || minor > 0).then(|| format!("{name}{major}.{minor}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osinfo_ids() {
        let id = |d: Distro, a, b| d.osinfo(a, b);
        assert_eq!(id(Distro::Debian, 12, 5).as_deref(), Some("debian12"));
        assert_eq!(id(Distro::Debian, 0, 0), None);
        assert_eq!(id(Distro::Ubuntu, 22, 4).as_deref(), Some("ubuntu22.04"));
        assert_eq!(
            id(Distro::AlpineLinux, 3, 19).as_deref(),
            Some("alpinelinux3.19")
        );
        assert_eq!(id(Distro::Fedora, 39, 0).as_deref(), Some("fedora39"));
        assert_eq!(id(Distro::Rhel, 9, 3).as_deref(), Some("rhel9.3"));
        assert_eq!(id(Distro::CentOs, 7, 9).as_deref(), Some("centos7.0"));
        assert_eq!(id(Distro::CentOs, 6, 4).as_deref(), Some("centos6.4"));
        assert_eq!(id(Distro::CentOs, 9, 0).as_deref(), Some("centos9"));
        assert_eq!(id(Distro::Rocky, 9, 3).as_deref(), Some("rocky9"));
        assert_eq!(id(Distro::Rocky, 0, 0), None);
        assert_eq!(id(Distro::OpenSuse, 15, 5).as_deref(), Some("opensuse15.5"));
        assert_eq!(id(Distro::Sles, 12, 0).as_deref(), Some("sles12"));
        assert_eq!(id(Distro::ArchLinux, 0, 0).as_deref(), Some("archlinux"));
        assert_eq!(id(Distro::AltLinux, 10, 1).as_deref(), Some("alt10.1"));
    }

    /// What virt-inspector 1.48 printed for the distribution test disks
    /// (tests/data/inspector/distros/).
    #[test]
    fn osinfo_ids_of_libguestfs_1_48() {
        let id = |d: Distro, a, b| d.osinfo(a, b);
        // SLES 15 SP5 and 12 SP5, SLES 11 SP4: always `sles`, never libosinfo's `sle15`.
        assert_eq!(id(Distro::Sles, 15, 5).as_deref(), Some("sles15sp5"));
        assert_eq!(id(Distro::Sles, 12, 5).as_deref(), Some("sles12sp5"));
        assert_eq!(id(Distro::Sles, 11, 4).as_deref(), Some("sles11sp4"));
        // AlmaLinux 9.3 is `redhat-based` to 1.48.
        assert_eq!(
            id(Distro::RedhatBased, 9, 3).as_deref(),
            Some("redhat-based9.3")
        );
        assert_eq!(
            id(Distro::OracleLinux, 8, 9).as_deref(),
            Some("oraclelinux8.9")
        );
        assert_eq!(
            id(Distro::ScientificLinux, 7, 9).as_deref(),
            Some("scientificlinux7.9")
        );
        assert_eq!(
            id(Distro::OpenSuse, 20240601, 0).as_deref(),
            Some("opensuse20240601.0")
        );
        assert_eq!(id(Distro::CentOs, 6, 10).as_deref(), Some("centos6.10"));
        assert_eq!(id(Distro::AltLinux, 0, 0).as_deref(), Some("altlinux0.0"));
    }

    #[test]
    fn package_tools() {
        assert_eq!(Distro::Debian.package_format(), Some("deb"));
        assert_eq!(Distro::Debian.package_management(12, || false), Some("apt"));
        assert_eq!(
            Distro::AlpineLinux.package_management(3, || false),
            Some("apk")
        );
        assert_eq!(Distro::Rhel.package_management(9, || false), Some("dnf"));
        assert_eq!(Distro::CentOs.package_management(7, || false), Some("yum"));
        assert_eq!(Distro::CentOs.package_management(0, || false), None);
        assert_eq!(Distro::Fedora.package_management(39, || true), Some("dnf"));
        assert_eq!(Distro::Fedora.package_management(39, || false), Some("yum"));
        assert_eq!(Distro::Fedora.package_management(0, || true), None);
        assert_eq!(
            Distro::OpenSuse.package_management(15, || false),
            Some("zypper")
        );
        assert_eq!(Distro::ArchLinux.package_format(), Some("pacman"));
        assert_eq!(Distro::Slackware.package_format(), None);
        assert_eq!(
            Distro::from_os_release_id("opensuse-leap"),
            Some(Distro::OpenSuse)
        );
        assert_eq!(Distro::from_os_release_id("arch"), Some(Distro::ArchLinux));
        assert_eq!(Distro::from_os_release_id("nixos"), None);
        for unknown_to_1_48 in ["almalinux", "circle", "linuxmint", "ol", "scientific"] {
            assert_eq!(Distro::from_os_release_id(unknown_to_1_48), None);
        }
        assert_eq!(Distro::Kylin.package_format(), Some("deb"));
        assert_eq!(Distro::Kylin.package_management(10, || false), Some("apt"));
        assert_eq!(
            Distro::RedhatBased.package_management(9, || false),
            Some("dnf")
        );
    }
}
